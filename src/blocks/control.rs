//! Flow control blocks (spec §3.3): sequencing, conditions, loops, parallel branches, jumps,
//! delays and try/catch. Each kind is a unit struct implementing [`Behaviour`] plus its
//! [`KindSpec`] entry.

use super::{single, Behaviour, Family, KindSpec, ParamSpec, ParamType as T, TRY_PHASE};
use crate::engine::{Action, Cx, Fork, Frame, LogLevel, Raise, Raised, Wait};
use crate::flow::model::{Block, Branch};
use crate::limits::{PARALLEL_REPEAT_MAX, REPEAT_NUM_MAX};
use crate::value::{self, Map, Value};

/// Default `WhileBp` sleep after each iteration (RDS, spec §3.11).
pub const WHILE_RETRY_PERIOD_MS: i64 = 1_000;
/// Wait before `StopOtherBranch` stops its siblings (RDS, spec §3.11).
pub const STOP_OTHER_BRANCH_DELAY_MS: i64 = 1_000;
/// Start spacing of `ParallelRepeatNBp` copies (RDS, spec §3.11).
pub const PARALLEL_REPEAT_STAGGER_MS: i64 = 50;

const DEFAULT: &[Branch] = &[Branch::Default];

// ----- RootBp, SerialFlowBp -------------------------------------------------------------------

#[derive(Debug)]
struct Serial;
impl Behaviour for Serial {
    fn start(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Ok(Action::RunBranch(Branch::Default))
    }
}

pub static ROOT: KindSpec = KindSpec {
    name: "RootBp",
    family: Family::Control,
    params: &[],
    branches: DEFAULT,
    behaviour: Some(&Serial),
};

pub static SERIAL_FLOW: KindSpec = KindSpec {
    name: "SerialFlowBp",
    family: Family::Control,
    params: &[],
    branches: DEFAULT,
    behaviour: Some(&Serial),
};

// ----- ParallelFlowBp -------------------------------------------------------------------------

#[derive(Debug)]
struct ParallelFlow;
impl Behaviour for ParallelFlow {
    fn start(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Ok(Action::Fork(Fork::EachChild(Branch::Default)))
    }
}

pub static PARALLEL_FLOW: KindSpec = KindSpec {
    name: "ParallelFlowBp",
    family: Family::Control,
    params: &[],
    branches: DEFAULT,
    behaviour: Some(&ParallelFlow),
};

// ----- IfBp, IfElseBp, IfElseIfBp -------------------------------------------------------------

#[derive(Debug)]
struct If;
impl Behaviour for If {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if cx.bool_param("condition").unwrap_or(false) {
            Ok(Action::RunBranch(Branch::Default))
        } else {
            Ok(Action::Done)
        }
    }
}

pub static IF: KindSpec = KindSpec {
    name: "IfBp",
    family: Family::Control,
    params: &[ParamSpec::opt("condition", T::Bool)],
    branches: DEFAULT,
    behaviour: Some(&If),
};

fn required_bool(cx: &Cx<'_>, name: &str) -> Result<bool, Raise> {
    cx.bool_param(name)
        .ok_or_else(|| Raise::Failure(format!("parameter {name} is required but is null")))
}

#[derive(Debug)]
struct IfElse;
impl Behaviour for IfElse {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let branch = if required_bool(cx, "conditionIf")? {
            Branch::If
        } else {
            Branch::Else
        };
        Ok(Action::RunBranch(branch))
    }
}

pub static IF_ELSE: KindSpec = KindSpec {
    name: "IfElseBp",
    family: Family::Control,
    params: &[ParamSpec::req("conditionIf", T::Bool)],
    branches: &[Branch::If, Branch::Else],
    behaviour: Some(&IfElse),
};

#[derive(Debug)]
struct IfElseIf;
impl Behaviour for IfElseIf {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let branch = if required_bool(cx, "conditionIf")? {
            Branch::If
        } else if required_bool(cx, "conditionElseIf")? {
            Branch::ElseIf
        } else {
            Branch::Else
        };
        Ok(Action::RunBranch(branch))
    }
}

pub static IF_ELSE_IF: KindSpec = KindSpec {
    name: "IfElseIfBp",
    family: Family::Control,
    // conditionElseIf is needed only when conditionIf is false, so it is not checked up front.
    params: &[
        ParamSpec::req("conditionIf", T::Bool),
        ParamSpec::opt("conditionElseIf", T::Bool),
    ],
    branches: &[Branch::If, Branch::ElseIf, Branch::Else],
    behaviour: Some(&IfElseIf),
};

// ----- WhileBp --------------------------------------------------------------------------------

const WHILE_BODY: u8 = 1;
const WHILE_SLEEP: u8 = 2;
const WHILE_FIRST_BODY: u8 = 3;

