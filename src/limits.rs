//! Every capacity in vwed, in one place: what is bounded, by how much, and what happens at the
//! limit. Nothing in the codebase queues, caches or grows without a constant from this file.
//!
//! Naming: `<THING>_<UNIT>_MAX`, units last. Relationships between limits are asserted at compile
//! time at the bottom of the file. `vwed limits` prints the memory each bound allows.

// ---------------------------------------------------------------------------------------------
// Definitions (compile step, `vwed check`)
// ---------------------------------------------------------------------------------------------

/// Deepest block nesting a definition may have (RootBp is depth 0). Deeper → compile error; the
/// engine's frame stacks are allocated with this capacity and never grow past it.
pub const BLOCK_DEPTH_MAX: usize = 24;

/// Blocks in one definition. More → compile error.
pub const FLOW_BLOCKS_MAX: usize = 2_000;

/// Bytes of one definition's JSON (its `detail` tree). Larger → compile error naming the limit.
/// Real definitions are a few KiB; this bounds every compiled flow in memory.
pub const DEFINITION_BYTES_MAX: usize = 256 * 1024;

/// Bytes of one definition file (a `.task` export may hold many definitions). Larger → load
/// error naming the limit, before the file is read.
pub const DEFINITION_FILE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Definitions in one `.task` file. More → load error.
pub const DEFINITIONS_PER_FILE_MAX: usize = 1_000;

/// Diagnostics collected for one definition; past it one final "too many diagnostics" entry is
/// added and the rest dropped.
pub const DIAGNOSTICS_MAX: usize = 500;

/// Shortest period of a periodic definition. Shorter → compile error (a periodic run every few
/// milliseconds would flood the store).
pub const PERIOD_MS_MIN: i64 = 100;

/// `RepeatNumBp` iteration count (RDS limit). Larger → compile error (Simple) or block failure.
pub const REPEAT_NUM_MAX: i64 = 1_000;

/// `ParallelRepeatNBp` copies (RDS limit). Larger → compile error (Simple) or block failure.
pub const PARALLEL_REPEAT_MAX: i64 = 100;

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

/// Bytes of one expression's text. Longer → parse error.
pub const EXPR_TEXT_BYTES_MAX: usize = 16 * 1024;

/// Nesting depth of an expression's syntax tree (parentheses, sub-expressions, unary operators;
/// flat operator and path chains do not nest). Deeper → parse error (the parser and evaluator
/// recurse at most this deep). Also the most elements a `split` regex may have (more →
/// evaluation error), since its matcher recurses once per element.
pub const EXPR_DEPTH_MAX: usize = 64;

/// Evaluation steps for one evaluation: nodes and path steps visited, plus regex matching steps
/// of `split`. More → evaluation error naming the limit.
pub const EXPR_STEPS_MAX: usize = 100_000;

/// Bytes of a string an expression produces (concatenation, helpers). Longer → evaluation error.
pub const EXPR_STRING_BYTES_MAX: usize = 64 * 1024;

/// Items in a list or map an expression produces (literals, `split`). More → evaluation error.
pub const EXPR_COLLECTION_ITEMS_MAX: usize = 10_000;

/// Heap bytes of the values one evaluation copies into lists, maps and its result. Past it
/// the evaluation fails naming the limit (a list literal of many references to a large
/// variable cannot balloon).
pub const EXPR_RESULT_BYTES_MAX: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// Runs (engine)
// ---------------------------------------------------------------------------------------------

/// Entries in a run's `task.variables`. A new variable past it fails the block naming the limit.
pub const VARIABLES_ENTRIES_MAX: usize = 256;

/// Heap bytes (estimated by `value::approx_bytes`) of a run's `task.variables`. A write past it
/// fails the block naming the limit.
pub const VARIABLES_BYTES_MAX: usize = 128 * 1024;

/// Heap bytes (estimated by `value::approx_bytes`) of a run's block outputs (`blocks.*`). A
/// write past it fails the block naming the limit.
pub const OUTPUTS_BYTES_MAX: usize = 128 * 1024;

/// Bytes (stored JSON) of a run's task inputs. A start request past it is rejected naming the
/// limit.
pub const TASK_INPUTS_BYTES_MAX: usize = 32 * 1024;

/// Branches ("fibers") alive at once in one run: the root plus every parallel branch and
/// parallel-repeat copy. A fork past it fails the parallel block naming the limit.
pub const FIBERS_MAX: usize = 128;

