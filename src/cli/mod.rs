//! The command line: `vwed check | run | bench | limits | serve`. Arguments are parsed by hand
//! (a handful of flags) and every outcome maps to one exit code: 0 success, 1 the job failed
//! (definition errors, a run that did not finish), 2 bad usage.

mod bench;
mod check;
mod limits;
mod run;
mod runtime;
mod serve;
mod sim_core;

use std::process::ExitCode;

const USAGE: &str = "\
vwed — runs RDS wind-task transport flows

usage:
  vwed [serve] [--config FILE] [--data DIR] [--listen ADDR] [--insecure-open]
                                         the appliance and its HTTP API (default command)
  vwed check FILE...                     validate definitions, print every diagnostic
  vwed run FILE [--label L] [--input k=v]... [--sites SITES.json] [--scripts DIR] [--config FILE] [--json]
                                         run one definition on a temporary store
  vwed bench [--tasks N] [--concurrency C] [--delay-ms D] [--data DIR] [--json]
                                         push N small flows through the scheduler and SQLite
  vwed limits [--config FILE] [--json]   print the memory budget: every bound and its total
  vwed sim-core --listen ADDR [--config FILE]   serve the simulated fleet over the RDSCore HTTP API
  vwed --version
";

/// A command-line mistake: printed with the usage, exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Runs the command line given without the program name; returns the process exit code.
pub fn main(args: Vec<String>) -> ExitCode {
    let _ = env_logger::Builder::from_env(env_logger::Env::new().filter_or("VWED_LOG", "warn"))
        .format_timestamp_millis()
        .try_init();
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("serve", &[][..]),
    };
    let result = match command {
        "check" => check::main(rest),
        "run" => run::main(rest),
        "bench" => bench::main(rest),
        "serve" => serve::main(rest),
        "limits" => limits::main(rest),
        "sim-core" => sim_core::main(rest),
        "--version" | "-V" | "version" => {
            println!("vwed {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(UsageError(format!("unknown command {other}"))),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(msg)) => {
            eprintln!("vwed: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
