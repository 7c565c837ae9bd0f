//! The tokio runtime the commands run on, sized for a controller (few workers, few blocking
//! threads, explicit stacks), and the shared helpers commands use to open a store and wait for
//! a stop signal.

use crate::limits::{RUNTIME_BLOCKING_THREADS, RUNTIME_THREAD_STACK_BYTES, RUNTIME_WORKER_THREADS};
use crate::store::{Store, StoreOptions};
use std::path::Path;

/// A multi-thread runtime with the sizes from `limits.rs`.
pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(RUNTIME_WORKER_THREADS)
        .max_blocking_threads(RUNTIME_BLOCKING_THREADS)
        .thread_stack_size(RUNTIME_THREAD_STACK_BYTES)
        .thread_name("vwed")
        .enable_all()
        .build()
}

/// Opens (creating) the store `vwed.db` in `dir`.
pub fn open_store(dir: &Path, synchronous_full: bool) -> Result<Store, String> {
    let mut opts = StoreOptions::new(dir.join("vwed.db"));
    opts.synchronous_full = synchronous_full;
    Store::open(opts).map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot listen for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => log::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => log::info!("SIGINT: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
