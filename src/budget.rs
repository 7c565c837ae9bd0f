//! The memory budget (design §10): every bounded structure that holds memory at run time, its
//! capacity from `limits.rs` and the scheduler `Config`, and a worst-case size per element
//! derived from the limits themselves. `vwed limits` prints it; the soak benchmark must stay
//! under the total and the systemd unit's `MemoryMax` sits a margin above it.
//!
//! Where an element has no byte bound in the code, its `note` says so and the figure comes from
//! a named `*_ASSUMED` constant below, so every guess is visible in one place.

use crate::engine::{Event, Fiber, Frame, Record, RunState};
use crate::flow::model::Block;
use crate::limits::*;
use crate::scheduler::{sizes, Config, RunEvent};
use crate::store::{NewTask, QueuedRef, WRITER_MSG_BYTES};
use std::mem::size_of;

/// One bounded structure: `capacity` elements of at most `bytes_each` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: &'static str,
    pub capacity: usize,
    pub unit: &'static str,
    pub bytes_each: usize,
    pub total_bytes: usize,
    pub note: &'static str,
}

/// Bytes of a block name. No limit: names are bounded only by `DEFINITION_BYTES_MAX`.
pub const BLOCK_NAME_BYTES_ASSUMED: usize = 256;

/// Bytes of the fixed reasons the engine writes when it unwinds blocks ("stopped", "cancelled:
/// its parallel block ended", ...): all are string constants shorter than this.
pub const CONSTANT_REASON_BYTES: usize = 64;

/// Bytes of the memory a compiled flow takes per byte of its definition JSON. Not measured:
/// the compiled form drops JSON syntax but adds expression trees and per-block vectors; 4 is a
/// conservative guess.
pub const COMPILED_FLOW_BYTES_PER_DEFINITION_BYTE_ASSUMED: usize = 4;

/// Bytes of one tracked tokio task (its header and future state). Not bounded by the code.
pub const TRACKED_TASK_BYTES_ASSUMED: usize = 16 * 1024;

/// Bytes of a definition label carried by an admission write. No limit of its own.
pub const LABEL_BYTES_ASSUMED: usize = 256;

/// Per-entry overhead of a hash or B-tree map (hash, control bytes, node slack).
pub const MAP_ENTRY_OVERHEAD_BYTES_ASSUMED: usize = 32;

/// Stack of a std thread spawned without `stack_size` (Rust's default; `RUST_MIN_STACK`
/// changes it): the store's writer thread and r2d2's workers.
pub const STD_THREAD_STACK_BYTES: usize = 2 * 1024 * 1024;

/// Worker threads r2d2 0.8 starts for its pool maintenance when no thread pool is given.
pub const R2D2_THREADS: usize = 3;

/// Stack of the main thread: the kernel's default `ulimit -s` (systemd: `LimitSTACK`).
pub const MAIN_THREAD_STACK_BYTES: usize = 8 * 1024 * 1024;

/// Bytes one loaded run can hold: its bounded maps, the data its loops keep, every fiber at
/// full frame depth and the execution path ring.
pub fn run_slot_bytes() -> usize {
    let frames = FIBERS_MAX * (BLOCK_DEPTH_MAX + 1) * size_of::<Frame>();
    let fibers = FIBERS_MAX * size_of::<Fiber>();
    let path = EXECUTION_PATH_LEN * (size_of::<String>() + BLOCK_NAME_BYTES_ASSUMED);
    size_of::<RunState>()
        + sizes::SLOT
        + TASK_ID_BYTES_MAX
        + VARIABLES_BYTES_MAX
        + OUTPUTS_BYTES_MAX
        + 4 * TASK_INPUTS_BYTES_MAX
        + FRAME_DATA_BYTES_MAX
        + STATE_DESCRIPTION_BYTES_MAX
        + frames
        + fibers
        + path
}

