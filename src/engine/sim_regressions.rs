//! Regression tests for engine bugs the seeded simulation (`sim_tests`) found, each named after
//! what it shows and citing its seed, plus known issues left failing as ignored tests.

use super::tests::{b, flow, simple, FakeHost, Harness};
use super::*;
use crate::value::Map;
use serde_json::json;

/// Seed 29: a copy of a `ParallelRepeatNBp` failed in the step that forked it, so the staggered
/// copies' timers were returned both as effects and as cancelled; the scheduler applies the
/// cancellations first and would then start timers for fibers that no longer exist.
#[test]
fn a_step_never_starts_a_wait_it_cancels() {
    let f = flow(
        json!([b(
            1,
            "ParallelRepeatNBp",
            json!({"num": simple("3")}),
            json!({"default": [
            b(2, "StringToJsonArrayBp", json!({"convertString": simple("{}")}), json!({}))]})
        )]),
        json!([]),
    );
    let mut run = RunState::new("r".into(), true, Map::new(), Map::new());
    let out = step(&f, &mut run, Event::Start, &mut FakeHost::default());
    assert!(matches!(
        out.outcome,
        Some(Outcome::Ended(Ended { code: 1004, .. }))
    ));
    assert!(out.effects.is_empty(), "{:?}", out.effects);
}

