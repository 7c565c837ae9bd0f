//! Engine tests: whole flows driven by a fake host on a fake clock, checking outputs, logs,
//! record statuses and outcomes for every control and data block kind.

use super::*;
use crate::flow::{compile, load, model::Flow};
use crate::value::Map;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Default)]
pub(crate) struct FakeHost {
    pub now: i64,
    pub ids: u64,
    pub cache: HashMap<String, String>,
    pub refuse_cache: bool,
}

impl Host for FakeHost {
    fn now_ms(&self) -> i64 {
        self.now
    }
    fn local_time(&self, ms: i64) -> String {
        format!("t{ms}")
    }
    fn uuid(&mut self) -> String {
        self.ids += 1;
        format!("00000000-0000-4000-8000-{:012}", self.ids)
    }
    fn cache_get(&self, key: &str) -> Option<String> {
        self.cache.get(key).cloned()
    }
    fn cache_set(&mut self, key: &str, value: &str) -> Result<(), String> {
        if self.refuse_cache {
            return Err("CACHE_ENTRIES_MAX reached".into());
        }
        self.cache.insert(key.into(), value.into());
        Ok(())
    }
    fn cache_delete(&mut self, key: &str) -> bool {
        self.cache.remove(key).is_some()
    }
}

/// Compiles a flow from the root's children (blocks as JSON) and declared inputs.
pub(crate) fn flow(children: Value, inputs: Value) -> Flow {
    let def = json!({"label": "t", "detail": {"inputParams": inputs, "outputParams": [],
        "rootBlock": {"id": -1, "name": "-1", "blockType": "RootBp", "inputParams": {},
            "children": {"default": children}}}});
    let raw = load::load_value(def, "t").remove(0).unwrap();
    let compiled = compile::compile(&raw);
    let errors: Vec<String> = compiled.diagnostics.iter().map(|d| d.to_string()).collect();
    compiled
        .flow
        .unwrap_or_else(|| panic!("does not compile: {errors:?}"))
}

pub(crate) fn b(id: i64, ty: &str, params: Value, children: Value) -> Value {
    json!({"id": id, "name": format!("b{id}"), "blockType": ty, "inputParams": params,
        "children": children})
}

pub(crate) fn simple(v: &str) -> Value {
    json!({"type": "Simple", "value": v})
}

pub(crate) fn expr(v: &str) -> Value {
    json!({"type": "Expression", "value": v})
}

/// A run being driven in a test, with everything it produced.
pub(crate) struct Harness {
    pub flow: Flow,
    pub run: RunState,
    pub host: FakeHost,
    pub records: Vec<Record>,
    pub pending: Vec<Effect>,
    pub outcome: Option<Outcome>,
}

impl Harness {
    pub fn new(flow: Flow) -> Harness {
        let inputs = crate::flow::inputs::build(&flow.inputs, &Map::new()).values;
        let run = RunState::new("r1".into(), false, inputs, Map::new());
        Harness {
            flow,
            run,
            host: FakeHost::default(),
            records: Vec::new(),
            pending: Vec::new(),
            outcome: None,
        }
    }

    pub fn event(&mut self, event: Event) -> &Outcome {
        let out = step(&self.flow, &mut self.run, event, &mut self.host);
        self.pending.retain(|e| !out.cancelled.contains(&e.token));
        self.pending.extend(out.effects);
        self.records.extend(out.records);
        self.outcome = out.outcome;
        self.outcome.as_ref().unwrap()
    }

    /// Fires the earliest pending timer, moving the clock to it.
    pub fn fire_next(&mut self) -> bool {
        let Some(i) = (0..self.pending.len())
            .filter(|&i| self.pending[i].kind.until_ms().is_some())
            .min_by_key(|&i| self.pending[i].kind.until_ms())
        else {
            return false;
        };
        let e = self.pending.remove(i);
        let until_ms = e.kind.until_ms().expect("a timer");
        self.host.now = self.host.now.max(until_ms);
        self.event(Event::Woke {
            fiber: e.fiber,
            token: e.token,
        });
        true
    }