/// Engine operations (block starts, branch ends, wake-ups) for one run in one step. At the limit
/// the step yields back to the scheduler with the run still ready, so one busy run (a loop with no
/// waits) cannot starve the others and one step's output stays bounded.
pub const STEP_OPS_MAX: usize = 256;

/// Heap bytes of all evaluated parameters of one block at its start. Past it the block fails
/// naming the limit (bounds a block with thousands of parameters each copying a large value).
pub const BLOCK_INPUTS_BYTES_MAX: usize = 256 * 1024;

/// Heap bytes a run's frames keep for themselves (`IterateListBp` keeps its list). A loop whose
/// list would pass it fails naming the limit.
pub const FRAME_DATA_BYTES_MAX: usize = 64 * 1024;

/// Bytes of records (block records, logs, cache writes) one step produces. Past it the step
/// yields like at `STEP_OPS_MAX`, so one step's write in flight stays bounded.
pub const STEP_RECORD_BYTES_MAX: usize = 256 * 1024;

/// Length of the execution path ring (the last N block names a run went through). Older entries
/// are evicted; the full history is in the block records.
pub const EXECUTION_PATH_LEN: usize = 64;

/// Bytes of one task log line. Longer lines are truncated with a marker.
pub const LOG_LINE_BYTES_MAX: usize = 4 * 1024;

/// Bytes of the inputs or outputs stored in one block record. Longer values are truncated with a
/// marker (the run's own state is not truncated; it is bounded by the limits above).
pub const RECORD_VALUE_BYTES_MAX: usize = 4 * 1024;

/// Bytes of a run id (`taskRecordId`). A submission with a longer id is refused.
pub const TASK_ID_BYTES_MAX: usize = 128;

/// Bytes of a run's `stateDescription`. Longer → truncated with a marker.
pub const STATE_DESCRIPTION_BYTES_MAX: usize = 4 * 1024;

/// Levels of sub-tasks below a run started by a client (a child is level 1, its child 2…).
/// A `SubTask` block that would start a child deeper than this fails (BlockFailure naming the
/// limit) and starts nothing, so a definition that starts itself cannot recurse without end.
pub const SUB_TASK_DEPTH_MAX: usize = 8;

/// Children of one run that have not ended. A `SubTask` block that would start one more fails
/// (BlockFailure naming the limit) and starts nothing; a child that ends makes room.
pub const SUB_TASKS_LIVE_PER_RUN_MAX: usize = 100;

/// Pause before `StopTaskBp`/`SuspendTaskBp`/`StartTaskBp` ask again when the driver answers
/// busy (e.g. `CONTROL_LOADS_MAX` commands in progress); the block waits meanwhile.
pub const TASK_CONTROL_RETRY_MS: u64 = 200;

/// Bytes of an `outOrderNo` a block sets (`SetOutOrderNoBp`). Longer → truncated with a marker
/// (lookups by that number then need the truncated text).
pub const OUT_ORDER_NO_BYTES_MAX: usize = 256;

// ---------------------------------------------------------------------------------------------
// Store (SQLite)
// ---------------------------------------------------------------------------------------------

/// Write jobs waiting in the bounded channel to the store's writer thread. When full, `write()`
/// callers wait (async) or block (`write_blocking`) until the writer takes a job; the queue never
/// grows past this.
pub const WRITER_QUEUE_MAX: usize = 256;

/// Write jobs the writer groups into one transaction (group commit). Jobs beyond it wait in the
/// queue for the next transaction.
pub const GROUP_COMMIT_MAX: usize = 64;

/// Read connections in the r2d2 pool, and permits of the semaphore that gates async reads (each
/// holds one blocking thread). Further async readers wait for a permit; blocking readers wait for
/// a connection up to `READ_CONNECTION_WAIT_MS`.
pub const READ_POOL_SIZE: u32 = 4;

/// Milliseconds a blocking reader waits for a free pooled connection. Past it the read fails with
/// a limit error naming `READ_POOL_SIZE`.
pub const READ_CONNECTION_WAIT_MS: u64 = 10_000;

/// SQLite page cache per connection, KiB (`PRAGMA cache_size=-N`). At the limit SQLite evicts
/// pages (it re-reads from the OS cache); there is one writer plus `READ_POOL_SIZE` readers.
pub const SQLITE_CACHE_KIB: usize = 4 * 1024;

/// Prepared statements cached per connection. Past it the least recently used one is finalized.
pub const SQLITE_STATEMENT_CACHE_MAX: usize = 64;

