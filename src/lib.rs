//! vwed runs Seer RDS / VWED "wind task" transport flows for AGV/AMR fleets with memory bounded by
//! construction. See `ARCHITECTURE.md` for the code map; in short:
//!
//! - [`flow`]: definition loading (`.task` exports, single definitions), the compile step that
//!   validates a definition into a [`flow::Flow`] with every diagnostic, and the expression
//!   language.
//! - [`engine`]: the pure run state machine (fibers, explicit frame stacks, bounded context).
//! - [`blocks`]: the static registry of block kinds.
//! - [`store`]: the only module that touches SQLite.
//! - [`scheduler`]: admission, ready queues, run slots, timers, stop/pause/resume/retry, recovery.
//! - [`modbus`]: Modbus TCP for the Modbus blocks (parameters, wire format, connection pool).
//! - [`config`]: the TOML configuration file and its `VWED_*` environment overrides.
//! - [`limits`]: every capacity; [`budget`]: the memory they allow in total.

pub mod api;
pub mod blocks;
pub mod budget;
pub mod cli;
pub mod config;
pub mod engine;
pub mod fleet;
pub mod flow;
pub mod integrations;
pub mod limits;
pub mod modbus;
pub mod scheduler;
pub mod script;
pub mod server;
pub mod sites;
pub mod store;
pub mod tasks;
#[cfg(test)]
pub(crate) mod test_net;
pub mod value;