/// Bytes of the records one step can produce: `STEP_RECORD_BYTES_MAX` (where the engine
/// yields), plus the operation that crossed it — at worst one block start (inputs cut at
/// `RECORD_VALUE_BYTES_MAX`) and the end of every frame of every fiber with a fixed reason
/// (a stop or failure unwinding the whole run) and one failure reason.
pub fn step_bytes_max() -> usize {
    let unwind = FIBERS_MAX * (BLOCK_DEPTH_MAX + 1) * (size_of::<Record>() + CONSTANT_REASON_BYTES);
    STEP_RECORD_BYTES_MAX
        + 2 * (size_of::<Record>() + RECORD_VALUE_BYTES_MAX + LOG_LINE_BYTES_MAX)
        + unwind
}

/// Bytes of one step's write in flight: its records and the run's checkpoint.
pub fn step_write_bytes() -> usize {
    step_bytes_max() + CHECKPOINT_BYTES_MAX
}

/// Bytes of one pending timer: its entry in the deadline map and in the cancel index.
fn timer_bytes() -> usize {
    let slot = size_of::<(i64, u64)>();
    let by_time = slot + sizes::TIMER_KEY + TASK_ID_BYTES_MAX;
    let index = size_of::<(String, u64)>() + TASK_ID_BYTES_MAX + slot;
    by_time + index + 2 * MAP_ENTRY_OVERHEAD_BYTES_ASSUMED
}

/// What every additional slot of `runs_active_max` adds to the total.
pub fn per_run_share() -> usize {
    run_slot_bytes()
        + RUN_EVENTS_QUEUED_MAX * size_of::<Event>()
        + step_write_bytes()
        + FIBERS_MAX * timer_bytes()
        + compiled_flow_bytes()
}

/// Bytes of one compiled flow.
fn compiled_flow_bytes() -> usize {
    DEFINITION_BYTES_MAX * COMPILED_FLOW_BYTES_PER_DEFINITION_BYTE_ASSUMED
        + FLOW_BLOCKS_MAX * size_of::<Block>()
}

fn item(
    name: &'static str,
    capacity: usize,
    unit: &'static str,
    bytes_each: usize,
    note: &'static str,
) -> Item {
    Item {
        name,
        capacity,
        unit,
        bytes_each,
        total_bytes: capacity * bytes_each,
        note,
    }
}

/// Every bounded structure for `config` and the default HTTP limits, in the order
/// `vwed limits` prints them.
pub fn items(config: &Config) -> Vec<Item> {
    items_with_http(config, &crate::config::HttpConfig::default())
}

/// [`items`] with the HTTP API's limits of a configuration (`[http]`).
pub fn items_with_http(config: &Config, http: &crate::config::HttpConfig) -> Vec<Item> {
    let mut out = scheduler_items(config);
    out.extend(api_items(http));
    out.extend(store_items(config));
    out.extend(modbus_items());
    out.extend(script_items());
    out.extend(thread_items());
    out
}

/// The script runtime with its default bounds (`ScriptConfig::default()`).
fn script_items() -> Vec<Item> {
    vec![
        item(
            "script runtimes",
            SCRIPT_SLOTS,
            "runtimes",
            SCRIPT_MEMORY_BYTES_MAX,
            "one QuickJS heap of SCRIPT_MEMORY_BYTES_MAX per slot (SCRIPT_SLOTS): loaded scripts \
             and a call's data; an allocation past it fails the call",
        ),
        item(
            "script queue",
            SCRIPT_QUEUE_MAX,
            "calls",
            SCRIPT_ARG_BYTES_MAX.max(SCRIPT_FILE_BYTES_MAX),
            "calls waiting for a slot hold their argument (SCRIPT_ARG_BYTES_MAX), file writes \
             their source (SCRIPT_FILE_BYTES_MAX); past SCRIPT_QUEUE_MAX a call is refused",
        ),
        item(
            "script thread stacks",
            SCRIPT_SLOTS,
            "threads",
            SCRIPT_THREAD_STACK_BYTES,
            "one slot thread per runtime; reserved, resident only as used",
        ),
    ]
}

