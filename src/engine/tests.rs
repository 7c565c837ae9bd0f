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
        let Some(i) = (0..self.pending.len()).min_by_key(|&i| match self.pending[i].kind {
            EffectKind::Timer { until_ms } => until_ms,
        }) else {
            return false;
        };
        let e = self.pending.remove(i);
        let EffectKind::Timer { until_ms } = e.kind;
        self.host.now = self.host.now.max(until_ms);
        self.event(Event::Woke {
            fiber: e.fiber,
            token: e.token,
        });
        true
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

fn finished(outcome: &Outcome) -> bool {
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

fn delay_then_print() -> Flow {
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

#[test]
fn a_busy_loop_yields_at_the_step_budget() {
    let f = flow(
        json!([b(
            1,
            "RepeatNumBp",
            json!({"num": simple("1000")}),
            json!({"default": [
            b(2, "SetTaskVariableBp", json!({"varName": simple("i"), "varValue": expr("blocks.b1.index")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert_eq!(h.event(Event::Start), &Outcome::More);
    assert!(finished(&h.drive()));
    assert_eq!(h.run.variables["i"], json!(1000));
}

#[test]
fn variables_past_their_bound_fail_the_block() {
    let f = flow(
        json!([b(
            1,
            "RepeatNumBp",
            json!({"num": simple("1000")}),
            json!({"default": [
            b(2, "SetTaskVariableBp", json!({"varName": expr("'v' + blocks.b1.index"), "varValue": simple("x")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => {
            assert!(reason.contains("VARIABLES_ENTRIES_MAX"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.run.variables.len(), crate::limits::VARIABLES_ENTRIES_MAX);
}

#[test]
fn forks_past_fibers_max_fail_the_block() {
    let f = flow(
        json!([b(
            1,
            "ParallelRepeatNBp",
            json!({"num": simple("100")}),
            json!({"default": [
            b(2, "ParallelRepeatNBp", json!({"num": simple("100")}), json!({"default": [
                b(3, "DelayBp", json!({"timeMillis": simple("10")}), json!({}))]}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => assert!(reason.contains("FIBERS_MAX"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(h.run.fibers.len() <= crate::limits::FIBERS_MAX);
}

#[test]
fn execution_path_keeps_only_the_last_entries() {
    let f = flow(
        json!([b(
            1,
            "RepeatNumBp",
            json!({"num": simple("200")}),
            json!({"default": [
            b(2, "PrintBp", json!({"message": simple("x")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    assert_eq!(h.run.path.len(), crate::limits::EXECUTION_PATH_LEN);
}

#[test]
fn a_checkpoint_resumes_where_it_left_off() {
    let mut h = Harness::new(delay_then_print());
    h.event(Event::Start);
    let saved = serde_json::to_string(&h.run).unwrap();
    let mut again = Harness::new(delay_then_print());
    again.run = serde_json::from_str(&saved).unwrap();
    again.outcome = Some(Outcome::Waiting);
    assert_eq!(again.event(Event::Recover), &Outcome::Waiting);
    assert_eq!(again.pending, h.pending);
    assert!(finished(&again.drive()));
    assert_eq!(again.prints(), vec![r#""done""#]);
}

#[test]
fn data_blocks_produce_their_outputs() {
    let f = flow(
        json!([
            b(1, "CreateUuidBp", json!({}), json!({})),
            b(2, "TimestampBp", json!({}), json!({})),
            b(3, "CurrentTimeStampBp", json!({}), json!({})),
            b(
                4,
                "Md5EncryptionForStringBp",
                json!({"string": simple("abc")}),
                json!({})
            ),
            b(
                5,
                "StringToJsonArrayBp",
                json!({"convertString": simple("[1,{\"a\":2}]")}),
                json!({})
            ),
            b(
                6,
                "CacheDataBp",
                json!({"key": simple("k"), "value": expr("[1]")}),
                json!({})
            ),
            b(7, "GetCacheDataBp", json!({"key": simple("k")}), json!({})),
            b(
                8,
                "ClearCacheDataBp",
                json!({"key": simple("k")}),
                json!({})
            ),
            b(9, "GetCacheDataBp", json!({"key": simple("k")}), json!({})),
            b(
                10,
                "TaskStateBp",
                json!({"stateMsg": expr("'at ' + blocks.b4.hexValue")}),
                json!({})
            ),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    let o = &h.run.blocks;
    assert_eq!(o["b1"]["createUuid"].as_str().unwrap().len(), 36);
    assert_eq!(o["b2"], json!({"timestamp": "t0"}));
    assert_eq!(o["b3"], json!({"currentTimeStamp": 0}));
    assert_eq!(
        o["b4"]["hexValue"],
        json!("900150983cd24fb0d6963f7d28e17f72")
    );
    assert_eq!(o["b5"]["convertArray"], json!([1, {"a": 2}]));
    assert_eq!(o["b7"], json!({"value": "[1]"}));
    assert_eq!(o["b8"], json!({"codeInfo": ""}));
    assert_eq!(o["b9"], json!({"value": ""}));
    assert_eq!(
        h.run.state_description.as_deref(),
        Some("at 900150983cd24fb0d6963f7d28e17f72")
    );
}

#[test]
fn a_parameter_error_names_block_parameter_and_expression() {
    let f = flow(
        json!([b(
            1,
            "PrintBp",
            json!({"message": expr("blocks.b9.x")}),
            json!({})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => {
            assert!(
                reason.starts_with("[PrintBp]Block Run Failure:b1: parameter message"),
                "{reason}"
            );
            assert!(reason.contains("blocks.b9.x"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_root_block_record_comes_first() {
    let mut h = Harness::new(delay_then_print());
    h.event(Event::Start);
    assert!(matches!(
        h.records[0],
        Record::BlockStarted { block: 0, .. }
    ));
    assert!(matches!(
        h.records[1],
        Record::BlockStarted { block: 1, .. }
    ));
}

/// Sets `task.variables.big` to a string of `n` x's (under `EXPR_STRING_BYTES_MAX`).
fn big_variable(id: i64, n: usize) -> Value {
    b(
        id,
        "SetTaskVariableBp",
        json!({"varName": simple("big"), "varValue": expr(&format!("StringUtils.leftPad('', {n}, 'x')"))}),
        json!({}),
    )
}

#[test]
fn a_step_yields_when_its_records_pass_their_byte_bound() {
    let message = "m".repeat(4000);
    let f = flow(
        json!([b(
            1,
            "RepeatNumBp",
            json!({"num": simple("200")}),
            json!({"default": [
            b(2, "PrintBp", json!({"message": simple(&message)}), json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    let out = step(&h.flow, &mut h.run, Event::Start, &mut h.host);
    assert_eq!(out.outcome, Some(Outcome::More));
    let bytes: usize = out.records.iter().map(Record::bytes).sum();
    assert!(
        bytes > crate::limits::STEP_RECORD_BYTES_MAX,
        "it yielded because of bytes"
    );
    assert!(
        bytes < crate::limits::STEP_RECORD_BYTES_MAX + 3 * 4096 + 1024,
        "{bytes}"
    );
    let prints = out
        .records
        .iter()
        .filter(|r| matches!(r, Record::Log { .. }))
        .count();
    assert!(prints < crate::limits::STEP_OPS_MAX / 2, "{prints}");
    h.outcome = out.outcome;
    assert!(finished(&h.drive()));
}

#[test]
fn a_loop_list_past_the_frame_data_bound_fails() {
    let items: Vec<String> = (0..2000).map(|i| format!("item-{i}")).collect();
    let f = flow(
        json!([b(
            1,
            "IterateListBp",
            json!({"list": simple(&serde_json::to_string(&items).unwrap())}),
            json!({"default": []})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => {
            assert!(reason.contains("FRAME_DATA_BYTES_MAX"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn block_inputs_past_their_bound_fail_the_block() {
    let params = json!({"message": expr("task.variables.big"), "a": expr("task.variables.big"),
        "b": expr("task.variables.big"), "c": expr("task.variables.big"),
        "d": expr("task.variables.big")});
    let f = flow(
        json!([big_variable(1, 60_000), b(2, "PrintBp", params, json!({}))]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => {
            assert!(reason.contains("BLOCK_INPUTS_BYTES_MAX"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn outputs_past_their_bound_fail_the_block() {
    let to_array = |id| {
        b(
            id,
            "StringToJsonArrayBp",
            json!({"convertString": expr("'[\"' + task.variables.big + '\"]'")}),
            json!({}),
        )
    };
    let f = flow(
        json!([
            big_variable(1, 60_000),
            to_array(2),
            to_array(3),
            to_array(4)
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => {
            assert!(reason.starts_with("[StringToJsonArrayBp]"), "{reason}");
            assert!(reason.contains("OUTPUTS_BYTES_MAX"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.run.outputs_bytes <= crate::limits::OUTPUTS_BYTES_MAX);
    assert!(h.run.blocks.contains_key("b3") && !h.run.blocks.contains_key("b4"));
}

#[test]
fn block_records_carry_truncated_values() {
    let f = flow(
        json!([
            big_variable(1, 60_000),
            b(
                2,
                "PrintBp",
                json!({"message": expr("task.variables.big")}),
                json!({})
            )
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    for r in &h.records {
        if let Record::BlockStarted { inputs, .. } = r {
            assert!(inputs.len() <= crate::limits::RECORD_VALUE_BYTES_MAX);
        }
    }
}

#[test]
fn variable_bytes_past_their_bound_fail_the_block() {
    let f = flow(
        json!([
            big_variable(1, 60_000),
            b(
                2,
                "SetTaskVariableBp",
                json!({"varName": simple("big2"), "varValue": expr("task.variables.big")}),
                json!({})
            ),
            b(
                3,
                "SetTaskVariableBp",
                json!({"varName": simple("big3"), "varValue": expr("task.variables.big")}),
                json!({})
            ),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    match h.drive() {
        Outcome::Interrupted { reason } => {
            assert!(reason.contains("VARIABLES_BYTES_MAX"), "{reason}");
            assert!(reason.starts_with("[SetTaskVariableBp]"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.run.variables_bytes <= crate::limits::VARIABLES_BYTES_MAX);
    assert!(!h.run.variables.contains_key("big3"));
}

#[test]
fn long_log_lines_and_state_descriptions_are_cut() {
    let f = flow(
        json!([
            big_variable(1, 60_000),
            b(
                2,
                "PrintBp",
                json!({"message": expr("task.variables.big")}),
                json!({})
            ),
            b(
                3,
                "TaskStateBp",
                json!({"stateMsg": expr("task.variables.big")}),
                json!({})
            ),
        ]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(finished(&h.drive()));
    for line in h.logs() {
        assert!(
            line.len() <= crate::limits::LOG_LINE_BYTES_MAX,
            "{}",
            line.len()
        );
    }
    let state = h.run.state_description.as_deref().unwrap();
    assert!(state.len() <= crate::limits::STATE_DESCRIPTION_BYTES_MAX);
    assert!(state.ends_with('…'));
}

#[test]
fn bad_parameter_values_fail_their_blocks() {
    let cases = [
        (
            "DelayBp",
            json!({"timeMillis": expr("'soon'")}),
            "timeMillis",
        ),
        ("RepeatNumBp", json!({"num": expr("'3.0'")}), "num"),
        (
            "ParallelRepeatNBp",
            json!({"num": expr("101")}),
            "PARALLEL_REPEAT_MAX",
        ),
        (
            "StringToJsonObjectBp",
            json!({"convertString": simple("{oops")}),
            "not valid JSON",
        ),
        (
            "StringToJsonArrayBp",
            json!({"convertString": simple("{}")}),
            "not a JSON array",
        ),
        (
            "SetTaskVariableBp",
            json!({"varName": simple("x"), "varValue": expr("taskInputs.none")}),
            "varValue",
        ),
        (
            "CacheDataBp",
            json!({"key": simple("k"), "value": expr("null")}),
            "cacheValue",
        ),
        (
            "WhileBp",
            json!({"loopCondition": expr("null")}),
            "condition does not exist",
        ),
        (
            "IfElseIfBp",
            json!({"conditionIf": simple("false"), "conditionElseIf": expr("null")}),
            "conditionElseIf",
        ),
        (
            "SkipToComponent",
            json!({"skipComponentId": expr("null")}),
            "SkipComponentIdEmpty",
        ),
        (
            "Md5EncryptionForStringBp",
            json!({"string": expr("null")}),
            "string",
        ),
    ];
    for (ty, params, needle) in cases {
        let children = json!({"default": [], "if": [], "else_if": [], "else": []});
        let children = match ty {
            "RepeatNumBp" | "ParallelRepeatNBp" | "WhileBp" => json!({"default": []}),
            "IfElseIfBp" => children,
            _ => json!({}),
        };
        let f = flow(
            json!([b(1, ty, params, children)]),
            json!([{"name": "none", "type": "String", "defaultValue": null}]),
        );
        let mut h = Harness::new(f);
        match h.drive() {
            Outcome::Interrupted { reason } => {
                assert!(
                    reason.starts_with(&format!("[{ty}]Block Run Failure:")),
                    "{reason}"
                );
                assert!(reason.contains(needle), "{ty}: {reason}");
            }
            other => panic!("{ty}: {other:?}"),
        }
    }
}