#[derive(Debug)]
struct While;

impl While {
    fn condition(v: Value) -> Result<bool, Raise> {
        if v.is_null() {
            return Err(Raise::Failure(
                "loopCondition: condition does not exist".into(),
            ));
        }
        Ok(value::to_bool(&v))
    }

    fn iterate(cx: &mut Cx<'_>, go_on: bool) -> Result<Action, Raise> {
        if !go_on || !cx.still_running() {
            return Ok(Action::Done);
        }
        let frame = cx.frame();
        frame.phase = WHILE_BODY;
        frame.index += 1;
        Ok(Action::RunBranch(Branch::Default))
    }
}

impl Behaviour for While {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        cx.set_outputs(Map::new())?;
        let period = cx
            .long_param("retryPeriod")?
            .unwrap_or(WHILE_RETRY_PERIOD_MS);
        let run_once = cx.bool_param("runOnce").unwrap_or(false);
        let condition = cx
            .any_param("loopCondition")
            .cloned()
            .unwrap_or(Value::Null);
        let frame = cx.frame();
        frame.limit = period.max(0);
        if run_once {
            frame.phase = WHILE_FIRST_BODY;
            frame.index = 1;
            return Ok(Action::RunBranch(Branch::Default));
        }
        let go_on = Self::condition(condition)?;
        Self::iterate(cx, go_on)
    }

    fn branch_done(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if !cx.still_running() {
            return Ok(Action::Done);
        }
        let go_on = Self::condition(cx.eval_param("loopCondition")?)?;
        let frame = cx.frame();
        if frame.phase == WHILE_FIRST_BODY || frame.limit == 0 {
            return Self::iterate(cx, go_on);
        }
        frame.phase = WHILE_SLEEP;
        frame.data = Value::Bool(go_on);
        let ms = frame.limit;
        Ok(Action::Wait(Wait::Timer { ms }))
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let go_on = cx.frame().data.as_bool().unwrap_or(false);
        Self::iterate(cx, go_on)
    }

    fn catches_break(&self) -> bool {
        true
    }
}

pub static WHILE: KindSpec = KindSpec {
    name: "WhileBp",
    family: Family::Control,
    params: &[
        ParamSpec::req("loopCondition", T::Bool),
        ParamSpec::opt("retryPeriod", T::Long),
        ParamSpec::opt("runOnce", T::Bool),
        ParamSpec::opt("printContinuously", T::Bool),
    ],
    branches: DEFAULT,
    behaviour: Some(&While),
};

// ----- RepeatNumBp ----------------------------------------------------------------------------

#[derive(Debug)]
struct RepeatNum;
impl Behaviour for RepeatNum {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let num = cx
            .long_param("num")?
            .ok_or_else(|| Raise::Failure("parameter num is required but is null".into()))?;
        if num > REPEAT_NUM_MAX {
            return Err(Raise::Failure(format!(
                "repeatLarge: num {num} is over REPEAT_NUM_MAX ({REPEAT_NUM_MAX})"
            )));
        }
        if num <= 0 {
            return Ok(Action::Done);
        }
        cx.frame().limit = num;
        self.next(cx)
    }

    fn branch_done(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if !cx.still_running() || cx.frame().index >= cx.frame().limit {
            return Ok(Action::Done);
        }
        self.next(cx)
    }
}

impl RepeatNum {
    fn next(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let frame = cx.frame();
        frame.index += 1;
        let index = frame.index;
        cx.set_outputs(single("index", Value::from(index)))?;
        Ok(Action::RunBranch(Branch::Default))
    }
}

pub static REPEAT_NUM: KindSpec = KindSpec {
    name: "RepeatNumBp",
    family: Family::Control,
    params: &[ParamSpec::req("num", T::Long)],
    branches: DEFAULT,
    behaviour: Some(&RepeatNum),
};

// ----- ParallelRepeatNBp ----------------------------------------------------------------------

#[derive(Debug)]
struct ParallelRepeatN;
impl Behaviour for ParallelRepeatN {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let num = cx
            .int_param("num")?
            .ok_or_else(|| Raise::Failure("parameter num is required but is null".into()))?;
        if i64::from(num) > PARALLEL_REPEAT_MAX {
            return Err(Raise::Failure(format!(
                "num {num} is over PARALLEL_REPEAT_MAX ({PARALLEL_REPEAT_MAX})"
            )));
        }
        if num <= 0 || cx.block().branch(Branch::Default).is_empty() {
            return Ok(Action::Done);
        }
        Ok(Action::Fork(Fork::Copies {
            branch: Branch::Default,
            copies: num as u32,
            stagger_ms: PARALLEL_REPEAT_STAGGER_MS,
        }))
    }
}

