//! Architecture invariants, checked by walking `src/`: every file says what it is for, no
//! unbounded channels, SQLite only in the store, tasks spawned only by the one tracker.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() > 10,
        "expected the source tree under {}",
        root.display()
    );
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Code lines: the text with `//` comments removed, so doc comments may name what is banned.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_file_starts_with_a_module_doc() {
    for (path, text) in sources() {
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        assert!(
            first.starts_with("//!"),
            "src/{path} does not start with a //! doc line"
        );
    }
}

#[test]
fn no_unbounded_channels() {
    let banned = ["unbounded", "_channel"].concat();
    for (path, text) in sources() {
        assert!(
            !code_of(&text).contains(&banned),
            "src/{path} uses an unbounded channel"
        );
    }
}

#[test]
fn sqlite_only_in_the_store() {
    for (path, text) in sources() {
        if path.starts_with("store/") {
            continue;
        }
        let code = code_of(&text);
        for banned in ["rusqlite", "r2d2"] {
            assert!(
                !code.contains(banned),
                "src/{path} uses {banned} outside src/store/"
            );
        }
    }
}

/// Test-only files (`tests.rs`, `tests_*.rs`, `*_tests.rs`) may spawn freely.
fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "tests.rs" || name.starts_with("tests_") || name.ends_with("_tests.rs")
}

/// Production code talks HTTP only through `src/api/`; test files may run hyper peers.
#[test]
fn hyper_only_in_the_api() {
    for (path, text) in sources() {
        if path.starts_with("api/") || is_test_file(&path) {
            continue;
        }
        assert!(
            !code_of(&text).contains("hyper::"),
            "src/{path} uses hyper outside src/api/"
        );
    }
}

#[test]
fn tasks_are_spawned_only_by_the_tracker() {
    let banned = ["tokio::", "spawn"].concat();
    for (path, text) in sources() {
        // The store owns (and joins) its writer thread and bounds its blocking reads.
        if path == "tasks.rs" || path == "store/mod.rs" || is_test_file(&path) {
            continue;
        }
        let code = code_of(&text);
        assert!(
            !code.contains(&banned),
            "src/{path} spawns outside src/tasks.rs"
        );
        assert!(
            !code.contains("task::spawn(") && !code.contains("std::thread::spawn"),
            "src/{path} spawns outside src/tasks.rs"
        );
    }
}

#[test]
fn the_engine_does_no_io_and_reads_no_clock() {
    for (path, text) in sources() {
        if !path.starts_with("engine/") {
            continue;
        }
        let code = code_of(&text);
        for banned in [
            "tokio",
            "std::fs",
            "std::net",
            "SystemTime",
            "Instant",
            "crate::store",
        ] {
            assert!(
                !code.contains(banned),
                "src/{path} uses {banned}: the engine is pure"
            );
        }
    }
}
