//! The man page, `monitor_service.8`: clean for mandoc's linter, and complete. Every section and
//! key of `config.ini` (the commented-out ones too), every table and view of `migrations/` and
//! every command of `--help` must be documented, so that a new key, table or command cannot land
//! without its documentation.
//!
//! Needs `mandoc` (Debian's package of that name, which `scripts/test.sh` installs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn read(name: &str) -> String {
    let path = repo_file(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn man_page() -> String {
    read("monitor_service.8")
}

/// The lines of one `.SH` section of the man page, without its heading.
fn man_section<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let heading = format!(".SH {name}");
    let lines: Vec<&str> = page
        .lines()
        .skip_while(|line| line.trim_end() != heading)
        .skip(1)
        .take_while(|line| !line.starts_with(".SH "))
        .collect();
    assert!(!lines.is_empty(), "monitor_service.8 has no {heading}");
    lines
}

/// The first word of a tag line (`.B word`, `.BR word " (default: x)"`, `.BI word " NAME"`),
/// with roff's `\-` read as the `-` it prints.
fn tag_word(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix(".BR ")
        .or_else(|| line.strip_prefix(".BI "))
        .or_else(|| line.strip_prefix(".B "))?;
    rest.split_whitespace()
        .next()
        .map(|word| word.trim_matches('"').replace("\\-", "-"))
}

/// The tag lines of a list in a man page section: the line after each `.TP` or `.TQ`.
fn tags<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .windows(2)
        .filter(|pair| pair[0] == ".TP" || pair[0] == ".TQ")
        .map(|pair| pair[1])
        .collect()
}

/// Sections and keys of config.ini, the commented-out examples included (`; key = value`,
/// `; [process.report_worker]`). A commented line counts as a key only when what stands before
/// the `=` is a key name, so prose in comments is not taken for one.
fn config_keys() -> BTreeMap<String, BTreeSet<String>> {
    let section = Regex::new(r"^[;#]?\s*\[([^\]]+)\]\s*$").expect("section pattern");
    let key = Regex::new(r"^(?:[;#]\s*)?([A-Za-z_][A-Za-z0-9_]*(?:\.[0-9A-Za-z_]+)?)\s*=")
        .expect("key pattern");
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = None;
    for line in read("config.ini").lines() {
        let line = line.trim();
        if let Some(found) = section.captures(line) {
            let name = found[1].trim().to_owned();
            keys.entry(name.clone()).or_default();
            current = Some(name);
        } else if let Some(found) = key.captures(line) {
            let section = current
                .clone()
                .unwrap_or_else(|| panic!("config.ini: key before any section: {line}"));
            keys.entry(section).or_default().insert(found[1].to_owned());
        }
    }
    keys
}

/// The man page's name for a section or key of config.ini: `[process.httpd]` is documented as
/// `[process.NAME]`, `match.2` as `match.N`.
fn documented_as(section: &str, key: Option<&str>) -> (String, Option<String>) {
    let section = match section.strip_prefix("process.") {
        Some("default") | None => section.to_owned(),
        Some(_) => "process.NAME".to_owned(),
    };
    let argument = Regex::new(r"^match\.[0-9]+$").expect("match.N pattern");
    let key = key.map(|key| {
        if argument.is_match(key) {
            "match.N".to_owned()
        } else {
            key.to_owned()
        }
    });
    (section, key)
}

/// What CONFIGURATION documents: for each `.SS` subsection, the config sections its heading
/// names (`[process.NAME] and [process.default]` names two), and the keys tagged in it, each
/// with its tag line.
fn documented_keys(page: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let bracketed = Regex::new(r"\[([^\]]+)\]").expect("bracket pattern");
    let lines = man_section(page, "CONFIGURATION");
    let mut documented: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut sections: Vec<String> = Vec::new();
    let mut previous = "";
    for line in lines {
        if let Some(heading) = line.strip_prefix(".SS ") {
            sections = bracketed
                .captures_iter(heading)
                .map(|found| found[1].to_owned())
                .collect();
            for section in &sections {
                documented.entry(section.clone()).or_default();
            }
        } else if previous == ".TP" {
            if let Some(key) = tag_word(line) {
                for section in &sections {
                    documented
                        .entry(section.clone())
                        .or_default()
                        .insert(key.clone(), line.to_owned());
                }
            }
        }
        previous = line;
    }
    documented
}

#[test]
fn the_man_page_is_clean_for_mandoc_lint() {
    let path = repo_file("monitor_service.8");
    let output = Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .arg(&path)
        .output()
        .expect("mandoc runs (apt-get install mandoc; scripts/test.sh installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "mandoc -T lint -W warning {} ({}):\n{said}",
        path.display(),
        output.status
    );
}

