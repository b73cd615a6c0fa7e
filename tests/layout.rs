//! The shape of `src/`, so that it stays readable by a newcomer in one sitting: no file over
//! 450 lines, no function over 80, and no cycle between modules, neither between the top-level
//! modules nor between the files of one module. A cycle is found from the paths the code names
//! (`crate::a::b`, `super::c`, `use crate::{a, b}`) outside its `#[cfg(test)]` part; a module
//! using its own parent (`super::X` in `restart/handle.rs`) is not counted, the parent
//! re-exporting its child is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

const MAX_FILE_LINES: usize = 450;
const MAX_FUNCTION_LINES: usize = 80;

fn source_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&src(), &mut found);
    found.sort();
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `restart/handle.rs` → `restart::handle`, `restart/mod.rs` → `restart`, `lib.rs` → ``.
fn module_of(path: &Path) -> String {
    let relative = path.strip_prefix(src()).unwrap_or(path).with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The part of a file outside its unit tests.
fn without_tests(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// Which modules each module names, children of itself and its ancestors left out.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = source_files();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let path = Regex::new(r"\b(crate|super)::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
        .expect("a valid regex");
    let braces = Regex::new(r"\b(crate|super)::\{([^}]*)\}").expect("a valid regex");
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let parent: Vec<&str> = match module.rsplit_once("::") {
            Some((parent, _)) => parent.split("::").collect(),
            None => Vec::new(),
        };
        let text = read(file);
        let code = without_tests(&text);
        let mut named = BTreeSet::new();
        let mut note = |segments: Vec<&str>| {
            // The longest prefix that is a module of the crate.
            for end in (1..=segments.len()).rev() {
                let candidate = segments[..end].join("::");
                if modules.contains(&candidate) {
                    let is_self_or_ancestor =
                        candidate == module || module.starts_with(&format!("{candidate}::"));
                    if !is_self_or_ancestor {
                        named.insert(candidate);
                    }
                    return;
                }
            }
        };
        let base = |kind: &str| -> Vec<&str> {
            if kind == "super" {
                parent.clone()
            } else {
                Vec::new()
            }
        };
        for hit in path.captures_iter(code) {
            let mut segments = base(&hit[1]);
            segments.extend(hit.get(2).map_or("", |m| m.as_str()).split("::"));
            note(segments);
        }
        for hit in braces.captures_iter(code) {
            for item in hit[2].split(',') {
                let first = item.trim().split("::").next().unwrap_or("").trim();
                if first.is_empty() || first == "self" {
                    continue;
                }
                let mut segments = base(&hit[1]);
                segments.push(first);
                note(segments);
            }
        }
        graph.insert(module, named);
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    component.push(top.to_owned());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[test]
fn no_file_of_src_is_longer_than_a_sitting() {
    let long: Vec<String> = source_files()
        .iter()
        .filter_map(|file| {
            let lines = read(file).lines().count();
            (lines > MAX_FILE_LINES).then(|| format!("{} ({lines} lines)", relative(file)))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines: {}",
        long.join(", ")
    );
}

#[test]
fn no_function_of_src_is_longer_than_a_screen() {
    let start = Regex::new(r"^(\s*)(?:pub(?:\([^)]*\))? )?(?:const )?(?:async )?fn (\w+)")
        .expect("a valid regex");
    let mut long = Vec::new();
    for file in source_files() {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if let Some(hit) = start.captures(lines[i]) {
                let indent = hit[1].len();
                // A body ends at the first `}` back at the signature's indentation.
                let close = " ".repeat(indent) + "}";
                let end = (i + 1..lines.len())
                    .find(|&j| {
                        lines[j].starts_with(&close)
                            && lines[j].len() - lines[j].trim_start().len() == indent
                    })
                    .unwrap_or(i);
                if end - i > MAX_FUNCTION_LINES {
                    long.push(format!(
                        "{}:{} {} ({} lines)",
                        relative(&file),
                        i + 1,
                        &hit[2],
                        end - i
                    ));
                }
                i = end.max(i);
            }
            i += 1;
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines: {}",
        long.join(", ")
    );
}

#[test]
fn no_two_files_of_src_depend_on_each_other() {
    let found = cycles(&module_graph());
    assert!(found.is_empty(), "module cycles: {found:?}");
}

#[test]
fn no_two_top_level_modules_depend_on_each_other() {
    let top = |module: &str| module.split("::").next().unwrap_or("").to_owned();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, named) in module_graph() {
        let from = top(&module);
        let entry = graph.entry(from.clone()).or_default();
        entry.extend(named.iter().map(|m| top(m)).filter(|to| *to != from));
    }
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "cycles between top-level modules: {found:?}"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_passes_a_tree() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry((*from).to_owned())
                .or_default()
                .insert((*to).to_owned());
            graph.entry((*to).to_owned()).or_default();
        }
        graph
    };
    assert_eq!(
        cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        [vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
    );
    assert!(cycles(&graph(&[("a", "b"), ("a", "c"), ("b", "c")])).is_empty());
}

#[test]
fn every_file_of_src_is_in_the_map_of_architecture_md() {
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .expect("ARCHITECTURE.md");
    let missing: Vec<String> = source_files()
        .iter()
        .map(|file| relative(file))
        .filter(|file| !map.contains(&format!("`{file}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "files of src/ that ARCHITECTURE.md's map does not name: {}",
        missing.join(", ")
    );
}
