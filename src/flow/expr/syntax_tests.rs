//! Tests of the public expression API around syntax: out-of-scope constructs, malformed input,
//! the five `EXPR_*` limits, and the static analysis helpers (`block_refs`, `variable_refs`,
//! `is_constant`).

use super::tests::{empty_world, eval_in, parse_err};
use super::{EvalError, Expr};
use crate::limits::{
    EXPR_COLLECTION_ITEMS_MAX, EXPR_DEPTH_MAX, EXPR_STRING_BYTES_MAX, EXPR_TEXT_BYTES_MAX,
};
use serde_json::json;

#[test]
fn out_of_scope_constructs_are_parse_errors() {
    let cases: &[(&str, &str)] = &[
        ("task.x = 1", "assignment"),
        ("x = 1", "unknown name 'x'"),
        ("taskInputs.a = 1", "assignment"),
        ("1; 2", "';'"),
        ("if (true) { 1 }", "'if' is not supported"),
        (
            "foreach (x : taskInputs.stops) {}",
            "'foreach' is not supported",
        ),
        ("def f() { 1 }", "'def' is not supported"),
        ("new java.util.HashMap()", "'new' is not supported"),
        ("taskInputs.a instanceof String", "'instanceof' operator"),
        ("taskInputs.a is String", "'is' operator"),
        ("taskInputs.stops contains 'a'", "'contains' operator"),
        ("'a' in taskInputs.stops", "'in' operator"),
        ("(x in taskInputs.stops)", "unknown name 'x'"),
        ("taskInputs.a ~= 'x'", "'~='"),
        ("{1, 2}", "inline arrays"),
        ("taskInputs.stops.{ name }", "inline arrays"),
        (
            "foo",
            "unknown name 'foo'; expected taskInputs, blocks or task",
        ),
        ("foo.bar()", "unknown name 'foo'"),
        ("Math", "can only be used to call a method"),
        ("Math.PI", "'Math.PI' is not supported"),
        ("Math.pow(2, 3)", "'Math.pow' is not supported"),
        (
            "StringUtils.reverse('a')",
            "'StringUtils.reverse' is not supported",
        ),
        ("System.exit(1)", "'System.exit' is not supported"),
        (
            "StringUtils.isEmpty()",
            "StringUtils.isEmpty takes 1 argument, got 0",
        ),
        (
            "StringUtils.substring('a')",
            "takes 2 or 3 arguments, got 1",
        ),
        ("Math.max(1)", "takes 2 arguments"),
        ("System.currentTimeMillis(1)", "takes 0 arguments"),
        ("Integer.parseInt", "must be called with arguments"),
        ("taskInputs.a.getClass()", "unknown method 'getClass'"),
        (
            "taskInputs.a.length(1)",
            "method 'length' takes 0 arguments, got 1",
        ),
        ("taskInputs.a.substring()", "takes 1 or 2 arguments, got 0"),
        ("[1, true ? 2 : 3]", "must be parenthesized"),
        ("['a': true ? 2 : 3]", "must be parenthesized"),
        ("a ? b", "unknown name 'a'"),
        ("true ? 1", "expected ':'"),
        ("1 2", "unexpected number 2 after a complete expression"),
        ("", "empty expression"),
        ("   ", "empty expression"),
        ("taskInputs.", "expected a name after '.'"),
        ("(1", "expected ')'"),
        ("[1, 2", "expected ']'"),
        ("+", "expected a value"),
        ("1 +", "expected a value, found the end of the expression"),
        ("'abc", "unterminated string"),
        ("taskInputs[", "expected a value"),
        ("1 : 2", "unexpected ':'"),
        ("this", "'this' is not supported"),
    ];
    for (text, needle) in cases {
        let e = parse_err(text);
        assert!(
            e.message.contains(needle),
            "{text:?}: {e} does not mention {needle:?}"
        );
    }
}

#[test]
fn parse_errors_carry_offsets_and_display() {
    let e = parse_err("taskInputs.a + foo");
    assert_eq!(e.offset, 15);
    assert_eq!(e.to_string(), format!("{} at offset 15", e.message));
    let e = parse_err("1 +\n'abc");
    assert_eq!(e.offset, 4);
    let ev = EvalError {
        message: "m".into(),
    };
    assert_eq!(ev.to_string(), "m");
    let _: &dyn std::error::Error = &e;
    let _: &dyn std::error::Error = &ev;
}

