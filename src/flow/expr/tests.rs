//! Tests of the public expression API: every corpus expression and the evaluation rules of
//! spec §2.5 through real parsing. Syntax, limits and static analysis are in `syntax_tests`.

use super::{EvalError, Expr, ParseError, Scope};
use crate::value::{Map, Value};
use serde_json::json;

/// Every distinct Expression parameter of `/work/shared/corpus` (defs and raw `.task` exports)
/// and `/work/shared/docs/wind-task-examples`, exactly as written.
const CORPUS: &[&str] = &[
    r###""LM1""###,
    r###""R1""###,
    r###""{\"from\":\"" + blocks.b1.siteId + "\",\"to\":\"\"}""###,
    r###""{\"from\":\"\",\"to\":\"" + task.variables.dropSite + "\"}""###,
    r###""{\"target\":\"" + blocks.b2.item + "\"}""###,
    r###"'arrived at ' + taskInputs.target"###,
    r###"'could not mark ' + taskInputs.siteId + ' filled'"###,
    r###"'giving up: site ' + taskInputs.siteId + ' does not exist'"###,
    r###"'left the loop after ' + task.variables.round + ' rounds'"###,
    r###"'robot still travelling to ' + taskInputs.target"###,
    r###"'round ' + task.variables.round"###,
    r###"'this is run number ' + task.variables.count"###,
    r###"'visited ' + taskInputs.stops.size() + ' stops'"###,
    r###"'visiting ' + blocks.b2.item + ' (' + (blocks.b2.index + 1) + '/' + blocks.b2.size + ')'"###,
    r###"'{"from":"' + blocks.b1.siteId + '","to":"' + blocks.b2.siteId + '"}'"###,
    r###"0"###,
    r###"blocks.b1.selectedAgvId"###,
    r###"blocks.b1.siteId"###,
    r###"blocks.b1.siteId != null"###,
    r###"blocks.b1.success == true"###,
    r###"blocks.b1.value == '' ? 1 : Long.parseLong(blocks.b1.value) + 1"###,
    r###"blocks.b2.item"###,
    r###"blocks.b2.siteId"###,
    r###"false"###,
    r###"task.priority"###,
    r###"task.taskRecordId + '-leg1'"###,
    r###"task.variables.count"###,
    r###"task.variables.count >= 3"###,
    r###"task.variables.dropSite"###,
    r###"task.variables.failed == true"###,
    r###"task.variables.monitorStop != true"###,
    r###"task.variables.moved != true"###,
    r###"task.variables.ready != true"###,
    r###"task.variables.round + 1"###,
    r###"task.variables.round >= taskInputs.maxRounds"###,
    r###"taskInputs.attempts"###,
    r###"taskInputs.dropSelectorArgs"###,
    r###"taskInputs.fallbackDrop"###,
    r###"taskInputs.fallbackSite"###,
    r###"taskInputs.fromGroup"###,
    r###"taskInputs.keyRoute"###,
    r###"taskInputs.loadScript"###,
    r###"taskInputs.monitorArgs"###,
    r###"taskInputs.monitorIntervalMs"###,
    r###"taskInputs.monitorScript"###,
    r###"taskInputs.pickGroup"###,
    r###"taskInputs.pickSite"###,
    r###"taskInputs.pollArgs"###,
    r###"taskInputs.pollScript"###,
    r###"taskInputs.preferredDrop"###,
    r###"taskInputs.retryCount"###,
    r###"taskInputs.retryDelayMs"###,
    r###"taskInputs.retryPeriodMs"###,
    r###"taskInputs.siteId"###,
    r###"taskInputs.stops"###,
    r###"taskInputs.stops[0]"###,
    r###"taskInputs.target"###,
    r###"taskInputs.targetSite"###,
    r###"taskInputs.targets"###,
    r###"taskInputs.toGroup"###,
    r###"taskInputs.unloadScript"###,
    r###"true"###,
];

