//! Definition fuzz: every definition JSON of `../shared/corpus/defs/` and
//! `../shared/docs/wind-task-examples/`, mutated at random from a seed (keys deleted, values
//! replaced by other types, children duplicated, reordered and nested deeply, huge strings,
//! numbers as strings, random expression text, random characters), then loaded and compiled.
//! Loading and compiling never panic; a compile yields a flow or at least one error; a flow has
//! at most `FLOW_BLOCKS_MAX` blocks, none deeper than `BLOCK_DEPTH_MAX`. Random bytes and
//! truncated text go through `load_text` the same way.
//!
//! Each case has its own seed, printed on failure; `VWED_FUZZ_SEED=N` replays one case (JSON
//! mutation cases have even seeds, text cases odd ones). Runs stop after `CASES` or `TIME_MAX`.

use serde_json::{json, Map, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};
use vwed::flow::compile::{compile, Severity};
use vwed::flow::load::{load_text, load_value, LoadError, RawDefinition};
use vwed::limits::{BLOCK_DEPTH_MAX, FLOW_BLOCKS_MAX};

const CASES: u64 = 6_000;
const TIME_MAX: Duration = Duration::from_secs(4);

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The definition files, as JSON with every string `detail` parsed (so mutations reach inside).
fn corpus() -> Vec<(String, String, Value)> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let mut out = Vec::new();
    for dir in ["corpus/defs", "docs/wind-task-examples"] {
        let mut paths: Vec<_> = std::fs::read_dir(shared.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut value: Value = serde_json::from_str(&text).unwrap();
            parse_details(&mut value);
            out.push((path.display().to_string(), text, value));
        }
    }
    assert!(
        out.len() >= 20,
        "corpus not found under {}",
        shared.display()
    );
    out
}

fn parse_details(value: &mut Value) {
    let items: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        other => vec![other],
    };
    for item in items {
        if let Some(detail) = item.get_mut("detail") {
            if let Some(parsed) = detail.as_str().and_then(|s| serde_json::from_str(s).ok()) {
                *detail = parsed;
            }
        }
    }
}

/// Paths (object keys and array indices) of every node under `root`, without recursion.
fn paths(root: &Value) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut stack: Vec<(Vec<Value>, &Value)> = vec![(Vec::new(), root)];
    while let Some((path, node)) = stack.pop() {
        match node {
            Value::Object(map) => {
                for (k, v) in map {
                    let mut p = path.clone();
                    p.push(Value::from(k.as_str()));
                    stack.push((p, v));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let mut p = path.clone();
                    p.push(Value::from(i));
                    stack.push((p, v));
                }
            }
            _ => {}
        }
        out.push(path);
    }
    out
}

fn node_mut<'a>(root: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(root, |node, seg| match seg {
        Value::String(k) => &mut node[k.as_str()],
        other => &mut node[other.as_u64().unwrap() as usize],
    })
}

const TOKENS: &[&str] = &[
    "blocks.",
    "b1",
    ".",
    "task.variables.",
    "taskInputs.",
    "x",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "'a'",
    "\"s\"",
    "1",
    "-",
    "+",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "!",
    "?",
    ":",
    ",",
    "null",
    "empty",
    "true",
    "size()",
    ".?",
    "\\",
    "'",
    "0x",
    "1e309",
    " ",
];

fn random_text(rng: &mut Rng) -> String {
    (0..rng.below(40))
        .map(|_| match rng.below(4) {
            0 => char::from_u32(rng.next() as u32 % 0x11_0000).unwrap_or('\u{fffd}'),
            1 => char::from(rng.below(0x80) as u8),
            _ => *rng.pick(&['a', '{', '"', '\\', '\0', 'é', '中', '\n']),
        })
        .collect()
}

fn random_value(rng: &mut Rng, not_like: &Value) -> Value {
    loop {
        let v = match rng.below(9) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => json!(rng.next() as i64),
            3 => json!(-1.5e300),
            4 => Value::String(random_text(rng)),
            5 => json!([]),
            6 => json!({}),
            7 => json!({"type": "Expression", "value": expression(rng)}),
            _ => json!([{"id": rng.below(5), "blockType": "PrintBp"}]),
        };
        if std::mem::discriminant(&v) != std::mem::discriminant(not_like) || rng.below(5) == 0 {
            return v;
        }
    }
}

fn expression(rng: &mut Rng) -> String {
    (0..rng.below(30)).map(|_| *rng.pick(TOKENS)).collect()
}

/// A block nested `depth` times in `SerialFlowBp`s, ids from `base`.
fn nested(inner: Value, depth: usize, base: i64) -> Value {
    (0..depth as i64).fold(inner, |child, i| {
        json!({"id": base + i, "name": format!("b{}", base + i), "blockType": "SerialFlowBp",
            "inputParams": {}, "children": {"default": [child]}})
    })
}