#[test]
fn the_parser_never_panics() {
    let deep_parens = "(".repeat(10_000);
    let deep_closed = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let deep_not = "!".repeat(10_000) + "true";
    let deep_list = "[".repeat(10_000);
    let long_chain = "1 + ".repeat(3_000) + "1";
    let long_path = "taskInputs".to_string() + &".a".repeat(5_000);
    let inputs: Vec<String> = [
        "",
        "(",
        ")",
        "[",
        "]",
        "[:]",
        "[,]",
        "[1,]",
        ",",
        ".",
        ".?",
        "?",
        ":",
        "?:",
        "!",
        "-",
        "&&",
        "||",
        "==",
        "!==",
        "<",
        ">=",
        "'",
        "\"",
        "'\\",
        "\"\\u",
        "'\\uZZZZ'",
        "1e",
        "1e+",
        "1.",
        ".5",
        "0x10",
        "1..2",
        "a.?",
        "taskInputs..a",
        "taskInputs.?",
        "taskInputs[]",
        "blocks.b1(",
        "StringUtils.",
        "StringUtils.isEmpty(",
        "StringUtils.isEmpty(,)",
        "ąę",
        "😀",
        "\u{0}",
        "\t",
        "taskInputs.a ? : 1",
        "()",
        "([)]",
        "1 ? 2 :",
        "'a' 'b'",
        "taskInputs @ 1",
        "`x`",
        "#",
        "\\",
        "null.",
        "true(",
        "1(2)",
        "task.variables.x()",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([deep_parens, deep_closed, deep_not, deep_list])
    .collect();
    for text in &inputs {
        let _ = Expr::parse(text);
    }
    // Flat chains are not nesting: long ones parse and evaluate iteratively.
    assert_eq!(eval_in(&empty_world(), &long_chain).unwrap(), json!(3_001));
    let mut world = empty_world();
    world.task_inputs.insert("a".into(), json!({}));
    let e = eval_in(&world, &long_path).unwrap_err();
    assert_eq!(e.message, "could not access: a");
}

#[test]
fn limit_text_bytes() {
    let ok = format!("'{}'", "x".repeat(EXPR_TEXT_BYTES_MAX - 2));
    assert!(Expr::parse(&ok).is_ok());
    let too_long = format!("'{}'", "x".repeat(EXPR_TEXT_BYTES_MAX - 1));
    let e = parse_err(&too_long);
    assert!(e.message.contains("EXPR_TEXT_BYTES_MAX"), "{e}");
}

#[test]
fn limit_depth() {
    let nested = |n: usize| format!("{}1{}", "(".repeat(n - 1), ")".repeat(n - 1));
    assert_eq!(
        eval_in(&empty_world(), &nested(EXPR_DEPTH_MAX)).unwrap(),
        json!(1)
    );
    let e = parse_err(&nested(EXPR_DEPTH_MAX + 1));
    assert!(e.message.contains("EXPR_DEPTH_MAX"), "{e}");
    let e = parse_err(&("!".repeat(EXPR_DEPTH_MAX) + "true"));
    assert!(e.message.contains("EXPR_DEPTH_MAX"), "{e}");
    let e = parse_err(&"[".repeat(EXPR_DEPTH_MAX + 1));
    assert!(e.message.contains("EXPR_DEPTH_MAX"), "{e}");
}

#[test]
fn limit_steps() {
    // Without loops a text-bounded expression visits at most a few nodes per byte, far below
    // the budget; what can pass it is regex backtracking in `split`.
    let per_term = "blocks.b1.siteId.length() + ";
    let text = per_term.repeat(EXPR_TEXT_BYTES_MAX / per_term.len() - 1) + "0";
    let mut world = empty_world();
    world.blocks.insert("b1".into(), json!({"siteId": "x"}));
    assert!(
        eval_in(&world, &text).is_ok(),
        "text-bounded work stays inside the budget"
    );
    let long = "a".repeat(3_000);
    let text = format!("'{long}'.split('a*a*a*a*a*b')");
    let e = eval_in(&empty_world(), &text).unwrap_err();
    assert!(e.message.contains("EXPR_STEPS_MAX"), "{e}");
}

#[test]
fn limit_string_bytes() {
    let mut world = empty_world();
    world
        .task_inputs
        .insert("s".into(), json!("x".repeat(EXPR_STRING_BYTES_MAX / 2 + 1)));
    let e = eval_in(&world, "taskInputs.s + taskInputs.s").unwrap_err();
    assert!(e.message.contains("EXPR_STRING_BYTES_MAX"), "{e}");
    let e = eval_in(&world, "taskInputs.s.concat(taskInputs.s)").unwrap_err();
    assert!(e.message.contains("EXPR_STRING_BYTES_MAX"), "{e}");
    let e = eval_in(&world, "StringUtils.rightPad('a', 100000)").unwrap_err();
    assert!(e.message.contains("EXPR_STRING_BYTES_MAX"), "{e}");
    let e = eval_in(&world, "taskInputs.s.replace('x', 'yy')").unwrap_err();
    assert!(e.message.contains("EXPR_STRING_BYTES_MAX"), "{e}");
}

#[test]
fn limit_collection_items() {
    let mut world = empty_world();
    let csv = vec!["a"; EXPR_COLLECTION_ITEMS_MAX + 1].join(",");
    world.task_inputs.insert("csv".into(), json!(csv));
    let e = eval_in(&world, "taskInputs.csv.split(',')").unwrap_err();
    assert!(e.message.contains("EXPR_COLLECTION_ITEMS_MAX"), "{e}");
    let e = eval_in(&world, "StringUtils.split(taskInputs.csv, ',')").unwrap_err();
    assert!(e.message.contains("EXPR_COLLECTION_ITEMS_MAX"), "{e}");
    let fits = vec!["a"; EXPR_COLLECTION_ITEMS_MAX].join(",");
    world.task_inputs.insert("csv".into(), json!(fits));
    let v = eval_in(&world, "taskInputs.csv.split(',')").unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(EXPR_COLLECTION_ITEMS_MAX));
}

