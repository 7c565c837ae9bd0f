//! Tests of the compile step: one per kind of diagnostic, and the bounds it enforces.

use super::compile::{compile, Compiled, Severity};
use super::load::load_value;
use crate::limits::{BLOCK_DEPTH_MAX, DIAGNOSTICS_MAX};
use serde_json::{json, Value};

fn compiled(children: Value) -> Compiled {
    let def = json!({"label": "t", "detail": {"inputParams": [], "rootBlock": {"id": -1,
        "name": "-1", "blockType": "RootBp", "inputParams": {}, "children": {"default": children}}}});
    compile(&load_value(def, "t").remove(0).unwrap())
}

fn b(id: i64, ty: &str, params: Value, children: Value) -> Value {
    json!({"id": id, "name": format!("b{id}"), "blockType": ty, "inputParams": params,
        "children": children})
}

fn simple(v: &str) -> Value {
    json!({"type": "Simple", "value": v})
}

fn expr(v: &str) -> Value {
    json!({"type": "Expression", "value": v})
}

/// Every diagnostic as text with its severity.
fn shown(c: &Compiled) -> Vec<(Severity, String)> {
    c.diagnostics
        .iter()
        .map(|d| (d.severity, d.to_string()))
        .collect()
}

fn has(c: &Compiled, severity: Severity, needle: &str) -> bool {
    shown(c)
        .iter()
        .any(|(s, t)| *s == severity && t.contains(needle))
}

#[test]
fn a_clean_flow_has_no_diagnostics() {
    let c = compiled(json!([b(
        1,
        "PrintBp",
        json!({"message": simple("hi")}),
        json!({})
    )]));
    assert!(c.diagnostics.is_empty(), "{:?}", shown(&c));
    assert!(c.flow.is_some());
}

#[test]
fn every_error_is_reported_at_once() {
    let c = compiled(json!([
        b(1, "NoSuchBp", json!({}), json!({})),
        b(2, "ModbusCommonReadNameBp", json!({}), json!({})),
        b(
            3,
            "SetTaskVariableBp",
            json!({"varName": simple("  ")}),
            json!({})
        ),
        b(4, "PrintBp", json!({"message": expr("a +")}), json!({})),
        b(
            4,
            "PrintBp",
            json!({"message": json!({"type": "Weird", "value": "x"})}),
            json!({})
        ),
        b(
            5,
            "RepeatNumBp",
            json!({"num": simple("1001")}),
            json!({"default": []})
        ),
        b(
            6,
            "ParallelRepeatNBp",
            json!({"num": simple("101")}),
            json!({"default": []})
        ),
        b(
            7,
            "DelayBp",
            json!({"timeMillis": simple("3.0")}),
            json!({})
        ),
    ]));
    assert!(c.flow.is_none());
    let e = Severity::Error;
    assert!(has(
        &c,
        e,
        "b1 (NoSuchBp) error: unknown block type NoSuchBp"
    ));
    assert!(has(
        &c,
        e,
        "b2 (ModbusCommonReadNameBp) error: block type ModbusCommonReadNameBp is not supported yet"
    ));
    assert!(has(
        &c,
        e,
        "b3 (SetTaskVariableBp) varName: error: required parameter"
    ));
    assert!(has(
        &c,
        e,
        "b3 (SetTaskVariableBp) varValue: error: required parameter"
    ));
    assert!(has(
        &c,
        e,
        "b4 (PrintBp) message: error: expression `a +` does not parse"
    ));
    assert!(has(&c, e, "duplicate block id 4"));
    assert!(has(&c, e, "duplicate block name"));
    assert!(has(&c, e, "unknown parameter type \"Weird\""));
    assert!(has(
        &c,
        e,
        "b5 (RepeatNumBp) num: error: 1001 is over REPEAT_NUM_MAX (1000)"
    ));
    assert!(has(
        &c,
        e,
        "b6 (ParallelRepeatNBp) num: error: 101 is over PARALLEL_REPEAT_MAX (100)"
    ));
    assert!(has(
        &c,
        e,
        "b7 (DelayBp) timeMillis: error: \"3.0\" is not an integer"
    ));
}

#[test]
fn nesting_past_the_depth_limit_is_an_error() {
    let mut tree = b(1000, "PrintBp", json!({}), json!({}));
    for id in (1..=BLOCK_DEPTH_MAX as i64 + 1).rev() {
        tree = b(id, "SerialFlowBp", json!({}), json!({"default": [tree]}));
    }
    let c = compiled(json!([tree]));
    assert!(
        has(&c, Severity::Error, "BLOCK_DEPTH_MAX"),
        "{:?}",
        shown(&c)
    );
    let mut ok = b(1000, "PrintBp", json!({}), json!({}));
    for id in (1..BLOCK_DEPTH_MAX as i64).rev() {
        ok = b(id, "SerialFlowBp", json!({}), json!({"default": [ok]}));
    }
    assert!(compiled(json!([ok])).flow.is_some());
}

