//! `vwed check FILE...`: loads and compiles every definition in every file and prints each
//! diagnostic as `FILE: LABEL: bN (BlockType) param: message`; exit 1 when any is an error.

use super::UsageError;
use crate::flow::{compile, load};
use crate::limits::DEFINITION_FILE_BYTES_MAX;
use std::path::Path;
use std::process::ExitCode;

/// Counts over all files.
#[derive(Default)]
struct Totals {
    definitions: usize,
    errors: usize,
    warnings: usize,
}

pub(super) fn main(args: &[String]) -> Result<ExitCode, UsageError> {
    if args.is_empty() {
        return Err(UsageError("check needs at least one FILE".into()));
    }
    if let Some(flag) = args.iter().find(|a| a.starts_with("--")) {
        return Err(UsageError(format!("check: unknown flag {flag}")));
    }
    let mut totals = Totals::default();
    for file in args {
        check_file(Path::new(file), &mut totals);
    }
    eprintln!(
        "{} definition(s): {} error(s), {} warning(s)",
        totals.definitions, totals.errors, totals.warnings
    );
    Ok(if totals.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads a definition file, refusing one larger than `DEFINITION_FILE_BYTES_MAX` before reading it.
pub(crate) fn read_file(path: &Path) -> Result<String, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > DEFINITION_FILE_BYTES_MAX as u64 {
        return Err(format!(
            "file is {len} bytes, over DEFINITION_FILE_BYTES_MAX ({DEFINITION_FILE_BYTES_MAX})"
        ));
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// The label for a bare `detail` file: its name without extension.
pub(crate) fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "definition".into())
}

fn check_file(path: &Path, totals: &mut Totals) {
    let shown = path.display();
    let text = match read_file(path) {
        Ok(t) => t,
        Err(e) => {
            println!("{shown}: error: {e}");
            totals.errors += 1;
            return;
        }
    };
    for loaded in load::load_text(&text, &file_stem(path)) {
        totals.definitions += 1;
        let raw = match loaded {
            Ok(raw) => raw,
            Err(e) => {
                println!("{shown}: {}: error: {}", e.what, e.message);
                totals.errors += 1;
                continue;
            }
        };
        let compiled = compile::compile(&raw);
        for d in &compiled.diagnostics {
            match d.severity {
                compile::Severity::Error => totals.errors += 1,
                compile::Severity::Warning => totals.warnings += 1,
            }
            println!("{shown}: {}: {d}", raw.label);
        }
    }
}
