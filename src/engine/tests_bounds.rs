//! Engine tests, continued: the data blocks, bad parameter values, and every bound a run has
//! (step budget and bytes, variables, outputs, inputs, frame data, fibers, path, log lines).

use super::tests::{b, delay_then_print, expr, finished, flow, simple, Harness};
use super::*;
use serde_json::{json, Value};

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