#[test]
fn reads_that_cannot_succeed_are_warned() {
    let c = compiled(json!([
        b(
            1,
            "PrintBp",
            json!({"message": expr("blocks.b2.value")}),
            json!({})
        ),
        b(2, "GetCacheDataBp", json!({"key": simple("k")}), json!({})),
        b(
            3,
            "PrintBp",
            json!({"message": expr("task.variables.never")}),
            json!({})
        ),
        b(
            4,
            "PrintBp",
            json!({"message": expr("blocks.b99.x")}),
            json!({})
        ),
        b(
            5,
            "PrintBp",
            json!({"message": expr("blocks.b2.value")}),
            json!({})
        ),
    ]));
    assert!(c.flow.is_some(), "warnings do not stop a run");
    let w = Severity::Warning;
    assert!(has(
        &c,
        w,
        "b1 (PrintBp) message: warning: reads blocks.b2 where b2 cannot have run"
    ));
    assert!(has(&c, w, "reads task.variables.never"));
    assert!(has(&c, w, "no block named b99"));
    assert!(
        !has(&c, w, "b5 (PrintBp)"),
        "b2 has run before b5: {:?}",
        shown(&c)
    );
}

#[test]
fn loop_outputs_count_as_available_inside_the_loop() {
    let c = compiled(json!([b(
        1,
        "IterateListBp",
        json!({"list": simple("[1]")}),
        json!({"default": [
        b(2, "PrintBp", json!({"message": expr("blocks.b1.item + blocks.b3.x")}), json!({})),
        b(3, "CurrentTimeStampBp", json!({}), json!({}))]})
    )]));
    assert!(c.diagnostics.is_empty(), "{:?}", shown(&c));
}

#[test]
fn endless_while_loops_and_stray_breaks_are_warned() {
    let c = compiled(json!([
        b(
            1,
            "WhileBp",
            json!({"loopCondition": simple("true")}),
            json!({"default": [
            b(2, "DelayBp", json!({"timeMillis": simple("10")}), json!({}))]})
        ),
        b(3, "BreakBp", json!({}), json!({})),
        b(
            4,
            "SetTaskVariableBp",
            json!({"varName": simple("go"), "varValue": simple("true")}),
            json!({})
        ),
        b(
            5,
            "WhileBp",
            json!({"loopCondition": expr("task.variables.go == 'true'")}),
            json!({"default": [
            b(6, "SetTaskVariableBp", json!({"varName": simple("go"), "varValue": simple("false")}), json!({}))]})
        ),
    ]));
    assert!(has(
        &c,
        Severity::Warning,
        "b1 (WhileBp) loopCondition: warning: the loop body can never change"
    ));
    assert!(has(
        &c,
        Severity::Warning,
        "b3 (BreakBp) warning: BreakBp is not inside"
    ));
    assert!(
        !has(&c, Severity::Warning, "b5 (WhileBp)"),
        "{:?}",
        shown(&c)
    );
}

#[test]
fn lenient_shapes_are_accepted() {
    let def = json!({"label": "t", "detail": {"rootBlock": {"id": "-1", "name": "-1",
        "blockType": "RootBp", "children": {"submodules": [
            {"id": "1", "name": "b1", "blockType": "PrintBp", "extra": 1,
             "inputParams": {"message": {"type": "Simple", "value": true}}},
            {"id": 2, "name": "b2", "blockType": "IfElseBp",
             "inputParams": {"conditionIf": {"type": "Simple", "value": "\tfalse "}},
             "children": {"if": []}}]}}}});
    let c = compile(&load_value(def, "t").remove(0).unwrap());
    assert!(c.flow.is_some(), "{:?}", shown(&c));
    assert!(has(
        &c,
        Severity::Warning,
        "\"submodules\" are read as \"default\""
    ));
    assert!(has(&c, Severity::Warning, "branch \"else\" is missing"));
    let flow = c.flow.unwrap();
    assert_eq!(flow.block(0).branch(super::model::Branch::Default).len(), 2);
}

#[test]
fn diagnostics_stop_at_their_cap() {
    let blocks: Vec<Value> = (1..=DIAGNOSTICS_MAX as i64 + 50)
        .map(|i| b(i, "NoSuchBp", json!({}), json!({})))
        .collect();
    let c = compiled(Value::Array(blocks));
    assert_eq!(c.diagnostics.len(), DIAGNOSTICS_MAX + 1);
    assert!(c
        .diagnostics
        .last()
        .unwrap()
        .message
        .contains("DIAGNOSTICS_MAX"));
}

#[test]
fn a_missing_root_is_an_error() {
    let c = compile(
        &load_value(json!({"label": "x", "detail": {"inputParams": []}}), "x")
            .remove(0)
            .unwrap(),
    );
    assert!(has(&c, Severity::Error, "no rootBlock"));
    let c = compiled(json!([{"id": 1, "name": "b1"}]));
    assert!(has(&c, Severity::Error, "block has no blockType"));
}

#[test]
fn an_oversized_definition_is_refused_with_the_limit_named() {
    let text = "x".repeat(crate::limits::DEFINITION_BYTES_MAX);
    let c = compiled(json!([b(
        1,
        "PrintBp",
        json!({"message": simple(&text)}),
        json!({})
    )]));
    assert!(c.flow.is_none());
    assert!(has(&c, Severity::Error, "DEFINITION_BYTES_MAX"));
}

#[test]
fn more_blocks_than_the_bound_is_an_error() {
    let blocks: Vec<Value> = (1..=crate::limits::FLOW_BLOCKS_MAX as i64 + 5)
        .map(|i| b(i, "SerialFlowBp", json!({}), json!({"default": []})))
        .collect();
    let c = compiled(Value::Array(blocks));
    assert!(c.flow.is_none());
    assert!(has(&c, Severity::Error, "FLOW_BLOCKS_MAX"));
}