#[test]
fn static_references() {
    let expr = Expr::parse(
        "blocks.b1.siteId + blocks.?b2.x + blocks['b3'] + blocks[taskInputs.k] + \
         task.variables.v1 + task.variables.?v2 + task['variables']['v3'] + blocks.b1.y",
    )
    .unwrap();
    assert_eq!(expr.block_refs(), vec!["b1", "b2", "b3", "b1"]);
    assert_eq!(expr.variable_refs(), vec!["v1", "v2", "v3"]);
    let nested =
        Expr::parse("blocks.a[blocks.b.i].size() > StringUtils.length(task.variables.n)").unwrap();
    assert_eq!(nested.block_refs(), vec!["a", "b"]);
    assert_eq!(nested.variable_refs(), vec!["n"]);
    assert!(Expr::parse("taskInputs.x").unwrap().block_refs().is_empty());
    assert!(Expr::parse("blocks").unwrap().block_refs().is_empty());
    assert!(Expr::parse("task.variables")
        .unwrap()
        .variable_refs()
        .is_empty());
}

#[test]
fn constants() {
    for text in [
        "true", "\"x\"", "0", "null", "empty", "[1, 'a']", "1 + 2", "-1",
    ] {
        assert!(Expr::parse(text).unwrap().is_constant(), "{text}");
    }
    for text in [
        "taskInputs.a",
        "task.priority",
        "blocks",
        "Math.max(1, 2)",
        "[blocks.a]",
    ] {
        assert!(!Expr::parse(text).unwrap().is_constant(), "{text}");
    }
}

#[test]
fn random_fragments_never_panic() {
    const FRAGMENTS: &[&str] = &[
        "taskInputs",
        "blocks",
        "task",
        "variables",
        ".",
        ".?",
        "[",
        "]",
        "(",
        ")",
        ",",
        ":",
        "?",
        "+",
        "-",
        "*",
        "/",
        "%",
        "!",
        "==",
        "!=",
        "<",
        ">=",
        "&&",
        "||",
        "0",
        "1.5",
        "'a'",
        "\"b",
        "null",
        "empty",
        "true",
        "x",
        "size()",
        "split(','",
        "StringUtils",
        "Math.max(",
        "\\",
        "ż",
        " ",
        "[1:2]",
        "'1'",
        "get(0)",
    ];
    let mut world = empty_world();
    world
        .task_inputs
        .insert("x".into(), json!({"a": [1, "2", null], "b": "c,d"}));
    world.blocks.insert("x".into(), json!({"size": 1}));
    world.variables.insert("x".into(), json!(3));
    // A fixed linear congruential generator: the same strings on every run.
    let mut state: u64 = 0x5eed;
    let mut parsed = 0;
    for _ in 0..20_000 {
        let mut text = String::new();
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (state >> 59) as usize + 1;
        for _ in 0..len {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(FRAGMENTS[(state >> 33) as usize % FRAGMENTS.len()]);
        }
        if let Ok(expr) = Expr::parse(&text) {
            parsed += 1;
            let _ = expr.eval(&world.scope());
            let _ = (expr.block_refs(), expr.variable_refs(), expr.is_constant());
        }
    }
    assert!(
        parsed > 100,
        "the generator should also produce valid expressions ({parsed})"
    );
}
