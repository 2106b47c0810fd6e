//! Tidy checks, run as ordinary tests: the layers ARCHITECTURE.md promises, held by a test rather
//! than by discipline. The pure core never names the runtime, the store, the file system or the
//! clock, so `scan`, the daemon and the tests can all drive it with values.

use std::path::{Path, PathBuf};

/// The core: decoding, rules, correlation, the engine, alerting decisions and human text.
const CORE: [&str; 11] = [
    "src/decode",
    "src/rules",
    "src/correlate.rs",
    "src/engine.rs",
    "src/report.rs",
    "src/alerting.rs",
    "src/model.rs",
    "src/duration.rs",
    "src/evidence/merkle.rs",
    "src/evidence/note.rs",
    "src/evidence/mod.rs",
];

/// What the core must not name, and why.
const FORBIDDEN: [(&str, &str); 5] = [
    (
        "tokio",
        "the core is synchronous; only sources, outputs, api and daemon run on tokio",
    ),
    ("sled", "only the store knows sled"),
    (
        "std::fs",
        "the core does no IO; load.rs and the sources read files",
    ),
    ("::now(", "time is passed in as a value"),
    ("SystemTime", "time is passed in as a value"),
];

/// The parts of the core that stay clear of the store too (report and alerting render store types).
const STORE_FREE: [&str; 4] = [
    "src/decode",
    "src/rules",
    "src/correlate.rs",
    "src/engine.rs",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The file's text before its test module: tests may use what the code may not.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn violations(roots: &[&str], forbidden: &[(&str, &str)]) -> Vec<String> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for root in roots {
        rust_files(&base.join(root), &mut files);
    }
    assert!(files.len() > 10, "the core files were not found: {files:?}");
    let mut found = Vec::new();
    for file in files {
        let code = code_of(&file);
        for (needle, why) in forbidden {
            if code.contains(needle) {
                found.push(format!("{} names `{needle}`: {why}", file.display()));
            }
        }
    }
    found
}

#[test]
fn the_core_does_no_io_and_reads_no_clock() {
    let found = violations(&CORE, &FORBIDDEN);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_engine_and_what_it_calls_do_not_know_the_store() {
    let found = violations(
        &STORE_FREE,
        &[(
            "crate::store",
            "the store is an edge; the engine hands it changes",
        )],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.rs");
    std::fs::write(&file, "//! x\nfn f() { let _ = std::fs::read(\"x\"); }\n").unwrap();
    let code = code_of(&file);
    assert!(code.contains("std::fs"));
    let comment = dir.path().join("ok.rs");
    std::fs::write(&comment, "//! uses std::fs in a comment only\n").unwrap();
    assert!(!code_of(&comment).contains("std::fs"));
}