/// One random structural mutation of `root`.
fn mutate(root: &mut Value, rng: &mut Rng) {
    let all = paths(root);
    let path = rng.pick(&all).clone();
    let (parent_path, last) = match path.split_last() {
        Some((last, parent)) => (parent.to_vec(), Some(last.clone())),
        None => (Vec::new(), None),
    };
    match rng.below(9) {
        0 => match (node_mut(root, &parent_path), &last) {
            (Value::Object(map), Some(Value::String(k))) => {
                map.shift_remove(k);
            }
            (Value::Array(items), Some(i)) => {
                items.remove(i.as_u64().unwrap() as usize);
            }
            _ => {}
        },
        1 => {
            let node = node_mut(root, &path);
            *node = random_value(rng, node);
        }
        2 => match node_mut(root, &path) {
            Value::Array(items) if !items.is_empty() => {
                let copy = items[rng.below(items.len())].clone();
                for _ in 0..1 + rng.below(3) {
                    items.push(copy.clone());
                }
            }
            Value::Array(_) => {}
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                entries.reverse();
                let by = rng.below(entries.len());
                entries.rotate_left(by);
                *map = entries.into_iter().collect::<Map<String, Value>>();
            }
            _ => {}
        },
        3 => {
            let node = node_mut(root, &path);
            let depth = rng.below(BLOCK_DEPTH_MAX + 8);
            *node = nested(node.take(), depth, 1000 + rng.below(100) as i64);
        }
        4 => *node_mut(root, &path) = Value::String("é".repeat(rng.below(80_000))),
        5 => {
            let node = node_mut(root, &path);
            if node.is_number() || node.is_boolean() {
                *node = Value::String(node.to_string());
            } else if let Some(s) = node.as_str() {
                *node = s.parse::<f64>().map(Value::from).unwrap_or(Value::Null);
            }
        }
        6 => *node_mut(root, &path) = Value::String(expression(rng)),
        7 => {
            let node = node_mut(root, &path);
            if let Value::String(s) = node {
                let at = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).count();
                let mut chars: Vec<char> = s.chars().collect();
                chars.insert(
                    rng.below(at),
                    rng.pick(&['\0', '\u{202e}', '"', '\u{ffff}']).to_owned(),
                );
                *s = chars.into_iter().collect::<String>() + &random_text(rng);
            }
        }
        _ => {
            // Turn a parsed `detail` back into a string, as `.task` files write it.
            if let Some(detail) = node_mut(root, &parent_path).get_mut("detail") {
                *detail = Value::String(detail.to_string());
            }
        }
    }
}

/// Compiles what loaded and checks the outcome's invariants.
fn check(loaded: Vec<Result<RawDefinition, LoadError>>, seed: u64) {
    for raw in loaded.into_iter().flatten() {
        let compiled = compile(&raw);
        let errors = compiled
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        match &compiled.flow {
            None => assert!(errors > 0, "case {seed}: no flow and no error diagnostic"),
            Some(flow) => {
                assert_eq!(errors, 0, "case {seed}: a flow despite errors");
                assert!(
                    flow.blocks.len() <= FLOW_BLOCKS_MAX,
                    "case {seed}: too many blocks"
                );
                let deepest = flow.blocks.iter().map(|b| b.depth).max().unwrap_or(0);
                assert!(
                    deepest as usize <= BLOCK_DEPTH_MAX,
                    "case {seed}: depth {deepest}"
                );
            }
        }
    }
}

fn json_case(corpus: &[(String, String, Value)], seed: u64) {
    let mut rng = Rng(seed);
    let (name, _, value) = rng.pick(corpus);
    let mut value = value.clone();
    for _ in 0..1 + rng.below(4) {
        mutate(&mut value, &mut rng);
    }
    let shown = value.to_string();
    let result = catch_unwind(AssertUnwindSafe(|| check(load_value(value, "fuzz"), seed)));
    if let Err(e) = result {
        let cut: String = shown.chars().take(2_000).collect();
        panic!("case {seed} ({name}) panicked: {e:?}\ninput: {cut}");
    }
}

fn text_case(corpus: &[(String, String, Value)], seed: u64) {
    let mut rng = Rng(seed);
    let (name, text, _) = rng.pick(corpus);
    let mut bytes = text.as_bytes().to_vec();
    match rng.below(3) {
        0 => bytes.truncate(rng.below(bytes.len() + 1)),
        1 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
        }
        _ => bytes = (0..rng.below(512)).map(|_| rng.next() as u8).collect(),
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let result = catch_unwind(AssertUnwindSafe(|| check(load_text(&text, "fuzz"), seed)));
    if let Err(e) = result {
        panic!("case {seed} ({name}) panicked on text: {e:?}\ninput: {text:?}");
    }
}

fn run_case(corpus: &[(String, String, Value)], seed: u64) {
    if seed % 2 == 0 {
        json_case(corpus, seed)
    } else {
        text_case(corpus, seed)
    }
}

#[test]
fn mutated_definitions_load_and_compile_without_panics() {
    let corpus = corpus();
    if let Some(seed) = std::env::var("VWED_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return run_case(&corpus, seed);
    }
    let start = Instant::now();
    let mut cases = 0;
    while cases < CASES && start.elapsed() < TIME_MAX {
        run_case(&corpus, cases);
        cases += 1;
    }
    assert!(cases >= 500, "only {cases} cases in {TIME_MAX:?}");
}
