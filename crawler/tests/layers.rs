//! The crate's layers point one way (see the table in `src/lib.rs`): a module may use
//! `crate::X` only for an `X` of a lower layer (or itself). This test reads the sources and fails
//! on the first upward or sideways import, naming the file and the line.

use std::fs;
use std::path::{Path, PathBuf};

/// Layer of each top-level module; higher numbers may import lower ones.
const LAYERS: &[(&str, u8)] = &[
    ("config", 0),
    ("error", 0),
    ("Error", 0),
    ("discover", 1),
    ("inspect", 1),
    ("pace", 1),
    ("http", 2),
    ("report", 2),
    ("cli", 3),
    ("run", 4),
];

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::NAME` on a line (a `use crate::{a, b}` group names each).
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

#[test]
fn lower_layers_never_import_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    let mut checked = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let own = layer(&top).unwrap_or_else(|| panic!("{}: module not in LAYERS", rel.display()));
        checked += 1;
        for (n, line) in fs::read_to_string(f).unwrap().lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in crate_refs(code) {
                // The crate root's exit-status constants are plain numbers every layer may use.
                if name == top || name.starts_with("EXIT_") {
                    continue;
                }
                match layer(&name) {
                    Some(l) if l < own => {}
                    Some(_) => bad.push(format!(
                        "{}:{}: layer {own} module `{top}` uses `crate::{name}`: {}",
                        rel.display(),
                        n + 1,
                        line.trim()
                    )),
                    None => bad.push(format!(
                        "{}:{}: `crate::{name}` is not in LAYERS",
                        rel.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} files read");
    assert!(
        bad.is_empty(),
        "imports against the layering:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_groups_and_paths() {
    assert_eq!(
        crate_refs("use crate::{config::Config, report::event::Summary};"),
        ["config", "report"]
    );
    assert_eq!(crate_refs("let x = crate::run::run(c);"), ["run"]);
}

/// Names that belong to the HTTP library (`reqwest` and the `http` crate under it).
const HTTP_LIBRARY: &[&str] = &[
    "reqwest",
    "StatusCode",
    "HeaderMap",
    "HeaderValue",
    "http::",
];

/// The HTTP library's names in the code of a line (comments excluded); `crate::http::` is the
/// crate's own layer, not the library.
fn http_library_refs(line: &str) -> Vec<&'static str> {
    let code = line.split("//").next().unwrap_or("");
    let code = code
        .replace("crate::http::", "")
        .replace("super::http::", "");
    HTTP_LIBRARY
        .iter()
        .copied()
        .filter(|name| code.contains(name))
        .collect()
}

#[test]
fn only_the_http_layer_touches_the_http_library() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel.starts_with("http") {
            continue;
        }
        for (n, line) in fs::read_to_string(f).unwrap().lines().enumerate() {
            for name in http_library_refs(line) {
                bad.push(format!(
                    "{}:{}: `{name}` outside src/http/: {}",
                    rel.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "HTTP library types outside the http layer:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_http_library_checker_sees_types_not_comments() {
    assert_eq!(
        http_library_refs("    pub status: reqwest::StatusCode,"),
        ["reqwest", "StatusCode"]
    );
    assert_eq!(
        http_library_refs("use crate::http::fetch::Response;"),
        [] as [&str; 0]
    );
    assert_eq!(
        http_library_refs("// the only user of `reqwest`"),
        [] as [&str; 0]
    );
}
