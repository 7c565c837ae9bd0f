//! `vwed sim-core --listen ADDR [--config FILE]`: the simulated fleet (the `[fleet]` section of
//! the normal configuration, with `VWED_*` overrides) served over Seer RDSCore's HTTP order
//! API, so an RDSCore adapter can be tested against a real HTTP peer. Prints
//! `vwed sim-core listening on http://ADDR` to stderr and serves until SIGTERM or SIGINT.

use super::{runtime, UsageError};
use crate::api::sim_core;
use crate::config;
use crate::fleet::sim::{SimConfig, SimFleet};
use crate::limits::{HTTP_CONNECTIONS_MAX, TASKS_TRACKED_MAX};
use crate::tasks::Tasks;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

struct Flags {
    listen: SocketAddr,
    config: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Flags, UsageError> {
    let mut listen = None;
    let mut config = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| UsageError(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--listen" => listen = Some(value("--listen")?),
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            other => return Err(UsageError(format!("sim-core: unknown argument {other}"))),
        }
    }
    let listen = listen.ok_or_else(|| UsageError("sim-core: --listen ADDR is required".into()))?;
    let listen = listen
        .parse()
        .map_err(|e| UsageError(format!("sim-core: --listen {listen}: not an address: {e}")))?;
    Ok(Flags { listen, config })
}

/// The simulator's settings from the configuration file (if any) and the environment.
fn sim_config(file: Option<&std::path::Path>) -> Result<SimConfig, String> {
    let env = |k: &str| std::env::var(k).ok();
    let config = config::load(file, &env).map_err(|e| e.to_string())?;
    config.fleet.sim_config()
}

pub(super) fn main(args: &[String]) -> Result<ExitCode, UsageError> {
    let flags = parse(args)?;
    let sim = match sim_config(flags.config.as_deref()) {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("vwed sim-core: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let rt = runtime::build().map_err(|e| UsageError(format!("cannot start the runtime: {e}")))?;
    match rt.block_on(serve(flags.listen, sim)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("vwed sim-core: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn serve(listen: SocketAddr, sim: SimConfig) -> Result<(), String> {
    // Time zero of the simulation is now, on this runtime's clock.
    let sim = Arc::new(SimFleet::new(sim));
    let tasks = Tasks::with_capacity(TASKS_TRACKED_MAX + HTTP_CONNECTIONS_MAX);
    let core = sim_core::start(listen, sim, &tasks).await?;
    // Printed, not logged: scripts and tests read the address from this line.
    eprintln!("vwed sim-core listening on http://{}", core.addr);
    runtime::stop_signal().await;
    core.shutdown().await;
    log::warn!("vwed sim-core stopped");
    Ok(())
}