fn scheduler_items(config: &Config) -> Vec<Item> {
    let runs = config.runs_active_max;
    let queued = size_of::<QueuedRef>() + TASK_ID_BYTES_MAX;
    let event = size_of::<RunEvent>()
        + TASK_ID_BYTES_MAX
        + 2 * BLOCK_NAME_BYTES_ASSUMED
        + LOG_LINE_BYTES_MAX;
    vec![
        item(
            "run slots",
            runs,
            "runs",
            run_slot_bytes(),
            "VARIABLES_BYTES_MAX + OUTPUTS_BYTES_MAX (heap estimates) + task inputs (JSON \
             bound x 4 for the heap) + FRAME_DATA_BYTES_MAX + FIBERS_MAX x (BLOCK_DEPTH_MAX+1) \
             frames + execution path; block names are bounded only by the definition size \
             (BLOCK_NAME_BYTES_ASSUMED)",
        ),
        item(
            "run event queues",
            runs * RUN_EVENTS_QUEUED_MAX,
            "events",
            size_of::<Event>(),
            "RUN_EVENTS_QUEUED_MAX per loaded run",
        ),
        item(
            "step writes in flight",
            runs + CONTROL_LOADS_MAX,
            "writes",
            step_write_bytes(),
            "one per loaded run and control load: records up to STEP_RECORD_BYTES_MAX plus the \
             operation that crossed it (values cut at RECORD_VALUE_BYTES_MAX, an unwind of every \
             frame) + the checkpoint (CHECKPOINT_BYTES_MAX); the step being built is one of them",
        ),
        item(
            "ready rings",
            PRIORITY_LEVELS * config.ready_ring_capacity,
            "run ids",
            queued,
            "PRIORITY_LEVELS x ready_ring_capacity QueuedRef + id",
        ),
        item(
            "timers",
            (runs + CONTROL_LOADS_MAX) * FIBERS_MAX,
            "timers",
            timer_bytes(),
            "(runs_active_max + CONTROL_LOADS_MAX) x FIBERS_MAX; deadline map + cancel index, \
             each with the run id",
        ),
        item(
            "scheduler commands",
            SCHEDULER_COMMANDS_MAX,
            "commands",
            sizes::COMMAND + TASK_ID_BYTES_MAX,
            "SCHEDULER_COMMANDS_MAX, each with a run id",
        ),
        item(
            "run events broadcast",
            RUN_EVENTS_CAPACITY,
            "events",
            event,
            "RUN_EVENTS_CAPACITY; log lines and reasons are cut at LOG_LINE_BYTES_MAX",
        ),
        item(
            "compiled flows",
            FLOW_CACHE_MAX + runs + CONTROL_LOADS_MAX,
            "flows",
            compiled_flow_bytes(),
            "FLOW_CACHE_MAX cached + one per loaded run or control load (a run keeps its flow \
             after eviction); \
             size derived from DEFINITION_BYTES_MAX x COMPILED_FLOW_BYTES_PER_DEFINITION_BYTE_\
             ASSUMED + FLOW_BLOCKS_MAX blocks, not measured",
        ),
        item(
            "data cache entries",
            CACHE_ENTRIES_MAX,
            "entries",
            2 * size_of::<String>() + MAP_ENTRY_OVERHEAD_BYTES_ASSUMED,
            "in-memory mirror of the cache table: CACHE_ENTRIES_MAX map entries",
        ),
        item(
            "data cache contents",
            1,
            "cache",
            CACHE_BYTES_MAX,
            "keys and values together are bounded by CACHE_BYTES_MAX",
        ),
        item(
            "definition saves",
            DEFINITION_SAVES_MAX,
            "saves",
            2 * DEFINITION_BYTES_MAX,
            "DEFINITION_SAVES_MAX in flight, each the definition JSON and its stored body",
        ),
        item(
            "tracked tasks",
            TASKS_TRACKED_MAX,
            "tasks",
            TRACKED_TASK_BYTES_ASSUMED,
            "TASKS_TRACKED_MAX; a task's future has no byte bound (TRACKED_TASK_BYTES_ASSUMED)",
        ),
    ]
}

