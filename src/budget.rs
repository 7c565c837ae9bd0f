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

/// Records one engine operation emits (block started/ended, a log line, a variables change).
/// Not counted by the engine; only the operations are (`STEP_OPS_MAX`).
pub const RECORDS_PER_OP_ASSUMED: usize = 4;

/// Payload bytes of one step record (block inputs or outputs, log text). Stored records are
/// truncated to `RECORD_VALUE_BYTES_MAX`, but the records of a step in memory are not: inputs
/// have no byte bound and outputs are a clone of up to `OUTPUTS_BYTES_MAX`.
pub const RECORD_PAYLOAD_BYTES_ASSUMED: usize = RECORD_VALUE_BYTES_MAX;

/// Bytes of the reason text of a block or run status event. No limit: a thrown message may be
/// any string an expression produces (`EXPR_STRING_BYTES_MAX`).
pub const REASON_BYTES_ASSUMED: usize = LOG_LINE_BYTES_MAX;

/// Bytes of the memory a compiled flow takes per byte of its definition JSON. Not measured:
/// the compiled form drops JSON syntax but adds expression trees.
pub const COMPILED_FLOW_BYTES_PER_DEFINITION_BYTE_ASSUMED: usize = 1;

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

/// Bytes one loaded run can hold: its bounded maps, every fiber at full frame depth, the
/// execution path ring and the checkpoint string of its step write in flight.
pub fn run_slot_bytes() -> usize {
    let frames = FIBERS_MAX * (BLOCK_DEPTH_MAX + 1) * size_of::<Frame>();
    let fibers = FIBERS_MAX * size_of::<Fiber>();
    let path = EXECUTION_PATH_LEN * (size_of::<String>() + BLOCK_NAME_BYTES_ASSUMED);
    size_of::<RunState>()
        + sizes::SLOT
        + TASK_ID_BYTES_MAX
        + VARIABLES_BYTES_MAX
        + OUTPUTS_BYTES_MAX
        + TASK_INPUTS_BYTES_MAX
        + STATE_DESCRIPTION_BYTES_MAX
        + frames
        + fibers
        + path
        + CHECKPOINT_BYTES_MAX
}

/// Records one step can emit: its operations, plus one "ended" record per open frame of every
/// fiber when the run is stopped or fails (unwinding is not counted against the step budget).
pub fn step_records_max() -> usize {
    STEP_OPS_MAX * RECORDS_PER_OP_ASSUMED + FIBERS_MAX * (BLOCK_DEPTH_MAX + 1)
}

/// Bytes of one step record in memory.
pub fn record_bytes() -> usize {
    size_of::<Record>() + RECORD_PAYLOAD_BYTES_ASSUMED
}

/// Bytes of one timer: the deadline map entry (key, run id) and the index entry (run id, slot).
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
        + step_records_max() * record_bytes()
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

/// Every bounded structure for `config`, in the order `vwed limits` prints them.
pub fn items(config: &Config) -> Vec<Item> {
    let mut out = scheduler_items(config);
    out.extend(store_items(config));
    out.extend(thread_items());
    out
}

fn scheduler_items(config: &Config) -> Vec<Item> {
    let runs = config.runs_active_max;
    let queued = size_of::<QueuedRef>() + TASK_ID_BYTES_MAX;
    let event = size_of::<RunEvent>()
        + TASK_ID_BYTES_MAX
        + 2 * BLOCK_NAME_BYTES_ASSUMED
        + REASON_BYTES_ASSUMED;
    vec![
        item(
            "run slots",
            runs,
            "runs",
            run_slot_bytes(),
            "variables + outputs + inputs (bounds in compact JSON bytes; a serde_json Value can \
             take several times that on the heap) + FIBERS_MAX x (BLOCK_DEPTH_MAX+1) frames + \
             execution path + checkpoint string; block names have no limit \
             (BLOCK_NAME_BYTES_ASSUMED); frame data (IterateListBp's list) has no byte bound",
        ),
        item(
            "run event queues",
            runs * RUN_EVENTS_QUEUED_MAX,
            "events",
            size_of::<Event>(),
            "RUN_EVENTS_QUEUED_MAX per loaded run",
        ),
        item(
            "step output",
            step_records_max(),
            "records",
            record_bytes(),
            "one step at a time: STEP_OPS_MAX x RECORDS_PER_OP_ASSUMED + an unwind of every \
             frame; payloads have no in-memory bound (RECORD_PAYLOAD_BYTES_ASSUMED)",
        ),
        item(
            "step writes in flight",
            runs * step_records_max(),
            "records",
            record_bytes(),
            "one step write per loaded run (its checkpoint is in run slots); records are \
             truncated only inside the writer. Control-only loads (stop of a paused run) are \
             not counted: they have no cap",
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
            (runs + 8) * FIBERS_MAX,
            "timers",
            timer_bytes(),
            "(runs_active_max + 8) x FIBERS_MAX; deadline map + cancel index, each with the run id",
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
            "RUN_EVENTS_CAPACITY; a log event <= LOG_LINE_BYTES_MAX, reasons have no limit \
             (REASON_BYTES_ASSUMED)",
        ),
        item(
            "compiled flows",
            FLOW_CACHE_MAX + runs,
            "flows",
            compiled_flow_bytes(),
            "FLOW_CACHE_MAX cached + one per loaded run (a run keeps its flow after eviction); \
             size derived from DEFINITION_BYTES_MAX x COMPILED_FLOW_BYTES_PER_DEFINITION_BYTE_\
             ASSUMED + FLOW_BLOCKS_MAX blocks, not measured",
        ),
        item(
            "data cache",
            CACHE_ENTRIES_MAX,
            "entries",
            CACHE_KEY_BYTES_MAX
                + CACHE_VALUE_BYTES_MAX
                + 2 * size_of::<String>()
                + MAP_ENTRY_OVERHEAD_BYTES_ASSUMED,
            "in-memory mirror of the cache table: CACHE_ENTRIES_MAX x (key + value)",
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
    fn a_run_slot_holds_at_least_its_bounded_maps_and_checkpoint() {
        let maps = VARIABLES_BYTES_MAX + OUTPUTS_BYTES_MAX + TASK_INPUTS_BYTES_MAX;
        assert!(run_slot_bytes() > maps + CHECKPOINT_BYTES_MAX);
    }
}