/// Seed 34: branch keys were the forking fiber's key without the loop indices of its frames, so
/// the branches of a parallel block inside a loop had the same iteration path in every round —
/// the path that is meant to identify a block execution (and key its effects, design.md §4).
#[test]
fn parallel_branches_in_a_loop_get_a_new_iteration_path_each_round() {
    let f = flow(
        json!([b(
            1,
            "RepeatNumBp",
            json!({"num": simple("2")}),
            json!({"default": [
            b(2, "ParallelFlowBp", json!({}), json!({"default": [
                b(3, "PrintBp", json!({"message": simple("x")}), json!({}))]}))]})
        )]),
        json!([]),
    );
    let mut run = RunState::new("r".into(), false, Map::new(), Map::new());
    let out = step(&f, &mut run, Event::Start, &mut FakeHost::default());
    let paths: Vec<&str> = out
        .records
        .iter()
        .filter_map(|r| match r {
            Record::BlockStarted {
                block, iteration, ..
            } if f.block(*block).name == "b3" => Some(iteration.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, vec!["b1#1/b2.1/", "b1#2/b2.1/"]);
}

/// Seed 625: a `TryCatchBp` whose `catch` branch was interrupted (1006) re-raised its caught
/// failure when a stop cut the `catch` short, and the stopped run parked as interrupted again
/// instead of ending 1001 (spec §3.2: an error after `exec_ok` became false is a Stop).
#[test]
fn a_stop_ends_a_run_whose_catch_branch_was_interrupted() {
    let f = flow(
        json!([b(
            1,
            "TryCatchBp",
            json!({}),
            json!({
            "try": [b(2, "StringToJsonArrayBp", json!({"convertString": simple("{}")}), json!({}))],
            "catch": [b(3, "StringToJsonObjectBp", json!({"convertString": simple("[]")}),
                json!({}))]})
        )]),
        json!([]),
    );
    let mut h = Harness::new(f);
    assert!(matches!(h.drive(), Outcome::Interrupted { .. }));
    match h.event(Event::Stop) {
        Outcome::Ended(e) => assert_eq!(e.code, code::STOPPED),
        other => panic!("{other:?}"),
    }
    assert!(h.ends().contains(&("b1".to_string(), block_code::STOP)));
}

fn prints_after_one_retry(children: serde_json::Value) -> Vec<String> {
    let mut h = Harness::new(flow(children, json!([])));
    assert!(matches!(h.drive(), Outcome::Interrupted { .. }));
    h.event(Event::Retry);
    h.drive();
    h.prints()
}

/// Seed 45: a `TryCatchBp` that catches a block failure, runs `catch` and re-raises
/// (swallowError false) parks the run; retry used to run it from its start, so the `try` blocks
/// that had finished ran again (spec §4.7). Retry now resumes `try` at the child that failed.
#[test]
fn retry_after_a_rethrowing_try_catch_does_not_rerun_finished_blocks() {
    let prints = prints_after_one_retry(json!([b(
        1,
        "TryCatchBp",
        json!({"swallowError": simple("false")}),
        json!({
        "try": [b(2, "PrintBp", json!({"message": simple("once")}), json!({})),
            b(3, "StringToJsonArrayBp", json!({"convertString": simple("{}")}), json!({}))],
        "catch": []})
    )]));
    assert_eq!(
        prints,
        vec![r#""once""#],
        "a finished block ran again on retry"
    );
}

/// Seed 34: a `BreakBp` outside a loop in a parallel branch used to fail the parallel block by
/// dropping it, so retry ran it from the start and the finished blocks of every branch ran
/// again (RDS's restart would skip them: their records ended 1003, §4.7). The break is now a
/// block failure of the `BreakBp` itself: the other branches keep what they finished.
#[test]
fn retry_after_a_break_in_a_parallel_branch_does_not_rerun_finished_blocks() {
    let prints = prints_after_one_retry(json!([b(
        1,
        "ParallelFlowBp",
        json!({}),
        json!({"default": [
            b(2, "PrintBp", json!({"message": simple("once")}), json!({})),
            b(3, "BreakBp", json!({}), json!({}))]})
    )]));
    assert_eq!(
        prints,
        vec![r#""once""#],
        "a finished block ran again on retry"
    );
}

/// Seed 118: the failure came from inside a container in `try` (a `SerialFlowBp`); retry after
/// the re-raise resumes at the failed block inside it, so its finished blocks do not run again.
#[test]
fn retry_after_a_rethrow_from_a_nested_container_resumes_at_the_failed_block() {
    let prints = prints_after_one_retry(json!([b(
        1,
        "TryCatchBp",
        json!({"swallowError": simple("false"), "ignoreAbort": simple("true")}),
        json!({
        "try": [b(2, "SerialFlowBp", json!({}), json!({"default": [
            b(3, "PrintBp", json!({"message": simple("once")}), json!({})),
            b(4, "StringToJsonArrayBp", json!({"convertString": simple("{}")}), json!({}))]}))],
        "catch": []})
    )]));
    assert_eq!(
        prints,
        vec![r#""once""#],
        "a finished block ran again on retry"
    );
}

/// Seed 494 (its same-fiber part): a re-raise passing through a nested `TryCatchBp` keeps both
/// open, so retry resumes at the failed block and nothing that finished runs again.
#[test]
fn retry_after_a_rethrow_through_nested_try_catches_resumes_at_the_failed_block() {
    let inner = b(
        3,
        "TryCatchBp",
        json!({"swallowError": simple("false")}),
        json!({"try": [b(4, "SerialFlowBp", json!({}), json!({"default": [
            b(5, "PrintBp", json!({"message": simple("inner")}), json!({})),
            b(6, "StringToJsonArrayBp", json!({"convertString": simple("{}")}), json!({}))]}))],
            "catch": [b(7, "PrintBp", json!({"message": simple("inner catch")}), json!({}))]}),
    );
    let prints = prints_after_one_retry(json!([b(
        1,
        "TryCatchBp",
        json!({"swallowError": simple("false")}),
        json!({"try": [b(2, "PrintBp", json!({"message": simple("outer")}), json!({})), inner],
            "catch": [b(8, "PrintBp", json!({"message": simple("outer catch")}), json!({}))]})
    )]));
    // First run: outer, inner, inner catch, outer catch. Retry: the failed block fails again and
    // both catches run again — but "outer" and "inner" do not print again.
    assert_eq!(
        prints,
        vec![
            r#""outer""#,
            r#""inner""#,
            r#""inner catch""#,
            r#""outer catch""#,
            r#""inner catch""#,
            r#""outer catch""#
        ]
    );
}