/// Bytes the WAL file is truncated to after a checkpoint (`PRAGMA journal_size_limit`). Between
/// checkpoints the WAL may grow past it; after each checkpoint it shrinks back.
pub const SQLITE_JOURNAL_SIZE_LIMIT_BYTES: i64 = 16 * 1024 * 1024;

/// Heap SQLite may allocate in the whole process (`PRAGMA hard_heap_limit`, set once). At the
/// limit the SQLite call fails with SQLITE_NOMEM, reported as a limit error naming this constant.
pub const SQLITE_HARD_HEAP_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// Milliseconds a connection waits on a lock held by another connection (`PRAGMA busy_timeout`)
/// before the statement fails with SQLITE_BUSY.
pub const BUSY_TIMEOUT_MS: u64 = 5_000;

/// Terminal task records (finished, failed, stopped) kept. Older ones (by end time) are pruned
/// with their block records, logs and checkpoint, `PRUNE_BATCH_ROWS` at a time.
pub const TASK_HISTORY_ROWS_MAX: usize = 100_000;

/// Block records kept across all tasks. The oldest beyond it are pruned, `PRUNE_BATCH_ROWS` at a
/// time. Worst case on disk: this many × 2 × `RECORD_VALUE_BYTES_MAX`.
pub const BLOCK_RECORD_ROWS_MAX: usize = 500_000;

/// Task log lines kept across all tasks. The oldest beyond it are pruned, `PRUNE_BATCH_ROWS` at a
/// time. Worst case on disk: this many × `LOG_LINE_BYTES_MAX`.
pub const TASK_LOG_ROWS_MAX: usize = 500_000;

/// Events kept in the outbox that `/api/events` replays from (`Last-Event-ID`). Older ones are
/// pruned (eight `PRUNE_BATCH_ROWS` batches a pass); a client asking for a pruned id gets an
/// explicit `reset` event, never a silent gap.
pub const OUTBOX_ROWS_MAX: usize = 20_000;

/// Bytes of one outbox event's payload at most: its reason and state description are cut at
/// `LOG_LINE_BYTES_MAX` and `STATE_DESCRIPTION_BYTES_MAX`; the rest is ids and names.
pub const OUTBOX_EVENT_BYTES_MAX: usize = LOG_LINE_BYTES_MAX + STATE_DESCRIPTION_BYTES_MAX + 1024;

/// Committed outbox events buffered in memory for live `/api/events` clients. A client that
/// falls further behind re-reads the missed events from the outbox by id.
pub const OUTBOX_LIVE_BUFFER: usize = 1_024;

/// How long ended runs of periodic definitions are kept (RDS deletes them after 24 h). Older
/// ones are pruned, with their block records and logs, `PRUNE_BATCH_ROWS` at a time.
pub const PERIODIC_RECORD_RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// Rows one pruning pass deletes at most per table, so a pass is one short transaction. A pass
/// that fills its batch runs again after the next commit until the history is within its caps.
pub const PRUNE_BATCH_ROWS: usize = 500;

/// Commits between two pruning passes of the writer.
pub const PRUNE_EVERY_COMMITS: u64 = 100;

/// Keys in the data cache (`CacheDataBp` and the cache API). Setting a new key at the limit fails
/// with a limit error; existing keys can still be overwritten or deleted.
pub const CACHE_ENTRIES_MAX: usize = 10_000;

/// Bytes of one data cache value. Longer → limit error, nothing stored.
pub const CACHE_VALUE_BYTES_MAX: usize = 64 * 1024;

/// Bytes of one data cache key. Longer → limit error, nothing stored.
pub const CACHE_KEY_BYTES_MAX: usize = 1_024;

/// Task ids one out-order-number lookup returns (RDS lets several tasks share one). More are
/// left out of the answer, oldest first kept.
pub const TASKS_PER_OUT_ORDER_MAX: usize = 1_000;

/// Bytes of one run checkpoint (cursors, variables, outputs as JSON). Larger → limit error, the
/// write job fails and nothing of it is stored.
pub const CHECKPOINT_BYTES_MAX: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Scheduler
// ---------------------------------------------------------------------------------------------

/// Runs loaded and advanced at once (default of `Config::runs_active_max`). Further accepted runs
/// wait, queued on disk; a paused or interrupted run frees its slot.
pub const RUNS_ACTIVE_MAX: usize = 32;

/// Accepted runs waiting to start (default of `Config::backlog_max`). A submission past it is
/// refused with "queue full" naming this limit; nothing is stored.
pub const BACKLOG_MAX: usize = 100_000;

