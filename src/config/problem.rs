//! What is wrong with a config file, and where: the one rendering of a problem as a line
//! (`PATH: [section] key: why`), shared by both stages of reading the file.

use std::path::{Path, PathBuf};

/// Everything wrong with a config file, one problem per line when displayed:
/// `PATH: [section] key: why`, `PATH: [section]: why`, `PATH:LINE: why` or `PATH: why`.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_all(.path, .problems))]
pub struct ConfigError {
    path: PathBuf,
    problems: Vec<Problem>,
}

impl ConfigError {
    pub(super) fn new(path: &Path, problems: Vec<Problem>) -> ConfigError {
        let path = path.to_owned();
        ConfigError { path, problems }
    }

    /// The file the problems are about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The problems, one printable line each, in the order they were found.
    pub fn lines(&self) -> Vec<String> {
        self.problems.iter().map(|p| p.render(&self.path)).collect()
    }
}

fn render_all(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| p.render(path)).collect();
    lines.join("\n")
}

/// One thing wrong with the file, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    place: Place,
    why: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    File,
    Line(usize),
    Section(String),
    Key(String, String),
}

impl Problem {
    pub(super) fn file(why: String) -> Problem {
        let place = Place::File;
        Problem { place, why }
    }

    pub(super) fn line(number: usize, why: String) -> Problem {
        let place = Place::Line(number);
        Problem { place, why }
    }

    pub(super) fn section(section: &str, why: String) -> Problem {
        let place = Place::Section(section.to_owned());
        Problem { place, why }
    }

    pub(super) fn key(section: &str, key: &str, why: String) -> Problem {
        let place = Place::Key(section.to_owned(), key.to_owned());
        Problem { place, why }
    }

    pub(super) fn render(&self, path: &Path) -> String {
        let (path, why) = (path.display(), &self.why);
        match &self.place {
            Place::File => format!("{path}: {why}"),
            Place::Line(number) => format!("{path}:{number}: {why}"),
            Place::Section(section) => format!("{path}: [{section}]: {why}"),
            Place::Key(section, key) => format!("{path}: [{section}] {key}: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_render_as_one_line_with_file_section_and_key() {
        let path = Path::new("/etc/m.ini");
        let rendered = [
            Problem::file("whole file".into()),
            Problem::line(7, "bad line".into()),
            Problem::section("health", "bad section".into()),
            Problem::key("monitor", "dead_after", "bad key".into()),
        ]
        .map(|problem| problem.render(path));
        assert_eq!(
            rendered,
            [
                "/etc/m.ini: whole file",
                "/etc/m.ini:7: bad line",
                "/etc/m.ini: [health]: bad section",
                "/etc/m.ini: [monitor] dead_after: bad key",
            ]
        );
    }
}