fn store_items(_config: &Config) -> Vec<Item> {
    let admission =
        size_of::<NewTask>() + TASK_INPUTS_BYTES_MAX + 4 * TASK_ID_BYTES_MAX + LABEL_BYTES_ASSUMED;
    let connections = 1 + READ_POOL_SIZE as usize;
    let page_caches = connections * SQLITE_CACHE_KIB * 1024;
    vec![
        item(
            "site serve page",
            SITE_SERVE_PAGE,
            "waiters",
            SITE_OP_BYTES_MAX + 3 * TASK_ID_BYTES_MAX + BLOCK_NAME_BYTES_ASSUMED,
            "one serve pass reads the site wait queue SITE_SERVE_PAGE waiters at a time; \
             the queue itself lives in the store",
        ),
        item(
            "site runs woken",
            SITE_WAITERS_MAX,
            "run ids",
            size_of::<String>() + TASK_ID_BYTES_MAX,
            "parked runs whose site waiter was served, waiting for a slot (one per waiter)",
        ),
        item(
            "writer queue",
            WRITER_QUEUE_MAX,
            "jobs",
            WRITER_MSG_BYTES + admission,
            "WRITER_QUEUE_MAX jobs of admission size (inputs + ids); step writes are counted \
             above. A definition save carries up to DEFINITION_BYTES_MAX and concurrent saves \
             have no cap: not counted",
        ),
        item(
            "SQLite page caches",
            connections,
            "connections",
            SQLITE_CACHE_KIB * 1024,
            "SQLITE_CACHE_KIB x (1 writer + READ_POOL_SIZE readers); part of the heap limit",
        ),
        item(
            "SQLite other heap",
            1,
            "process",
            SQLITE_HARD_HEAP_LIMIT_BYTES - page_caches,
            "SQLITE_HARD_HEAP_LIMIT_BYTES bounds all SQLite heap (page caches included, \
             statements, schema); this is the rest after the page caches",
        ),
    ]
}

/// The HTTP API with the limits of `http` (`[http]`).
fn api_items(http: &crate::config::HttpConfig) -> Vec<Item> {
    let connections = http.connections_max;
    let event = size_of::<crate::store::OutboxEvent>() + OUTBOX_EVENT_BYTES_MAX;
    vec![
        item(
            "fleet http answers",
            crate::api::client::HTTP_CLIENT_CONCURRENT_MAX,
            "answers",
            crate::api::client::HTTP_CLIENT_BODY_BYTES_MAX,
            "the RDSCore adapter's client reads at most HTTP_CLIENT_CONCURRENT_MAX answers of \
             HTTP_CLIENT_BODY_BYTES_MAX at once (none with the simulated fleet)",
        ),
        item(
            "http block answers",
            crate::integrations::http::HTTP_BLOCK_REQUESTS_MAX,
            "answers",
            crate::integrations::http::HTTP_BLOCK_BODY_BYTES_MAX,
            "HTTP blocks read at most HTTP_BLOCK_REQUESTS_MAX answers of \
             HTTP_BLOCK_BODY_BYTES_MAX at once (more requests wait for a place)",
        ),
        item(
            "http request bodies",
            connections,
            "bodies",
            http.body_bytes_max,
            "one body of at most body_bytes_max (REQUEST_BODY_BYTES_MAX) per connection \
             (connections_max, HTTP_CONNECTIONS_MAX)",
        ),
        item(
            "event stream pages",
            connections * SSE_REPLAY_PAGE,
            "events",
            event,
            "an /api/events stream holds one replay page of SSE_REPLAY_PAGE events; every \
             connection could be one",
        ),
        item(
            "site events of a write",
            connections * SITE_EVENTS_PER_WRITE_MAX,
            "events",
            event,
            "each site write (one per connection) keeps at most SITE_EVENTS_PER_WRITE_MAX events \
             to publish; live clients re-read the rest from the outbox",
        ),
        item(
            "outbox live buffer",
            OUTBOX_LIVE_BUFFER,
            "events",
            event,
            "committed events kept for live /api/events clients (a lagging one re-reads the store)",
        ),
    ]
}