/// Priority levels of the ready queues: a run's level is its priority clamped to
/// `0..PRIORITY_LEVELS`. Priorities outside still order site queues and show as given.
pub const PRIORITY_LEVELS: usize = 10;

/// Run ids held in memory per priority level (default of `Config::ready_ring_capacity`). The
/// backlog beyond stays on disk and is read in when the ring drains below half.
pub const READY_RING_CAPACITY: usize = 256;

/// Every this many milliseconds a queued run waits, it competes as if one level higher, so low
/// priorities are not starved (default of `Config::aging_step_ms`).
pub const AGING_STEP_MS: i64 = 10_000;

/// Commands (stop, pause, resume, ...) waiting for the scheduler. Senders wait when it is full.
pub const SCHEDULER_COMMANDS_MAX: usize = 256;

/// Events a loaded run can have waiting while its previous step commits (wake-ups of its
/// fibers plus control commands). By construction a run has at most one wait per fiber; a
/// control command past the bound is answered "busy".
pub const RUN_EVENTS_QUEUED_MAX: usize = FIBERS_MAX + 8;

/// Run events (block and status changes) buffered for watchers such as `vwed run`. A watcher
/// that falls behind loses the oldest and is told how many (broadcast lag).
pub const RUN_EVENTS_CAPACITY: usize = 4_096;

/// Compiled flows kept in memory, by (definition id, version). The least recently used is
/// dropped past it and compiled again from the store when next needed.
pub const FLOW_CACHE_MAX: usize = 16;

/// Paused or interrupted runs loaded at once only to apply a stop or manual end (they do not
/// take a run slot). A further such command is answered "busy" naming this limit.
pub const CONTROL_LOADS_MAX: usize = 8;

/// Store operations the driver keeps in flight beyond one step write per loaded run and one
/// refill per level (control commands, periodic ticks). At the limit the driver stops taking
/// commands until some complete; senders wait on the bounded command channel.
pub const DRIVER_EXTRA_INFLIGHT_MAX: usize = 64;

/// Definition saves in flight at once (each carries up to `DEFINITION_BYTES_MAX`). Further
/// saves wait their turn.
pub const DEFINITION_SAVES_MAX: usize = 2;

/// Heap bytes of the in-memory mirror of the data cache (keys + values). A write past it fails
/// its block naming the limit.
pub const CACHE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Periodic definitions scheduled at once. More → the extra definitions are not scheduled and
/// a warning names this limit.
pub const PERIODIC_DEFINITIONS_MAX: usize = 256;

/// Block records kept per run; a long loop prunes its oldest records past it (the checkpoint,
/// not the records, is what recovery uses).
pub const BLOCK_RECORDS_PER_RUN_MAX: usize = 10_000;

/// Wait before a run whose step could not be written is loaded again from its last good
/// checkpoint; doubled after each further failure of the same run.
pub const STORE_RETRY_MS: u64 = 2_000;

/// Failed step writes in a row after which a run is ended as failed (1004) with the store's
/// error as reason, instead of being retried forever (with `STORE_RETRY_MS` doubling, about two
/// minutes of retries).
pub const STORE_RETRIES_MAX: u32 = 6;

/// Tokio tasks the tracker (`src/tasks.rs`) runs at once besides HTTP connections (the server's
/// tracker adds one per allowed connection). A spawn past it is refused with an error naming it.
pub const TASKS_TRACKED_MAX: usize = 64;

/// Time a graceful shutdown (SIGTERM/SIGINT) waits for steps in flight to commit before the
/// process exits anyway (the store is still closed cleanly; runs resume from their checkpoints).
pub const SHUTDOWN_GRACE_MS: u64 = 10_000;

/// Tokio worker threads of the appliance's runtime (a controller has few cores).
pub const RUNTIME_WORKER_THREADS: usize = 2;

/// Tokio blocking threads (SQLite reads run there, at most `READ_POOL_SIZE` at a time).
pub const RUNTIME_BLOCKING_THREADS: usize = 8;

/// Stack size of every runtime thread.
pub const RUNTIME_THREAD_STACK_BYTES: usize = 2 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// HTTP API and configuration caps
// ---------------------------------------------------------------------------------------------

/// HTTP connections served at once (default of `[http] connections_max`). Further connections
/// wait in the listen backlog until one closes.
pub const HTTP_CONNECTIONS_MAX: usize = 32;

