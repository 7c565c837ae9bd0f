//! `vwed serve [--config FILE] [--data DIR] [--listen ADDR] [--insecure-open]`: the appliance
//! (also the default command). Flags win over the environment (`VWED_LISTEN`, `VWED_DATA_DIR`,
//! `VWED_TOKEN`, `VWED_LOG`), which wins over the file; with nothing at all it listens on
//! 127.0.0.1:8080 with data in `./data`. Runs until SIGTERM or SIGINT, then shuts down
//! gracefully within `SHUTDOWN_GRACE_MS`.

use super::{runtime, UsageError};
use crate::config::{self, Config};
use crate::server;
use std::path::PathBuf;
use std::process::ExitCode;

struct Flags {
    config: Option<PathBuf>,
    data: Option<PathBuf>,
    listen: Option<String>,
    insecure_open: bool,
}

fn parse(args: &[String]) -> Result<Flags, UsageError> {
    let mut flags = Flags {
        config: None,
        data: None,
        listen: None,
        insecure_open: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--config" => flags.config = Some(PathBuf::from(value("--config")?)),
            "--data" => flags.data = Some(PathBuf::from(value("--data")?)),
            "--listen" => flags.listen = Some(value("--listen")?),
            "--insecure-open" => flags.insecure_open = true,
            other => return Err(UsageError(format!("serve: unknown argument {other}"))),
        }
    }
    Ok(flags)
}

/// The configuration: file, then environment, then flags.
fn configure(flags: Flags) -> Result<Config, String> {
    let env = |k: &str| std::env::var(k).ok();
    let mut config = config::load(flags.config.as_deref(), &env).map_err(|e| e.to_string())?;
    if let Some(data) = flags.data {
        config.data_dir = data;
    }
    if let Some(listen) = flags.listen {
        config.listen = listen
            .parse()
            .map_err(|e| format!("--listen {listen}: not an address: {e}"))?;
    }
    config.insecure_open |= flags.insecure_open;
    if let Some(level) = config
        .log
        .as_deref()
        .filter(|_| std::env::var("VWED_LOG").is_err())
    {
        if let Ok(level) = level.parse::<log::LevelFilter>() {
            log::set_max_level(level);
        }
    }
    Ok(config)
}

pub(super) fn main(args: &[String]) -> Result<ExitCode, UsageError> {
    let config = match configure(parse(args)?) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vwed serve: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let rt = runtime::build().map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    match rt.block_on(serve(config)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("vwed serve: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let running = server::start(&config).await?;
    log::warn!(
        "vwed {} listening on http://{} with data in {}",
        env!("CARGO_PKG_VERSION"),
        running.addr,
        config.data_dir.display()
    );
    runtime::stop_signal().await;
    running.shutdown().await;
    log::warn!("vwed stopped");
    Ok(())
}