    /// The one pending site or fleet operation (panics unless exactly one is pending).
    pub fn operation(&self) -> &EffectKind {
        let ops: Vec<&EffectKind> = self
            .pending
            .iter()
            .map(|e| &e.kind)
            .filter(|k| k.until_ms().is_none())
            .collect();
        assert_eq!(ops.len(), 1, "pending: {:?}", self.pending);
        ops[0]
    }

    /// Answers the pending site or fleet operation with `reply`.
    pub fn reply(&mut self, reply: Reply) -> Outcome {
        let i = self
            .pending
            .iter()
            .position(|e| e.kind.until_ms().is_none())
            .expect("an operation pending");
        let e = self.pending.remove(i);
        let (fiber, token) = (e.fiber, e.token);
        self.event(Event::Reply {
            fiber,
            token,
            reply,
        })
        .clone()
    }

    /// Drives the run until it ends, pauses or is interrupted.
    pub fn drive(&mut self) -> Outcome {
        for _ in 0..100_000 {
            match self.outcome.clone() {
                Some(Outcome::More) => {
                    self.event(Event::Continue);
                }
                Some(Outcome::Waiting) => {
                    assert!(self.fire_next(), "waiting with nothing pending");
                }
                Some(other) => return other,
                None => {
                    self.event(Event::Start);
                }
            }
        }
        panic!("run did not settle");
    }

    pub fn logs(&self) -> Vec<String> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Log { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn prints(&self) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter_map(|l| l.split_once("result: ").map(|(_, m)| m.to_string()))
            .collect()
    }

    /// (block name, status) of every block end, in order.
    pub fn ends(&self) -> Vec<(String, i32)> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::BlockEnded { block, status, .. } => {
                    Some((self.flow.block(*block).name.clone(), *status))
                }
                _ => None,
            })
            .collect()
    }
}

pub(crate) fn finished(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Ended(Ended { code: 1003, .. }))
}