/// Bytes of one request body (default of `[http] body_bytes_max`). A larger body is refused
/// with 413 naming the limit, before it is read. Real `.task` exports are a few KiB; raise it in
/// the config for bigger imports (the memory budget grows by connections × this).
pub const REQUEST_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Milliseconds a client has to send its request headers (default of
/// `[http] header_timeout_ms`). A client that does not send them in time is disconnected.
pub const HTTP_HEADER_TIMEOUT_MS: u64 = 10_000;

/// Milliseconds one request handler may take (default of `[http] handler_timeout_ms`). A
/// handler past it answers 503 naming the limit.
pub const HTTP_HANDLER_TIMEOUT_MS: u64 = 30_000;

/// Largest `[scheduler] runs_active_max` a configuration file may set. More → the file is
/// refused naming the key (each active run holds up to `CHECKPOINT_BYTES_MAX` in memory).
pub const CONFIG_RUNS_ACTIVE_MAX: usize = 1_024;

/// Largest `[scheduler] backlog_max` a configuration file may set. More → the file is refused
/// naming the key (the backlog is on disk, but unbounded disk is still unbounded).
pub const CONFIG_BACKLOG_MAX: usize = 10_000_000;

/// Largest `[scheduler] ready_ring_capacity` a configuration file may set (there are
/// `PRIORITY_LEVELS` rings). More → the file is refused naming the key.
pub const CONFIG_READY_RING_CAPACITY_MAX: usize = 65_536;

/// Largest `[http] connections_max` a configuration file may set. More → the file is refused
/// naming the key (each connection holds buffers).
pub const CONFIG_HTTP_CONNECTIONS_MAX: usize = 4_096;

/// Largest `[http] body_bytes_max` a configuration file may set. More → the file is refused
/// naming the key.
pub const CONFIG_REQUEST_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Bytes of the configuration file. Larger → the file is refused naming the limit, unread.
pub const CONFIG_FILE_BYTES_MAX: u64 = 64 * 1024;

/// Shortest bearer token accepted (characters). Shorter → the configuration is refused naming
/// `token`: a short token can be guessed.
pub const TOKEN_CHARS_MIN: usize = 16;
// HTTP API
// ---------------------------------------------------------------------------------------------

/// Outbox events one `/api/events` replay read fetches (a replay is paged, never loaded whole).
pub const SSE_REPLAY_PAGE: usize = 64;

/// Quiet time after which an `/api/events` stream sends a keep-alive comment (a dead client is
/// noticed when the write fails).
pub const SSE_KEEPALIVE_MS: u64 = 15_000;

/// Items a listing endpoint returns when the request names no `limit`.
pub const API_LIST_DEFAULT: usize = 100;

/// Items one listing request may ask for (`limit`); a larger `limit` is refused with 400 naming
/// this constant. Block records and logs of a task are listed up to this many.
pub const API_LIST_MAX: usize = 1_000;

/// Webhooks (`[[webhook]]` tables) one configuration may declare; a ninth is refused at load
/// with an error naming `webhook` and this constant. Also the most webhook requests in flight
/// (one per webhook).
pub const WEBHOOKS_MAX: usize = 8;

/// Outbox events a webhook reads from the store at once; the rest wait for the next page, so a
/// webhook far behind holds at most this many events in memory.
pub const WEBHOOK_BATCH: usize = 32;

/// Total time one delivery attempt may take (connect, send, response head and body); past it
/// the attempt counts as failed and is retried with backoff.
pub const WEBHOOK_TIMEOUT_MS: u64 = 5_000;

/// Bytes of a webhook response body read; a larger body makes the attempt fail (and retry), so
/// a receiver cannot make the appliance buffer more.
pub const WEBHOOK_RESPONSE_BYTES_MAX: usize = 16 * 1024;

/// First wait before retrying a failed webhook delivery; each further failure doubles it.
pub const WEBHOOK_RETRY_BASE_MS: u64 = 500;

/// Longest wait between retries of one webhook delivery; the doubling stops here.
pub const WEBHOOK_RETRY_MAX_MS: u64 = 30_000;

/// Attempts to deliver one event to one webhook; after the last failure the event is logged,
/// counted as dropped and the webhook moves on to the next event.
pub const WEBHOOK_ATTEMPTS_MAX: u32 = 8;

/// Characters a webhook `secret` must have at least; a shorter one is refused at load.
pub const WEBHOOK_SECRET_CHARS_MIN: usize = 16;

// ---------------------------------------------------------------------------------------------
// Scripts (`ScriptBp`, `ScriptVariablesBp`, `TriggerTaskEventBp`: src/script/)
// ---------------------------------------------------------------------------------------------

/// Pause before a script block asks again when `SCRIPT_QUEUE_MAX` calls are waiting (the
/// block waits meanwhile; stop and pause end the wait).
pub const SCRIPT_BUSY_RETRY_MS: u64 = 200;

/// Script slots: OS threads, each owning one QuickJS runtime, that run script calls one at a
/// time. More concurrent calls wait in the script queue (`SCRIPT_QUEUE_MAX`).
pub const SCRIPT_SLOTS: usize = 2;

/// Script calls (and script-file writes, which run on the slots too) waiting for a free slot.
/// A call past it fails at once with a busy error naming the limit (never waits, never drops a
/// queued call).
pub const SCRIPT_QUEUE_MAX: usize = 32;

/// Heap bytes of one slot's QuickJS runtime (its loaded scripts and a call's data together). An
/// allocation past it fails the call with a memory error naming the limit; the slot then
/// starts a fresh runtime (scripts reloaded) before its next call.
pub const SCRIPT_MEMORY_BYTES_MAX: usize = 32 * 1024 * 1024;

/// Milliseconds one script call may run (also each script file's top-level code at load). Past
/// it QuickJS's interrupt handler stops the script: the call fails with a timeout naming the
/// limit and the slot starts a fresh runtime. Time spent inside a `jj` host call is counted
/// but not interrupted (those calls have their own timeouts).
pub const SCRIPT_CALL_MS_MAX: u64 = 5_000;

/// Bytes of stack QuickJS may use for a script (deep recursion). Past it the script gets a
/// `RangeError` it may catch; uncaught, the call fails naming the limit.
pub const SCRIPT_STACK_BYTES_MAX: usize = 256 * 1024;

/// Stack of each script slot's thread: QuickJS's own stack limit plus the Rust frames around it.
pub const SCRIPT_THREAD_STACK_BYTES: usize = 1024 * 1024;

/// Bytes of one script file. A larger upload is refused (HTTP 413) and a larger file found in
/// the scripts folder is skipped at load with an error in the log.
pub const SCRIPT_FILE_BYTES_MAX: usize = 256 * 1024;

/// Script files in the scripts folder. Adding one more is refused (HTTP 422); files past it
/// found on disk are not loaded (in name order), with an error in the log.
pub const SCRIPT_FILES_MAX: usize = 64;

/// Bytes of the JSON text of a script call's argument. A larger one fails the call at once
/// (before queueing) naming the limit.
pub const SCRIPT_ARG_BYTES_MAX: usize = 256 * 1024;

/// Bytes of the JSON text of a script call's return value. A larger one fails the call naming
/// the limit.
pub const SCRIPT_RESULT_BYTES_MAX: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Compile-time relationships
// ---------------------------------------------------------------------------------------------

const _: () = assert!(BLOCK_DEPTH_MAX < FLOW_BLOCKS_MAX);
const _: () = assert!(PARALLEL_REPEAT_MAX as usize <= FIBERS_MAX);
const _: () = assert!(EXPR_STRING_BYTES_MAX <= VARIABLES_BYTES_MAX);
const _: () = assert!(RECORD_VALUE_BYTES_MAX <= OUTPUTS_BYTES_MAX);
const _: () = assert!(GROUP_COMMIT_MAX <= WRITER_QUEUE_MAX);
const _: () = assert!(
    (READ_POOL_SIZE as usize + 1) * SQLITE_CACHE_KIB * 1024 * 2 <= SQLITE_HARD_HEAP_LIMIT_BYTES
);
const _: () = assert!(VARIABLES_BYTES_MAX + OUTPUTS_BYTES_MAX < CHECKPOINT_BYTES_MAX);
const _: () = assert!(DEFINITION_BYTES_MAX < SQLITE_HARD_HEAP_LIMIT_BYTES / 4);
const _: () = assert!(READ_POOL_SIZE as usize <= RUNTIME_BLOCKING_THREADS);
const _: () = assert!(READY_RING_CAPACITY >= 2);
const _: () = assert!(RUN_EVENTS_QUEUED_MAX > FIBERS_MAX);
const _: () = assert!(CACHE_VALUE_BYTES_MAX <= CACHE_BYTES_MAX);
const _: () = assert!(VARIABLES_BYTES_MAX <= EXPR_RESULT_BYTES_MAX);
const _: () = assert!(DEFINITION_BYTES_MAX <= DEFINITION_FILE_BYTES_MAX);
const _: () = assert!(RUNS_ACTIVE_MAX <= CONFIG_RUNS_ACTIVE_MAX);
const _: () = assert!(BACKLOG_MAX <= CONFIG_BACKLOG_MAX);
const _: () = assert!(READY_RING_CAPACITY <= CONFIG_READY_RING_CAPACITY_MAX);
const _: () = assert!(HTTP_CONNECTIONS_MAX <= CONFIG_HTTP_CONNECTIONS_MAX);
const _: () = assert!(REQUEST_BODY_BYTES_MAX <= CONFIG_REQUEST_BODY_BYTES_MAX);
const _: () = assert!(WEBHOOK_RETRY_BASE_MS <= WEBHOOK_RETRY_MAX_MS);
const _: () = assert!(WEBHOOKS_MAX < TASKS_TRACKED_MAX);
const _: () = assert!(SCRIPT_STACK_BYTES_MAX * 2 <= SCRIPT_THREAD_STACK_BYTES);
const _: () = assert!(SCRIPT_FILE_BYTES_MAX <= REQUEST_BODY_BYTES_MAX);
const _: () = assert!(SCRIPT_FILE_BYTES_MAX * 4 <= SCRIPT_MEMORY_BYTES_MAX);
const _: () = assert!(SCRIPT_RESULT_BYTES_MAX <= VARIABLES_BYTES_MAX);

/// Storage sites in the site table. Creating a new site at the limit fails with a limit error
/// (HTTP 422) and writes nothing; existing sites can still be changed or deleted.
pub const SITES_MAX: usize = 100_000;

/// Bytes of a site id, name, group, area, content or lock owner. Longer → the whole write is
/// refused with a limit error naming the field.
pub const SITE_TEXT_BYTES_MAX: usize = 256;

/// Bytes of a site's attributes (a JSON object, stored as text) or its tags. Larger → the write
/// is refused with a limit error.
pub const SITE_ATTRS_BYTES_MAX: usize = 8 * 1024;

/// Rows of the site change log. Each change appends one row; past the cap the oldest rows are
/// deleted in the same transaction, so the log keeps the newest `SITE_LOG_ROWS_MAX` changes.
pub const SITE_LOG_ROWS_MAX: usize = 100_000;

/// Sites one batch create or import may carry. A larger batch is refused whole (HTTP 422).
pub const SITE_BATCH_MAX: usize = 10_000;

/// Site-change events one write job keeps for live `/api/events` clients. Past it, the job keeps
/// the first `SITE_EVENTS_PER_WRITE_MAX - 1` and the newest: a live client sees the id gap and
/// re-reads the missing events from the outbox, where all of them are. Bounds the memory of a
/// large import or release (the outbox and webhooks are not affected).
pub const SITE_EVENTS_PER_WRITE_MAX: usize = 16;

/// Site operations waiting in the persisted site wait queue (`GetIdleSiteBp` with no match, a
/// lock or unlock held up by another owner). A block that would wait past it fails (1006) with
/// a message naming the limit; retry queues it again. Also bounds the waiters a serve pass
/// reads after a change.
pub const SITE_WAITERS_MAX: usize = 10_000;

/// Bytes of one site operation as stored (its filters, lists and values as JSON). Larger →
/// the block fails naming the limit (no site text is longer than `SITE_TEXT_BYTES_MAX`, so
/// only long group lists come near it).
pub const SITE_OP_BYTES_MAX: usize = 4 * 1024;

/// Waiters a serve pass reads at a time (keyset pages), bounding its memory to
/// `SITE_SERVE_PAGE × SITE_OP_BYTES_MAX` whatever the queue length.
pub const SITE_SERVE_PAGE: usize = 256;

/// Times a fleet call is tried again while the fleet is unreachable (pauses doubling from
/// `FLEET_RETRY_MS`); then the robot block fails (1006) naming the error, and retry asks again.
pub const FLEET_RETRIES_MAX: u32 = 5;

/// First pause before a fleet call is tried again (then doubling: 1, 2, 4, 8, 16 s).
pub const FLEET_RETRY_MS: u64 = 1_000;

/// Each retry pause varies by up to this many percent either way (jitter), so robot blocks
/// that lost the same core do not call it again all at once.
pub const FLEET_RETRY_JITTER_PERCENT: u64 = 20;

/// Waiting site requests `GET /api/sites/waiters` lists at most (the oldest first).
pub const SITE_WAITERS_LIST_MAX: usize = 1_000;

// ---------------------------------------------------------------------------------------------
// Modbus TCP (the Modbus blocks, `src/modbus/`)
// ---------------------------------------------------------------------------------------------

/// Open Modbus TCP connections across all targets (default of `ModbusConfig::connections_max`).
/// A call that needs a new connection at the limit closes the least recently used idle one; if
/// every connection is busy it waits for one to be returned, at most the request timeout, then
/// fails with a transport error (retried like any transport error).
pub const MODBUS_CONNECTIONS_MAX: usize = 16;

/// Open connections to one target (host, port, slave) (default of
/// `ModbusConfig::connections_per_target_max`). Further calls to the same target wait for the
/// connection, as above: devices often accept only a few connections and answer one request at
/// a time anyway.
pub const MODBUS_CONNECTIONS_PER_TARGET_MAX: usize = 1;

/// Milliseconds to open a connection (name resolution included) (default of
/// `ModbusConfig::connect_timeout_ms`). Past it the call fails with a transport error and the
/// target's reconnect backoff grows.
pub const MODBUS_CONNECT_TIMEOUT_MS: u64 = 3_000;

/// Milliseconds one request may wait for its answer (default of
/// `ModbusConfig::request_timeout_ms`). Past it the connection is closed (its state is unknown)
/// and the call fails with a transport error; the next call connects again.
pub const MODBUS_REQUEST_TIMEOUT_MS: u64 = 2_000;

/// First pause after a failed connect before the same target is connected again (default of
/// `ModbusConfig::backoff_ms`). Calls in the pause fail at once with a transport error, without
/// touching the network; each further failure doubles the pause.
pub const MODBUS_RECONNECT_BACKOFF_MS: u64 = 1_000;

/// Longest reconnect pause (default of `ModbusConfig::backoff_max_ms`): the doubling stops
/// here, so a dead device is tried about twice a minute.
pub const MODBUS_RECONNECT_BACKOFF_MAX_MS: u64 = 30_000;

/// Failing targets whose reconnect backoff is remembered. Past it the entry whose pause ends
/// first is forgotten (that target's next call connects at once).
pub const MODBUS_BACKOFF_TARGETS_MAX: usize = 64;

/// Milliseconds between the reads of a Modbus wait and between the retries of a transport
/// error: RDS's `windTask.modbusConfig.retryDelay` default.
pub const MODBUS_RETRY_DELAY_MS: u64 = 2_000;

/// Shortest poll or retry delay: a shorter one is raised to it, so a misconfigured delay cannot
/// hammer a device.
pub const MODBUS_POLL_MS_MIN: u64 = 100;

/// Bytes of a Modbus host name or address (`ipModbusHost`), the DNS maximum. Longer → the
/// block's parameters are refused naming the parameter.
pub const MODBUS_HOST_BYTES_MAX: usize = 253;

/// Coils or discrete inputs one read may ask for (Modbus protocol maximum). More (`ipLength`)
/// → the block's parameters are refused naming the parameter.
pub const MODBUS_READ_BITS_MAX: u16 = 2_000;

/// Registers one read may ask for (Modbus protocol maximum). More → refused as above.
pub const MODBUS_READ_REGISTERS_MAX: u16 = 125;

/// Coils one write may set (Modbus protocol maximum). A longer `ipCoilStatus` array → refused
/// as above.
pub const MODBUS_WRITE_BITS_MAX: u16 = 1_968;

/// Holding registers one write may set (Modbus protocol maximum). A longer `ipRegisterData`
/// array → refused as above.
pub const MODBUS_WRITE_REGISTERS_MAX: u16 = 123;

const _: () = assert!(MODBUS_CONNECTIONS_PER_TARGET_MAX <= MODBUS_CONNECTIONS_MAX);
const _: () = assert!(MODBUS_CONNECTIONS_PER_TARGET_MAX > 0);
const _: () = assert!(MODBUS_RECONNECT_BACKOFF_MS <= MODBUS_RECONNECT_BACKOFF_MAX_MS);
const _: () = assert!(MODBUS_POLL_MS_MIN <= MODBUS_RETRY_DELAY_MS);
const _: () = assert!(MODBUS_CONNECT_TIMEOUT_MS > 0 && MODBUS_REQUEST_TIMEOUT_MS > 0);
const _: () = assert!(MODBUS_WRITE_BITS_MAX <= MODBUS_READ_BITS_MAX);
const _: () = assert!(MODBUS_WRITE_REGISTERS_MAX <= MODBUS_READ_REGISTERS_MAX);
