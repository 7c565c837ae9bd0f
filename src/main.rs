//! The `vwed` binary: parses the command line, sets up logging and hands over to [`vwed::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    vwed::cli::main(args)
}