/// The Modbus pool at its default bounds (`ModbusConfig::default()`; the configuration does not
/// set them yet).
fn modbus_items() -> Vec<Item> {
    vec![
        item(
            "modbus connections",
            MODBUS_CONNECTIONS_MAX,
            "connections",
            crate::modbus::pool::connection_bytes(),
            "MODBUS_CONNECTIONS_MAX pooled connections, each with its target (host up to \
             MODBUS_HOST_BYTES_MAX) and the two fixed 260-byte frames of the call using it; \
             kernel socket buffers are not process memory",
        ),
        item(
            "modbus reconnect backoffs",
            MODBUS_BACKOFF_TARGETS_MAX,
            "targets",
            crate::modbus::pool::backoff_bytes(),
            "MODBUS_BACKOFF_TARGETS_MAX failing targets remembered (the one due first is \
             forgotten past it)",
        ),
    ]
}

fn thread_items() -> Vec<Item> {
    vec![
        item(
            "runtime thread stacks",
            RUNTIME_WORKER_THREADS + RUNTIME_BLOCKING_THREADS,
            "threads",
            RUNTIME_THREAD_STACK_BYTES,
            "RUNTIME_WORKER_THREADS + RUNTIME_BLOCKING_THREADS; reserved, resident only as used",
        ),
        item(
            "store thread stacks",
            1 + R2D2_THREADS,
            "threads",
            STD_THREAD_STACK_BYTES,
            "the writer thread + the read pool's maintenance threads, std default stack",
        ),
        item(
            "main thread stack",
            1,
            "threads",
            MAIN_THREAD_STACK_BYTES,
            "ulimit -s (systemd LimitSTACK)",
        ),
    ]
}

/// Resident set size and its peak, in bytes, from `/proc/self/status` (0 where unavailable):
/// what the budget is measured against.
pub fn rss() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The sum of `items`' totals.
pub fn total_bytes(items: &[Item]) -> usize {
    items.iter().map(|i| i.total_bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_the_sum_of_the_items() {
        let items = items(&Config::default());
        let sum: usize = items.iter().map(|i| i.capacity * i.bytes_each).sum();
        assert_eq!(total_bytes(&items), sum);
        for i in &items {
            assert_eq!(i.total_bytes, i.capacity * i.bytes_each, "{}", i.name);
        }
    }

    #[test]
    fn every_item_has_a_capacity_and_bytes() {
        for i in items(&Config::default()) {
            assert!(i.capacity > 0, "{} has no capacity", i.name);
            assert!(i.bytes_each > 0, "{} is zero bytes", i.name);
            assert!(!i.note.is_empty(), "{} has no note", i.name);
        }
    }

    #[test]
    fn doubling_the_run_slots_adds_exactly_the_per_run_share() {
        let one = Config::default();
        let two = Config {
            runs_active_max: one.runs_active_max * 2,
            ..one.clone()
        };
        let (a, b) = (total_bytes(&items(&one)), total_bytes(&items(&two)));
        assert_eq!(b - a, one.runs_active_max * per_run_share());
    }

    #[test]
    fn a_run_slot_and_its_write_hold_at_least_their_bounds() {
        let maps =
            VARIABLES_BYTES_MAX + OUTPUTS_BYTES_MAX + TASK_INPUTS_BYTES_MAX + FRAME_DATA_BYTES_MAX;
        assert!(run_slot_bytes() > maps);
        assert!(step_write_bytes() > STEP_RECORD_BYTES_MAX + CHECKPOINT_BYTES_MAX);
    }
}