#[test]
fn serial_variables_and_prints() {
    let f = flow(
        json!([
            b(
                1,
                "SetTaskVariableBp",
                json!({"varName": simple("x"), "varValue": expr("1 + 2")}),
                json!({})
            ),
            b(
                2,
                "PrintBp",
                json!({"message": expr("'x=' + task.variables.x")}),
                json!({})
            ),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.run.variables["x"], json!(3));
    assert_eq!(h.logs(), vec![r#"[PrintBp][b2]result: "x=3""#]);
    assert_eq!(h.ends().last().unwrap(), &("-1".to_string(), 1003));
}

#[test]
fn while_break_example_prints_three_rounds() {
    let text = include_str!("../../../shared/docs/wind-task-examples/04-while-break.json");
    let raw = load::load_text(text, "04").remove(0).unwrap();
    let f = compile::compile(&raw).flow.unwrap();
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(
        h.prints(),
        vec![
            r#""round 1""#,
            r#""round 2""#,
            r#""round 3""#,
            r#""left the loop after 3 rounds""#
        ]
    );
    // Two delays of 200 ms and two loop sleeps of 500 ms before the third round breaks.
    assert_eq!(h.host.now, 2 * 200 + 2 * 500);
}

#[test]
fn if_branches_follow_conditions() {
    let f = flow(
        json!([
            b(
                1,
                "IfBp",
                json!({"condition": expr("1 < 2")}),
                json!({"default": [
                b(2, "PrintBp", json!({"message": simple("if")}), json!({}))]})
            ),
            b(
                3,
                "IfElseBp",
                json!({"conditionIf": simple("false")}),
                json!({
                "if": [b(4, "PrintBp", json!({"message": simple("A")}), json!({}))],
                "else": [b(5, "PrintBp", json!({"message": simple("B")}), json!({}))]})
            ),
            b(
                6,
                "IfElseIfBp",
                json!({"conditionIf": simple("false"), "conditionElseIf": simple("TRUE")}),
                json!({
                "if": [], "else_if": [b(7, "PrintBp", json!({"message": simple("C")}), json!({}))],
                "else": []})
            ),
            b(
                8,
                "IfBp",
                json!({}),
                json!({"default": [
                b(9, "PrintBp", json!({"message": simple("never")}), json!({}))]})
            ),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec![r#""if""#, r#""B""#, r#""C""#]);
}

#[test]
fn if_else_with_null_condition_interrupts_the_run() {
    let f = flow(
        json!([b(
            1,
            "IfElseBp",
            json!({"conditionIf": expr("taskInputs.c")}),
            json!({"if": [], "else": []})
        )]),
        json!([{"name": "c", "type": "String", "defaultValue": null}]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => {
            assert!(
                reason.starts_with("[IfElseBp]Block Run Failure:"),
                "{reason}"
            );
            assert!(reason.contains("conditionIf"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.ends().contains(&("b1".to_string(), 1004)));
}

#[test]
fn repeat_num_counts_from_one() {
    let f = flow(
        json!([b(
            1,
            "RepeatNumBp",
            json!({"num": simple("3")}),
            json!({"default": [
            b(2, "PrintBp", json!({"message": expr("blocks.b1.index")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec!["1", "2", "3"]);
    assert_eq!(h.run.blocks["b1"], json!({"index": 3}));
}

#[test]
fn repeat_num_over_the_limit_fails_the_block() {
    let f = flow(
        json!([b(
            1,
            "RepeatNumBp",
            json!({"num": expr("1001")}),
            json!({"default": []})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => assert!(reason.contains("REPEAT_NUM_MAX"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn iterate_list_outputs_items_and_resets_index() {
    let f = flow(
        json!([b(
            1,
            "IterateListBp",
            json!({"list": simple("[\"A\",\"B\"]")}),
            json!({"default": [
            b(2, "PrintBp", json!({"message": expr("blocks.b1.item + '/' + blocks.b1.index + '/' + blocks.b1.size")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec![r#""A/0/2""#, r#""B/1/2""#]);
    assert_eq!(h.run.blocks["b1"], json!({"index": 0}));
    assert!(h.logs().contains(&"loop 2, item=B".to_string()));
}

#[test]
fn iterate_list_break_and_bad_list() {
    let f = flow(
        json!([b(
            1,
            "IterateListBp",
            json!({"list": expr("[1, 2, 3]")}),
            json!({"default": [
            b(2, "IfBp", json!({"condition": expr("blocks.b1.item == 2")}), json!({"default": [
                b(3, "BreakBp", json!({}), json!({}))]})),
            b(4, "PrintBp", json!({"message": expr("blocks.b1.item")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec!["1"]);
    let bad = flow(
        json!([b(
            1,
            "IterateListBp",
            json!({"list": simple("not json")}),
            json!({"default": []})
        )]),
        json!([]),
    );
    let mut h = Harness::new(bad);
    match h.drive() {
        Outcome::Interrupted { reason } => assert!(reason.contains("paramsError:not json")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn parallel_branches_run_at_the_same_time() {
    let f = flow(
        json!([
            b(
                1,
                "ParallelFlowBp",
                json!({}),
                json!({"default": [
                b(2, "SerialFlowBp", json!({}), json!({"default": [
                    b(3, "DelayBp", json!({"timeMillis": simple("300")}), json!({})),
                    b(4, "PrintBp", json!({"message": simple("slow")}), json!({}))]})),
                b(5, "SerialFlowBp", json!({}), json!({"default": [
                    b(6, "DelayBp", json!({"timeMillis": simple("100")}), json!({})),
                    b(7, "PrintBp", json!({"message": simple("fast")}), json!({}))]}))]})
            ),
            b(
                8,
                "PrintBp",
                json!({"message": simple("joined")}),
                json!({})
            ),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec![r#""fast""#, r#""slow""#, r#""joined""#]);
    assert_eq!(h.host.now, 300);
}

#[test]
fn parallel_repeat_staggers_copies() {
    let f = flow(
        json!([b(
            1,
            "ParallelRepeatNBp",
            json!({"num": simple("3")}),
            json!({"default": [
            b(2, "CurrentTimeStampBp", json!({}), json!({})),
            b(3, "PrintBp", json!({"message": expr("blocks.b2.currentTimeStamp")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec!["0", "50", "100"]);
}

#[test]
fn try_catch_catches_failures_and_rethrows() {
    let body = |swallow: &str| {
        json!([
            b(
                1,
                "TryCatchBp",
                json!({"swallowError": simple(swallow)}),
                json!({
                "try": [b(2, "StringToJsonObjectBp", json!({"convertString": simple("[1]")}), json!({}))],
                "catch": [b(3, "PrintBp", json!({"message": expr("blocks.b1.error")}), json!({}))]})
            ),
            b(4, "PrintBp", json!({"message": simple("after")}), json!({})),
        ])
    };
    let mut h = Harness::new(flow(body("true"), json!([])));
    assert!(finished(&h.drive()));
    let prints = h.prints();
    assert!(
        prints[0].contains("[StringToJsonObjectBp]Block Run Failure:"),
        "{prints:?}"
    );
    assert_eq!(prints[1], r#""after""#);
    assert!(h.ends().contains(&("b2".to_string(), 1004)));

    let mut h = Harness::new(flow(body("false"), json!([])));
    match h.drive() {
        Outcome::Interrupted { reason } => assert!(reason.contains("StringToJsonObjectBp")),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.prints().len(), 1, "catch ran, 'after' did not");
}

#[test]
fn try_catch_cancels_parallel_siblings() {
    let f = flow(
        json!([b(
            1,
            "TryCatchBp",
            json!({"swallowError": simple("true")}),
            json!({
            "try": [b(2, "ParallelFlowBp", json!({}), json!({"default": [
                b(3, "DelayBp", json!({"timeMillis": simple("10000")}), json!({})),
                b(4, "ThrowExceptionBp", json!({"message": simple("boom")}), json!({}))]}))],
            "catch": [b(5, "PrintBp", json!({"message": expr("blocks.b1.error")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec![r#""[ThrowExceptionBp]:boom""#]);
    assert!(h.ends().contains(&("b3".to_string(), 1001)));
    assert_eq!(h.host.now, 0, "the long delay was cancelled");
}

#[test]
fn throw_fails_the_run() {
    let f = flow(
        json!([
            b(
                1,
                "ThrowExceptionBp",
                json!({"message": simple("giving up")}),
                json!({})
            ),
            b(2, "PrintBp", json!({"message": simple("never")}), json!({})),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Ended(e) => {
            assert_eq!(e.code, 1004);
            assert_eq!(e.reason, "[ThrowExceptionBp]:giving up");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.prints().is_empty());
    assert_eq!(h.ends().last().unwrap(), &("-1".to_string(), 1004));
}

#[test]
fn return_skips_the_rest_and_finishes() {
    let f = flow(
        json!([
            b(
                1,
                "WhileBp",
                json!({"loopCondition": simple("true"), "retryPeriod": simple("0")}),
                json!({"default": [
                b(2, "ReturnBp", json!({}), json!({}))]})
            ),
            b(3, "PrintBp", json!({"message": simple("never")}), json!({})),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert!(h.prints().is_empty());
}

#[test]
fn skip_to_component_jumps_forward() {
    let f = flow(
        json!([
            b(
                1,
                "SkipToComponent",
                json!({"skipComponentId": simple("B4")}),
                json!({})
            ),
            b(
                2,
                "PrintBp",
                json!({"message": simple("skipped")}),
                json!({})
            ),
            b(
                3,
                "SerialFlowBp",
                json!({}),
                json!({"default": [
                b(5, "PrintBp", json!({"message": simple("skipped too")}), json!({})),
                b(4, "PrintBp", json!({"message": simple("target")}), json!({})),
                b(6, "PrintBp", json!({"message": simple("after")}), json!({}))]})
            ),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec![r#""target""#, r#""after""#]);
}

#[test]
fn stop_other_branch_ends_siblings_normally() {
    let f = flow(
        json!([
            b(
                1,
                "ParallelFlowBp",
                json!({}),
                json!({"default": [
                b(2, "DelayBp", json!({"timeMillis": simple("60000")}), json!({})),
                b(3, "StopOtherBranch", json!({}), json!({}))]})
            ),
            b(4, "PrintBp", json!({"message": simple("after")}), json!({})),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec![r#""after""#]);
    assert_eq!(h.host.now, 1000);
    assert!(h.ends().contains(&("b2".to_string(), 1001)));
}

#[test]
fn mock_time_cost_sleeps_like_a_delay() {
    let f = flow(
        json!([
            b(
                1,
                "MockTimeCostBp",
                json!({"timeMillis": simple("750")}),
                json!({})
            ),
            b(2, "MockTimeCostBp", json!({}), json!({})),
            b(3, "CurrentTimeStampBp", json!({}), json!({})),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.run.blocks["b3"], json!({"currentTimeStamp": 750}));
}

pub(crate) fn delay_then_print() -> Flow {
    flow(
        json!([
            b(
                1,
                "DelayBp",
                json!({"timeMillis": simple("5000")}),
                json!({})
            ),
            b(2, "PrintBp", json!({"message": simple("done")}), json!({})),
        ]),
        json!([]),
    )
}

#[test]
fn stop_ends_a_waiting_delay_at_once() {
    let mut h = Harness::new(delay_then_print());
    assert_eq!(h.event(Event::Start), &Outcome::Waiting);
    match h.event(Event::Stop) {
        Outcome::Ended(e) => assert_eq!(e.code, 1001),
        other => panic!("{other:?}"),
    }
    assert!(h.pending.is_empty());
    assert!(h.prints().is_empty());
    assert_eq!(h.ends(), vec![("b1".into(), 1001), ("-1".into(), 1001)]);
}

#[test]
fn pause_suspends_waits_and_resume_continues() {
    let mut h = Harness::new(delay_then_print());
    h.event(Event::Start);
    assert_eq!(h.event(Event::Pause), &Outcome::Paused);
    assert!(h.pending.is_empty(), "the timer is cancelled while paused");
    assert_eq!(h.event(Event::Resume), &Outcome::Waiting);
    assert_eq!(h.pending.len(), 1);
    assert!(finished(&h.drive()));
    assert_eq!(h.host.now, 5000);
}

#[test]
fn manual_end_finishes_with_the_marker() {
    let mut h = Harness::new(delay_then_print());
    h.event(Event::Start);
    match h.event(Event::ManualEnd) {
        Outcome::Ended(e) => assert!(e.code == 1003 && e.manual_end),
        other => panic!("{other:?}"),
    }
}

#[test]
fn retry_reruns_the_failed_block_only() {
    let f = flow(
        json!([
            b(1, "PrintBp", json!({"message": simple("once")}), json!({})),
            b(
                2,
                "CacheDataBp",
                json!({"key": simple("k"), "value": simple("v")}),
                json!({})
            ),
            b(3, "PrintBp", json!({"message": simple("after")}), json!({})),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    h.host.refuse_cache = true;
    assert!(matches!(h.drive(), Outcome::Interrupted { .. }));
    h.host.refuse_cache = false;
    h.event(Event::Retry);
    assert!(finished(&h.drive()));
    assert_eq!(h.prints(), vec![r#""once""#, r#""after""#]);
    assert_eq!(h.host.cache["k"], "v");
}

#[test]
fn a_periodic_run_fails_instead_of_waiting_for_an_operator() {
    let f = flow(
        json!([b(
            1,
            "StringToJsonArrayBp",
            json!({"convertString": simple("{}")}),
            json!({})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    h.run.periodic = true;
    match h.drive() {
        Outcome::Ended(e) => assert_eq!(e.code, 1004),
        other => panic!("{other:?}"),
    }
}

#[test]
fn break_outside_a_loop_fails_the_run() {
    let f = flow(json!([b(1, "BreakBp", json!({}), json!({}))]), json!([]));
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Ended(e) => {
            assert_eq!(e.code, 1004);
            assert!(e.reason.contains("BreakBp outside a loop"));
        }
        other => panic!("{other:?}"),
    }
}
