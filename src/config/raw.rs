//! Stage one of reading `config.ini`: the text becomes named sections of `key = value` strings,
//! with no meaning given to any of them yet (that is `validate`'s job).
//!
//! rust-ini does the parsing, with escapes off so that regexes such as `\d+\.log` and commands
//! such as `printf 'a\n'` keep their backslashes. Two of its habits are guarded against here: it
//! keeps every copy of a repeated key (the service would silently use the first), and it glues
//! a line without `=` (or an indented comment) onto the key of the next line, which would be
//! reported far from the real mistake. Lines are therefore checked first, with their numbers.

use ini::{Ini, ParseOption};

use super::problem::Problem;

/// One `[section]` of the file, its keys in file order, each key once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawSection {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// The whole file as strings, with the structural problems found on the way (repeated keys or
/// sections, keys outside any section). Those do not stop stage two, so that every problem of
/// the file is reported at once.
#[derive(Debug, Clone, Default)]
pub(super) struct RawConfig {
    pub sections: Vec<RawSection>,
    pub problems: Vec<Problem>,
}

impl RawConfig {
    /// The keys of `[name]`, empty when the file has no such section.
    pub fn entries(&self, name: &str) -> &[(String, String)] {
        self.sections
            .iter()
            .find(|section| section.name == name)
            .map_or(&[], |section| &section.entries)
    }

    /// The value of `key` in `[section]`, if set.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.entries(section)
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads INI text. `Err` holds problems that make the text unreadable as INI, with line
/// numbers; nothing else can be trusted then.
pub(super) fn parse(text: &str) -> Result<RawConfig, Vec<Problem>> {
    // Editors on Windows start files with a byte order mark, which is not part of any line.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (text, problems) = check_lines(text);
    if !problems.is_empty() {
        return Err(problems);
    }
    let options = ParseOption {
        enabled_escape: false,
        enabled_indented_mutiline_value: false,
        ..ParseOption::default()
    };
    let ini = Ini::load_from_str_opt(&text, options).map_err(|error| {
        vec![Problem::line(
            error.line,
            format!("cannot parse: {}", error.msg),
        )]
    })?;
    Ok(collect(&ini))
}

/// Checks every line for a shape rust-ini would misread, and returns the text with indented
/// comments moved to the start of their line (rust-ini only knows comments in column one).
fn check_lines(text: &str) -> (String, Vec<Problem>) {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    let mut continued = false;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim();
        if continued {
            // The previous value ended with `\`: this line is the rest of it, not a new line.
            continued = ends_with_line_continuation(line);
            out.push_str(line);
            continue;
        }
        if trimmed.starts_with([';', '#']) {
            out.push_str(line.trim_start());
            continue;
        }
        out.push_str(line);
        if trimmed.is_empty() {
            continue;
        }
        match line_shape(trimmed) {
            Ok(()) => continued = ends_with_line_continuation(line),
            Err(why) => problems.push(Problem::line(index + 1, why.to_owned())),
        }
    }
    (out, problems)
}

/// Whether a non-empty, non-comment line is a section header or a `key = value` line that
/// rust-ini reads as written.
fn line_shape(trimmed: &str) -> Result<(), &'static str> {
    if let Some(header) = trimmed.strip_prefix('[') {
        let well_formed = header
            .strip_suffix(']')
            .is_some_and(|name| !name.contains(['[', ']']));
        return if well_formed {
            Ok(())
        } else {
            Err("a section header must be the whole line, like [name]")
        };
    }
    let Some(split) = trimmed.find(['=', ':']) else {
        return Err("expected `key = value`, a [section] or a comment (`;` or `#` first)");
    };
    if trimmed[..split].trim().is_empty() {
        return Err("missing key before the `=`");
    }
    if !quote_closes(trimmed[split + 1..].trim_start()) {
        return Err("the value opens a quote that is not closed on the same line");
    }
    Ok(())
}

/// rust-ini strips one pair of quotes at the start of a value and lets the quoted part run over
/// lines; an unclosed quote would swallow the rest of the file.
fn quote_closes(value: &str) -> bool {
    let mut chars = value.chars();
    let Some(quote @ ('"' | '\'')) = chars.next() else {
        return true;
    };
    while let Some(c) = chars.next() {
        match c {
            // With escapes off rust-ini still keeps `\x` together, so `\"` does not close.
            '\\' => {
                chars.next();
            }
            c if c == quote => return true,
            _ => {}
        }
    }
    false
}