fn obj(v: Value) -> Map {
    match v {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The maps of a scope, owned by the test.
pub(super) struct World {
    pub(super) task_inputs: Map,
    pub(super) blocks: Map,
    pub(super) variables: Map,
    pub(super) task: Map,
}

impl World {
    pub(super) fn scope(&self) -> Scope<'_> {
        Scope {
            task_inputs: &self.task_inputs,
            blocks: &self.blocks,
            variables: &self.variables,
            task: &self.task,
        }
    }
}

/// A scope providing every name the corpus reads.
pub(super) fn corpus_world() -> World {
    let inputs = json!({
        "target": "LM7", "siteId": "AP1", "stops": ["LM1", "LM2", "LM3"], "maxRounds": 3,
        "attempts": "2", "targetSite": "LM9", "targets": ["A", "B"], "keyRoute": "LM1",
        "fallbackSite": "LM99", "fallbackDrop": "D2", "preferredDrop": "D1", "fromGroup": "G1",
        "toGroup": "G2", "pickGroup": "G3", "pickSite": "P1", "retryCount": 3,
        "retryDelayMs": 1000, "retryPeriodMs": 500, "monitorIntervalMs": 2000,
        "loadScript": "load", "unloadScript": "unload", "monitorScript": "mon",
        "pollScript": "poll", "monitorArgs": {"a": 1}, "pollArgs": "{}",
        "dropSelectorArgs": {"group": "G2"}
    });
    let blocks = json!({
        "b1": {"siteId": "AP1", "selectedAgvId": "AMB-01", "success": true, "value": "4"},
        "b2": {"item": "LM2", "siteId": "AP2", "index": 1, "size": 3}
    });
    let variables = json!({
        "count": 2, "dropSite": "D9", "failed": false, "monitorStop": "false", "moved": true,
        "ready": false, "round": 1
    });
    let task = json!({
        "id": "def-1", "defLabel": "transport", "createdOn": "2024-05-01 10:00:00",
        "status": 1000, "taskRecordId": "rec-42", "priority": 1
    });
    World {
        task_inputs: obj(inputs),
        blocks: obj(blocks),
        variables: obj(variables),
        task: obj(task),
    }
}

pub(super) fn empty_world() -> World {
    World {
        task_inputs: Map::new(),
        blocks: Map::new(),
        variables: Map::new(),
        task: Map::new(),
    }
}

pub(super) fn eval_in(world: &World, text: &str) -> Result<Value, EvalError> {
    let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
    expr.eval(&world.scope())
}

/// Evaluates in the corpus world; panics on an error.
fn ev(text: &str) -> Value {
    eval_in(&corpus_world(), text).unwrap_or_else(|e| panic!("{text:?} failed: {e}"))
}

/// Evaluates in the corpus world; returns the error message.
fn ev_err(text: &str) -> String {
    match eval_in(&corpus_world(), text) {
        Ok(v) => panic!("{text:?} should fail, gave {v}"),
        Err(e) => e.message,
    }
}

pub(super) fn parse_err(text: &str) -> ParseError {
    match Expr::parse(text) {
        Ok(e) => panic!("{text:?} should not parse: {e:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_corpus_expression_parses_and_evaluates() {
    let world = corpus_world();
    for text in CORPUS {
        let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(expr.text(), *text);
        if let Err(e) = expr.eval(&world.scope()) {
            panic!("{text:?} failed: {e}");
        }
    }
}

#[test]
fn corpus_expressions_give_the_expected_values() {
    assert_eq!(ev(r#""LM1""#), json!("LM1"));
    assert_eq!(ev("0"), json!(0));
    assert_eq!(ev("taskInputs.stops[0]"), json!("LM1"));
    assert_eq!(ev("taskInputs.monitorArgs"), json!({"a": 1}));
    assert_eq!(ev("task.priority"), json!(1));
    assert_eq!(ev("task.taskRecordId + '-leg1'"), json!("rec-42-leg1"));
    assert_eq!(
        ev("'visited ' + taskInputs.stops.size() + ' stops'"),
        json!("visited 3 stops")
    );
    assert_eq!(
        ev("'visiting ' + blocks.b2.item + ' (' + (blocks.b2.index + 1) + '/' + blocks.b2.size + ')'"),
        json!("visiting LM2 (2/3)")
    );
    assert_eq!(
        ev(r#""{\"from\":\"" + blocks.b1.siteId + "\",\"to\":\"\"}""#),
        json!(r#"{"from":"AP1","to":""}"#)
    );
    assert_eq!(
        ev("blocks.b1.value == '' ? 1 : Long.parseLong(blocks.b1.value) + 1"),
        json!(5)
    );
    assert_eq!(
        ev("task.variables.round >= taskInputs.maxRounds"),
        json!(false)
    );
    assert_eq!(ev("task.variables.count >= 3"), json!(false));
    assert_eq!(ev("task.variables.monitorStop != true"), json!(true));
    assert_eq!(ev("task.variables.failed == true"), json!(false));
    assert_eq!(ev("blocks.b1.success == true"), json!(true));
    assert_eq!(ev("blocks.b1.siteId != null"), json!(true));
    assert_eq!(ev("task.variables.round + 1"), json!(2));
}

#[test]
fn typical_consequences_of_spec_2_5() {
    let world = empty_world();
    let e = eval_in(&world, "blocks.b1.siteId != null").unwrap_err();
    assert_eq!(e.message, "could not access: b1");
    let e = eval_in(&world, "task.variables.x == true").unwrap_err();
    assert_eq!(e.message, "could not access: x");
    let mut world = empty_world();
    world.variables.insert("x".into(), json!(true));
    assert_eq!(
        eval_in(&world, "task.variables.x == true").unwrap(),
        json!(true)
    );
    world.variables.insert("n".into(), json!("0"));
    assert_eq!(
        eval_in(&world, "task.variables.n + 1").unwrap(),
        json!("01")
    );
}

#[test]
fn member_access_rules() {
    let mut world = empty_world();
    world.blocks.insert(
        "b1".into(),
        json!({"siteId": null, "list": [1, 2], "m": {"k": 1}}),
    );
    assert_eq!(eval_in(&world, "blocks.b1.siteId").unwrap(), Value::Null);
    assert_eq!(
        eval_in(&world, "blocks.b1.siteId == null").unwrap(),
        json!(true)
    );
    let e = eval_in(&world, "blocks.b1.siteId.x").unwrap_err();
    assert_eq!(e.message, "could not access: x (the value is null)");
    let e = eval_in(&world, "blocks.b1.list.x").unwrap_err();
    assert!(e.message.starts_with("could not access: x on List"), "{e}");
    assert_eq!(eval_in(&world, "blocks.?b9").unwrap(), Value::Null);
    assert_eq!(eval_in(&world, "blocks.?b9.siteId").unwrap(), Value::Null);
    assert_eq!(eval_in(&world, "blocks.b1.?siteId.x").unwrap(), Value::Null);
    assert_eq!(
        eval_in(&world, "blocks.b1.?missing == null").unwrap(),
        json!(true)
    );
    assert_eq!(eval_in(&world, "blocks.b1.list[1]").unwrap(), json!(2));
    assert!(eval_in(&world, "blocks.b1.list[2]")
        .unwrap_err()
        .message
        .contains("out of range"));
    assert!(eval_in(&world, "blocks.b1.list['a']")
        .unwrap_err()
        .message
        .contains("integer"));
    assert_eq!(eval_in(&world, "blocks.b1.m['k']").unwrap(), json!(1));
    assert_eq!(eval_in(&world, "blocks.b1.m['nope']").unwrap(), Value::Null);
    assert_eq!(eval_in(&world, "blocks['b1'].m.k").unwrap(), json!(1));
    assert!(eval_in(&world, "'abc'[0]")
        .unwrap_err()
        .message
        .contains("cannot index String"));
    assert_eq!(eval_in(&world, "[1, [2, 3]][1][0]").unwrap(), json!(2));
    assert_eq!(eval_in(&world, "['a': [1, 2]].a[1]").unwrap(), json!(2));
    assert_eq!(
        eval_in(&world, "blocks.?b1.?list.?size()").unwrap(),
        json!(2)
    );
    assert_eq!(
        eval_in(&world, "blocks.b1.siteId.?length()").unwrap(),
        Value::Null
    );
    assert!(eval_in(&world, "blocks.b1.siteId.length()")
        .unwrap_err()
        .message
        .contains("on null"));
}

#[test]
fn task_root_and_variables() {
    let world = corpus_world();
    assert_eq!(
        eval_in(&world, "task.variables.dropSite").unwrap(),
        json!("D9")
    );
    assert_eq!(
        eval_in(&world, "task['variables']['round']").unwrap(),
        json!(1)
    );
    assert_eq!(eval_in(&world, "task.variables.size()").unwrap(), json!(7));
    assert_eq!(eval_in(&world, "task.id").unwrap(), json!("def-1"));
    assert_eq!(
        eval_in(&world, "task.variables").unwrap()["round"],
        json!(1)
    );
    let whole = eval_in(&world, "task").unwrap();
    assert_eq!(whole["defLabel"], json!("transport"));
    assert_eq!(whole["variables"]["count"], json!(2));
    assert_eq!(
        eval_in(&world, "taskInputs.containsKey('target')").unwrap(),
        json!(true)
    );
    assert!(eval_in(&world, "task.nope")
        .unwrap_err()
        .message
        .contains("could not access: nope"));
}

#[test]
fn plus_minus_and_friends_through_the_parser() {
    assert_eq!(ev("1 + 2 * 3"), json!(7));
    assert_eq!(ev("(1 + 2) * 3"), json!(9));
    assert_eq!(ev("10 - 2 - 3"), json!(5));
    assert_eq!(ev("7 / 2"), json!(3));
    assert_eq!(ev("7 / 2.0"), json!(3.5));
    assert_eq!(ev("7 % 3"), json!(1));
    assert_eq!(ev("'5' * '2'"), json!(10));
    assert_eq!(ev("1 + 2 + 'x'"), json!("3x"));
    assert_eq!(ev("'x' + 1 + 2"), json!("x12"));
    assert_eq!(ev("'v' + 0.1 + 1e7"), json!("v0.11.0E7"));
    assert_eq!(ev("1.5d + 1L"), json!(2.5));
    assert_eq!(ev("-taskInputs.maxRounds"), json!(-3));
    assert_eq!(ev("- -2"), json!(2));
    assert_eq!(ev("'n=' + null"), json!("n=null"));
    assert!(ev_err("1 / 0").contains("division by zero"));
    assert!(ev_err("5 % 0").contains("division by zero"));
    assert_eq!(ev_err("1.0 / 0"), "result is not a finite number");
    assert!(ev_err("9223372036854775807 + 1").contains("overflow"));
    assert!(ev_err("true + 1").contains("cannot add"));
    assert!(ev_err("'a' - 1").contains("needs numbers"));
}

#[test]
fn equality_through_the_parser() {
    assert_eq!(ev("null == null"), json!(true));
    assert_eq!(ev("nil == null"), json!(true));
    assert_eq!(ev("1 == 1.0"), json!(true));
    assert_eq!(ev("'1' == 1"), json!(true));
    assert_eq!(ev("'x' == 1"), json!(false));
    assert_eq!(ev("'TRUE' == true"), json!(true));
    assert_eq!(ev("'a' != 'A'"), json!(true));
    assert_eq!(ev("[1, 2] == [1, 2.0]"), json!(true));
    assert_eq!(ev("['a': 1] == ['a': 1]"), json!(true));
    assert_eq!(ev("taskInputs.target == null"), json!(false));
    assert_eq!(ev("null == empty"), json!(true));
    assert_eq!(ev("'' == empty"), json!(true));
    assert_eq!(ev("[] == empty"), json!(true));
    assert_eq!(ev("empty == taskInputs.target"), json!(false));
    assert_eq!(ev("' ' == empty"), json!(false));
    assert_eq!(ev("taskInputs.stops != empty"), json!(true));
    assert_eq!(ev("empty"), json!(""));
    assert_eq!(ev("1 == 1 == true"), json!(true));
}

#[test]
fn relational_logical_and_ternary() {
    assert_eq!(ev("2 < 3"), json!(true));
    assert_eq!(ev("'2' <= 2"), json!(true));
    assert_eq!(ev("'b' > 'a'"), json!(true));
    assert_eq!(ev("3.5 >= 4"), json!(false));
    assert!(ev_err("null < 1").contains("cannot compare"));
    assert_eq!(ev("true && 'true'"), json!(true));
    assert_eq!(ev("false || 'FALSE'"), json!(false));
    assert_eq!(ev("false && blocks.nope.x"), json!(false), "short-circuit");
    assert_eq!(ev("true || 1"), json!(true), "short-circuit");
    assert!(ev_err("true && 1").contains("expected a boolean"));
    assert!(ev_err("null || true").contains("expected a boolean, got null"));
    assert_eq!(ev("!false"), json!(true));
    assert_eq!(ev("!!'true'"), json!(true));
    assert!(ev_err("!'yes'").contains("expected a boolean"));
    assert_eq!(ev("1 < 2 && 2 < 3 || false"), json!(true));
    assert_eq!(ev("true ? 'a' : 'b'"), json!("a"));
    assert_eq!(ev("'false' ? 'a' : 'b'"), json!("b"));
    assert_eq!(ev("false ? 1 : true ? 2 : 3"), json!(2));
    assert_eq!(
        ev("true ? 1 : blocks.nope"),
        json!(1),
        "the other branch is not evaluated"
    );
    assert!(ev_err("'x' ? 1 : 2").contains("expected a boolean"));
}

#[test]
fn literals_lists_and_maps() {
    assert_eq!(ev("[]"), json!([]));
    assert_eq!(ev("[1, 'a', null, true]"), json!([1, "a", null, true]));
    assert_eq!(ev("['k': 1, 'j': [2]]"), json!({"k": 1, "j": [2]}));
    assert_eq!(ev("[taskInputs.target: 1]"), json!({"LM7": 1}));
    assert_eq!(ev("[1, (true ? 2 : 3)]"), json!([1, 2]));
    assert_eq!(ev("'\\u0041\\t\"'"), json!("A\t\""));
    assert!(ev("1.5e2").is_f64());
    assert!(ev("15").is_i64());
    assert!(ev_err("[null: 1]").contains("key is null"));
}

#[test]
fn calls_through_the_parser() {
    assert_eq!(ev("StringUtils.isEmpty(taskInputs.target)"), json!(false));
    assert_eq!(ev("StringUtils.isBlank(null)"), json!(true));
    assert_eq!(
        ev("StringUtils.leftPad('' + task.variables.count, 3, '0')"),
        json!("002")
    );
    assert_eq!(ev("StringUtils.trim(' x ').length()"), json!(1));
    assert_eq!(ev("Integer.parseInt('12') + 1"), json!(13));
    assert_eq!(ev("Math.max(task.variables.count, 5)"), json!(5));
    assert_eq!(ev("String.valueOf(1.0)"), json!("1.0"));
    assert_eq!(ev("taskInputs.target.substring(2)"), json!("7"));
    assert_eq!(ev("'a,b,,'.split(',')"), json!(["a", "b"]));
    assert_eq!(ev("'a,b'.split(',').size()"), json!(2));
    assert_eq!(ev("taskInputs.stops.contains('LM2')"), json!(true));
    assert_eq!(ev("taskInputs.stops.get(2)"), json!("LM3"));
    assert_eq!(ev("task.priority.toString() + '!'"), json!("1!"));
    assert!(ev_err("'a|b'.split('a|b')").contains("'|'"));
    assert!(ev_err("Integer.parseInt('x')").contains("not an integer"));
    assert!(ev_err("System.currentTimeMillis()").contains("nowMs"));
    let mut world = corpus_world();
    world.task.insert("nowMs".into(), json!(1234));
    assert_eq!(
        eval_in(&world, "System.currentTimeMillis() + 1").unwrap(),
        json!(1235)
    );
}

#[test]
fn evaluation_borrows_instead_of_cloning() {
    // A large map in scope: reading one member must not copy the map (checked indirectly: the
    // result is the member, and the scope is untouched and still usable).
    let mut world = empty_world();
    let big: Map = (0..5_000).map(|i| (format!("k{i}"), json!(i))).collect();
    world.task_inputs.insert("big".into(), Value::Object(big));
    let expr = Expr::parse("taskInputs.big.k4999").unwrap();
    for _ in 0..1_000 {
        assert_eq!(expr.eval(&world.scope()).unwrap(), json!(4999));
    }
    assert_eq!(
        eval_in(&world, "taskInputs.big.size()").unwrap(),
        json!(5_000)
    );
}

#[test]
fn copies_of_large_values_stop_at_the_result_bound() {
    let mut world = empty_world();
    let big = "x".repeat(crate::limits::EXPR_RESULT_BYTES_MAX / 3);
    world.variables.insert("big".into(), Value::String(big));
    assert!(eval_in(&world, "task.variables.big").is_ok());
    assert!(eval_in(&world, "[task.variables.big, task.variables.big]").is_ok());
    let err = eval_in(
        &world,
        "[task.variables.big, task.variables.big, task.variables.big, task.variables.big]",
    )
    .unwrap_err();
    assert!(
        err.message.contains("EXPR_RESULT_BYTES_MAX"),
        "{}",
        err.message
    );
    let err = eval_in(&world, "['a': task.variables.big, 'b': task.variables.big, 'c': task.variables.big, 'd': task.variables.big]").unwrap_err();
    assert!(
        err.message.contains("EXPR_RESULT_BYTES_MAX"),
        "{}",
        err.message
    );
}