pub static PARALLEL_REPEAT_N: KindSpec = KindSpec {
    name: "ParallelRepeatNBp",
    family: Family::Control,
    params: &[ParamSpec::req("num", T::Int)],
    branches: DEFAULT,
    behaviour: Some(&ParallelRepeatN),
};

// ----- IterateListBp --------------------------------------------------------------------------

#[derive(Debug)]
struct IterateList;

impl IterateList {
    fn list(cx: &Cx<'_>) -> Result<Vec<Value>, Raise> {
        let bad = |v: &Value| {
            Raise::Failure(format!(
                "paramsError:{}",
                value::clip(&value::to_display_string(v))
            ))
        };
        match cx.any_param("list") {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Array(items)) => Ok(items),
                _ => Err(bad(&Value::String(s.clone()))),
            },
            Some(other) => Err(bad(other)),
        }
    }

    /// Starts iteration `frame.index` (0-based here; the frame keeps it 1-based).
    fn next(cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let frame = cx.frame();
        let i = frame.index as usize;
        let (size, item) = match &frame.data {
            Value::Array(items) => (items.len(), items[i].clone()),
            _ => unreachable!("IterateListBp keeps its list in frame data"),
        };
        frame.index += 1;
        let mut out = Map::new();
        out.insert("size".into(), Value::from(size));
        out.insert("index".into(), Value::from(i));
        out.insert("item".into(), item.clone());
        cx.set_outputs(out)?;
        let text = value::to_display_string(&item);
        cx.log(LogLevel::Info, format!("loop {}, item={}", i + 1, text));
        Ok(Action::RunBranch(Branch::Default))
    }

    fn finish(cx: &mut Cx<'_>) -> Result<Action, Raise> {
        cx.frame().data = Value::Null;
        cx.set_outputs(single("index", Value::from(0)))?;
        Ok(Action::Done)
    }
}

impl Behaviour for IterateList {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let items = Self::list(cx)?;
        if items.is_empty() {
            return Self::finish(cx);
        }
        cx.frame().limit = items.len() as i64;
        cx.keep(Value::Array(items))?;
        Self::next(cx)
    }

    fn branch_done(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if !cx.still_running() || cx.frame().index >= cx.frame().limit {
            return Self::finish(cx);
        }
        Self::next(cx)
    }

    fn catches_break(&self) -> bool {
        true
    }

    fn on_break(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Self::finish(cx)
    }
}

pub static ITERATE_LIST: KindSpec = KindSpec {
    name: "IterateListBp",
    family: Family::Control,
    params: &[ParamSpec::opt("list", T::List)],
    branches: DEFAULT,
    behaviour: Some(&IterateList),
};

// ----- BreakBp, ReturnBp, SkipToComponent ----------------------------------------------------

#[derive(Debug)]
struct Break;
impl Behaviour for Break {
    fn start(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Err(Raise::Break)
    }
}

pub static BREAK: KindSpec = KindSpec {
    name: "BreakBp",
    family: Family::Control,
    params: &[],
    branches: &[],
    behaviour: Some(&Break),
};

#[derive(Debug)]
struct Return;
impl Behaviour for Return {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        cx.end_run_normally();
        Ok(Action::Done)
    }
}

pub static RETURN: KindSpec = KindSpec {
    name: "ReturnBp",
    family: Family::Control,
    params: &[],
    branches: &[],
    behaviour: Some(&Return),
};

#[derive(Debug)]
struct SkipTo;
impl Behaviour for SkipTo {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let target = cx
            .str_param("skipComponentId")
            .ok_or_else(|| Raise::Failure("SkipComponentIdEmpty".into()))?;
        cx.set_skip_target(target);
        Ok(Action::Done)
    }
}

pub static SKIP_TO_COMPONENT: KindSpec = KindSpec {
    name: "SkipToComponent",
    family: Family::Control,
    params: &[ParamSpec::req("skipComponentId", T::Str)],
    branches: &[],
    behaviour: Some(&SkipTo),
};

// ----- DelayBp, MockTimeCostBp, StopOtherBranch ----------------------------------------------

#[derive(Debug)]
struct Delay;
impl Behaviour for Delay {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let ms = cx.long_param("timeMillis")?.unwrap_or(0);
        if ms <= 0 {
            return Ok(Action::Done);
        }
        Ok(Action::Wait(Wait::Timer { ms }))
    }
}

pub static DELAY: KindSpec = KindSpec {
    name: "DelayBp",
    family: Family::Control,
    params: &[ParamSpec::opt("timeMillis", T::Long)],
    branches: &[],
    behaviour: Some(&Delay),
};