/// rust-ini joins a line ending in an odd number of backslashes with the next one.
fn ends_with_line_continuation(line: &str) -> bool {
    let Some(body) = line.strip_suffix('\n') else {
        return false;
    };
    body.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Turns rust-ini's sections into ours, merging a repeated section and keeping the first copy
/// of a repeated key, each time with a problem.
fn collect(ini: &Ini) -> RawConfig {
    let mut raw = RawConfig::default();
    for (section, properties) in ini.iter() {
        let Some(name) = section else {
            for (key, _) in properties.iter() {
                raw.problems.push(Problem::file(format!(
                    "`{key}` is set before any [section]"
                )));
            }
            continue;
        };
        let index = match raw.sections.iter().position(|s| s.name == name) {
            Some(index) => {
                raw.problems
                    .push(Problem::section(name, "appears more than once".into()));
                index
            }
            None => {
                raw.sections.push(RawSection {
                    name: name.to_owned(),
                    entries: Vec::new(),
                });
                raw.sections.len() - 1
            }
        };
        let entries = &mut raw.sections[index].entries;
        for (key, value) in properties.iter() {
            if entries.iter().any(|(existing, _)| existing == key) {
                raw.problems
                    .push(Problem::key(name, key, "is set more than once".into()));
            } else {
                entries.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str, section: &str) -> Vec<(String, String)> {
        let raw = parse(text).expect("parses");
        assert_eq!(raw.problems, vec![], "no structural problems");
        raw.entries(section).to_vec()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn line_problems(text: &str) -> Vec<String> {
        let problems = parse(text).expect_err("refused");
        problems
            .iter()
            .map(|p| p.render("f.ini".as_ref()))
            .collect()
    }

    #[test]
    fn backslashes_quotes_and_inline_semicolons_are_kept_as_written() {
        let text =
            "[a]\nx = \\d+\\.log\ny = printf 'a\\n' ; echo # not a comment\nz = \"quoted\"\n";
        assert_eq!(
            entries(text, "a"),
            pairs(&[
                ("x", r"\d+\.log"),
                ("y", r"printf 'a\n' ; echo # not a comment"),
                ("z", "quoted"),
            ])
        );
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_line() {
        assert_eq!(entries("\u{feff}[a]\nx = 1\n", "a"), pairs(&[("x", "1")]));
    }

    #[test]
    fn indented_comments_are_comments() {
        let text = "[a]\n  ; a comment\n\t# another\nx = 1\n";
        assert_eq!(entries(text, "a"), pairs(&[("x", "1")]));
    }

    #[test]
    fn a_backslash_at_the_end_of_a_line_continues_the_value() {
        let text = "[a]\nx = one \\\ntwo\ny = 2\n";
        assert_eq!(entries(text, "a"), pairs(&[("x", "one two"), ("y", "2")]));
    }

    #[test]
    fn lines_of_the_wrong_shape_are_reported_with_their_numbers() {
        let text = "[a]\ngarbage\nx = \"open\n=1\n[b] trailing\n";
        assert_eq!(
            line_problems(text),
            vec![
                "f.ini:2: expected `key = value`, a [section] or a comment (`;` or `#` first)",
                "f.ini:3: the value opens a quote that is not closed on the same line",
                "f.ini:4: missing key before the `=`",
                "f.ini:5: a section header must be the whole line, like [name]",
            ]
        );
    }

    #[test]
    fn repeated_keys_sections_and_keys_before_any_section_are_problems() {
        let raw = parse("top = 1\n[a]\nx = 1\nx = 2\n[a]\ny = 3\nx = 4\n").expect("parses");
        let problems: Vec<String> = raw
            .problems
            .iter()
            .map(|p| p.render("f.ini".as_ref()))
            .collect();
        assert_eq!(
            problems,
            vec![
                "f.ini: `top` is set before any [section]",
                "f.ini: [a] x: is set more than once",
                "f.ini: [a]: appears more than once",
                "f.ini: [a] x: is set more than once",
            ]
        );
        assert_eq!(
            raw.entries("a"),
            pairs(&[("x", "1"), ("y", "3")]).as_slice()
        );
        assert_eq!(raw.get("a", "y"), Some("3"));
        assert_eq!(raw.get("b", "y"), None);
    }
}