#[test]
fn the_man_page_documents_every_section_and_key_of_config_ini_with_its_default() {
    let documented = documented_keys(&man_page());
    let mut missing = Vec::new();
    for (section, keys) in config_keys() {
        let (man_section, _) = documented_as(&section, None);
        let Some(man_keys) = documented.get(&man_section) else {
            missing.push(format!("section [{section}] (as [{man_section}])"));
            continue;
        };
        for key in keys {
            let (_, man_key) = documented_as(&section, Some(&key));
            let man_key = man_key.expect("a key maps to a key");
            match man_keys.get(&man_key) {
                None => missing.push(format!("[{section}] {key} (as {man_key})")),
                Some(tag) if !tag.contains("default") => missing.push(format!(
                    "[{section}] {key}: its tag `{tag}` gives no default"
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        missing.is_empty(),
        "CONFIGURATION in monitor_service.8 lacks, as `.TP` then `.BR KEY \" (default: ...)\"` \
         under a `.SS [SECTION]` heading:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_key_parser_finds_commented_out_keys_and_sections() {
    // Guards the test above: the keys it checks must include those only shown in comments.
    let keys = config_keys();
    assert!(keys["database"].contains("socket"), "{keys:?}");
    assert!(keys["monitor"].contains("http_listen"), "{keys:?}");
    assert!(keys["health"].contains("on_low_health_command"), "{keys:?}");
    assert!(
        keys["process.default"].contains("start_command"),
        "{keys:?}"
    );
    assert!(
        keys["process.report_worker"].contains("match.2"),
        "{keys:?}"
    );
    assert!(
        !keys["logging"].iter().any(|key| key.contains(',')),
        "{keys:?}"
    );
}

#[test]
fn the_man_page_documents_every_table_and_view_of_the_migrations() {
    let created =
        Regex::new(r"(?i)CREATE\s+(?:TABLE\s+IF\s+NOT\s+EXISTS|OR\s+REPLACE\s+VIEW)\s+(\w+)")
            .expect("create pattern");
    let mut names = BTreeSet::new();
    let directory = repo_file("migrations");
    for entry in std::fs::read_dir(&directory).expect("migrations/ is readable") {
        let path = entry.expect("a migrations/ entry").path();
        let sql = std::fs::read_to_string(&path).expect("a migration is readable");
        names.extend(created.captures_iter(&sql).map(|found| found[1].to_owned()));
    }
    assert!(
        names.contains("PROCESE") && names.contains("TOP_RESTARTERS"),
        "{names:?}"
    );
    let page = man_page();
    let database = man_section(&page, "DATABASE");
    let documented: BTreeSet<String> = tags(&database).into_iter().filter_map(tag_word).collect();
    let missing: Vec<&String> = names.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "DATABASE in monitor_service.8 has no `.TP` entry for {missing:?}"
    );
}

#[test]
fn the_man_page_documents_every_command_of_the_help() {
    let output = Command::new(env!("CARGO_BIN_EXE_monitor_service"))
        .arg("--help")
        .output()
        .expect("monitor_service --help runs");
    assert!(output.status.success(), "--help: {}", output.status);
    let help = String::from_utf8_lossy(&output.stdout);
    // clap lists them under "Commands:", two spaces in, until the blank line.
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|command| *command != "help")
        .collect();
    assert!(commands.contains(&"run"), "no commands found in:\n{help}");
    let page = man_page();
    let section = man_section(&page, "COMMANDS");
    let documented: BTreeSet<String> = tags(&section).into_iter().filter_map(tag_word).collect();
    let missing: Vec<&&str> = commands
        .iter()
        .filter(|command| !documented.contains(**command))
        .collect();
    assert!(
        missing.is_empty(),
        "COMMANDS in monitor_service.8 has no `.TP` entry for {missing:?}"
    );
}

#[test]
fn the_man_page_has_the_sections_an_operator_looks_for() {
    let page = man_page();
    for name in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "CONFIGURATION",
        "DATABASE",
        "SIGNALS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        man_section(&page, name);
    }
    let exit_status = man_section(&page, "EXIT STATUS");
    let codes: BTreeSet<String> = tags(&exit_status)
        .into_iter()
        .filter_map(tag_word)
        .collect();
    for code in ["0", "64", "69", "70", "75", "78"] {
        assert!(codes.contains(code), "EXIT STATUS lacks {code}: {codes:?}");
    }
    let see_also = man_section(&page, "SEE ALSO").join(" ");
    for page in [
        "systemctl (1)",
        "systemd.service (5)",
        "mysql (1)",
        "pgrep (1)",
        "monit (1)",
    ] {
        assert!(see_also.contains(page), "SEE ALSO lacks {page}: {see_also}");
    }
}
