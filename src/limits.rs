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
pub const BLOCK_DEPTH_MAX: usize = 32;

/// Blocks in one definition. More → compile error.
pub const FLOW_BLOCKS_MAX: usize = 2_000;

/// Bytes of one definition file or definition JSON. Larger → load error naming the limit.
pub const DEFINITION_BYTES_MAX: usize = 4 * 1024 * 1024;

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

// ---------------------------------------------------------------------------------------------
// Runs (engine)
// ---------------------------------------------------------------------------------------------

/// Entries in a run's `task.variables`. A new variable past it fails the block naming the limit.
pub const VARIABLES_ENTRIES_MAX: usize = 256;

/// Total bytes (compact JSON) of a run's `task.variables`. A write past it fails the block.
pub const VARIABLES_BYTES_MAX: usize = 256 * 1024;

/// Total bytes of a run's block outputs (`blocks.*`). A write past it fails the block.
pub const OUTPUTS_BYTES_MAX: usize = 256 * 1024;

/// Total bytes of a run's task inputs. A start request past it is rejected.
pub const TASK_INPUTS_BYTES_MAX: usize = 64 * 1024;

/// Branches ("fibers") alive at once in one run: the root plus every parallel branch and
/// parallel-repeat copy. A fork past it fails the parallel block naming the limit.
pub const FIBERS_MAX: usize = 256;

/// Engine operations (block starts, branch ends, wake-ups) for one run in one step. At the limit
/// the step yields back to the scheduler with the run still ready, so one busy run (a loop with no
/// waits) cannot starve the others and one step's output stays bounded.
pub const STEP_OPS_MAX: usize = 512;

/// Length of the execution path ring (the last N block names a run went through). Older entries
/// are evicted; the full history is in the block records.
pub const EXECUTION_PATH_LEN: usize = 64;

/// Bytes of one task log line. Longer lines are truncated with a marker.
pub const LOG_LINE_BYTES_MAX: usize = 4 * 1024;

/// Bytes of the inputs or outputs stored in one block record. Longer values are truncated with a
/// marker (the run's own state is not truncated; it is bounded by the limits above).
pub const RECORD_VALUE_BYTES_MAX: usize = 16 * 1024;

/// Bytes of a run's `stateDescription`. Longer → truncated with a marker.
pub const STATE_DESCRIPTION_BYTES_MAX: usize = 4 * 1024;

// ---------------------------------------------------------------------------------------------
// Compile-time relationships
// ---------------------------------------------------------------------------------------------

const _: () = assert!(BLOCK_DEPTH_MAX < FLOW_BLOCKS_MAX);
const _: () = assert!(PARALLEL_REPEAT_MAX as usize <= FIBERS_MAX);
const _: () = assert!(EXPR_STRING_BYTES_MAX <= VARIABLES_BYTES_MAX);
const _: () = assert!(RECORD_VALUE_BYTES_MAX <= OUTPUTS_BYTES_MAX);
