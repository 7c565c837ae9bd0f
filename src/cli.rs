//! The command line: `vwed check | run | bench | limits` (and `serve` in a later issue). Parses
//! arguments by hand (a handful of flags) and maps every outcome to one exit code.

use std::process::ExitCode;

const USAGE: &str = "\
vwed — runs RDS wind-task transport flows

usage:
  vwed check FILE...                       validate definitions, print every diagnostic
  vwed --version
";

/// Runs the command line given without the program name; returns the process exit code.
pub fn main(args: Vec<String>) -> ExitCode {
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("vwed {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("--help") | Some("-h") | Some("help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