pub static MOCK_TIME_COST: KindSpec = KindSpec {
    name: "MockTimeCostBp",
    family: Family::Data,
    params: &[ParamSpec::opt("timeMillis", T::Long)],
    branches: &[],
    behaviour: Some(&Delay),
};

#[derive(Debug)]
struct StopOtherBranch;
impl Behaviour for StopOtherBranch {
    fn start(&self, _cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Ok(Action::Wait(Wait::Timer {
            ms: STOP_OTHER_BRANCH_DELAY_MS,
        }))
    }

    fn woke(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        cx.stop_other_branches();
        Ok(Action::Done)
    }
}

pub static STOP_OTHER_BRANCH: KindSpec = KindSpec {
    name: "StopOtherBranch",
    family: Family::Control,
    params: &[ParamSpec::opt("workArea", T::Any)],
    branches: &[],
    behaviour: Some(&StopOtherBranch),
};

// ----- TryCatchBp, ThrowExceptionBp -----------------------------------------------------------

const CATCH_PHASE: u8 = 2;
const SWALLOW: i64 = 1;
const IGNORE_ABORT: i64 = 2;

#[derive(Debug)]
struct TryCatch;

impl TryCatch {
    fn after_catch(cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let frame = cx.frame();
        if frame.limit & SWALLOW != 0 {
            return Ok(Action::Done);
        }
        let raised: Raised = serde_json::from_value(frame.data["raised"].clone())
            .map_err(|e| Raise::Failure(format!("lost the caught error: {e}")))?;
        Err(Raise::Again(raised))
    }
}

impl Behaviour for TryCatch {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        let swallow = cx.bool_param("swallowError").unwrap_or(false);
        let ignore = cx.bool_param("ignoreAbort").unwrap_or(false);
        cx.set_outputs(single("error", Value::Null))?;
        let frame = cx.frame();
        frame.phase = TRY_PHASE;
        frame.limit = if swallow { SWALLOW } else { 0 } | if ignore { IGNORE_ABORT } else { 0 };
        Ok(Action::RunBranch(Branch::Try))
    }

    fn branch_done(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        if cx.frame().phase == CATCH_PHASE {
            return Self::after_catch(cx);
        }
        Ok(Action::Done)
    }

    fn catches_failures(&self) -> bool {
        true
    }

    /// A re-raised failure parks the run: retry resumes the `try` branch at the child that
    /// failed, so the `try` blocks that had finished do not run again.
    fn rewind_on_interrupt(&self, frame: &mut Frame, flow_block: &Block) -> bool {
        if frame.phase != CATCH_PHASE {
            return false;
        }
        let Some(resume) = frame.data["resume"].as_u64() else {
            return false;
        };
        frame.phase = TRY_PHASE;
        frame.branch = Branch::Try as u8;
        frame.child = resume as u32;
        frame.end = flow_block.branch(Branch::Try).len() as u32;
        frame.data = Value::Null;
        true
    }

    fn on_caught(&self, cx: &mut Cx<'_>, raised: Raise) -> Result<Action, Raise> {
        let Raise::Again(raised) = raised else {
            return Err(raised);
        };
        cx.set_outputs(single("error", Value::String(raised.reason.clone())))?;
        cx.log(LogLevel::Error, format!("caught: {}", raised.reason));
        let frame = cx.frame();
        frame.phase = CATCH_PHASE;
        // `child` still points at the `try` child the failure came from (the engine unwound
        // it without moving on): kept so a retry after a re-raise resumes there.
        let mut data = crate::value::Map::new();
        data.insert(
            "raised".into(),
            serde_json::to_value(&raised).unwrap_or(Value::Null),
        );
        data.insert("resume".into(), Value::from(frame.child));
        frame.data = Value::Object(data);
        if frame.limit & IGNORE_ABORT != 0 {
            return Self::after_catch(cx);
        }
        Ok(Action::RunBranch(Branch::Catch))
    }
}

pub static TRY_CATCH: KindSpec = KindSpec {
    name: "TryCatchBp",
    family: Family::Control,
    params: &[
        ParamSpec::opt("swallowError", T::Bool),
        ParamSpec::opt("ignoreAbort", T::Bool),
    ],
    branches: &[Branch::Try, Branch::Catch],
    behaviour: Some(&TryCatch),
};

#[derive(Debug)]
struct Throw;
impl Behaviour for Throw {
    fn start(&self, cx: &mut Cx<'_>) -> Result<Action, Raise> {
        Err(Raise::Throw(cx.str_param("message").unwrap_or_default()))
    }
}

pub static THROW_EXCEPTION: KindSpec = KindSpec {
    name: "ThrowExceptionBp",
    family: Family::Control,
    params: &[ParamSpec::opt("message", T::Str)],
    branches: &[],
    behaviour: Some(&Throw),
};
