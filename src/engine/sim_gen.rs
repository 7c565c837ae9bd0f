//! Random but valid flows for the engine simulation (`sim_tests`): block trees of every runnable
//! control and data kind, at most `DEPTH_MAX` deep and `BLOCKS_MAX` blocks, from a seed.
//!
//! Loops always end: a `WhileBp` either counts with its own variable (reset just before it,
//! incremented as the last block of its body) or ends its body with a `BreakBp`. Because a
//! pending `SkipToComponent` target skips every block until it is reached — an increment
//! included — jumps are generated only outside loops and parallel blocks, and only to a later
//! sibling, which is always reached.

use serde_json::{json, Map, Value};

/// Nesting depth of the generated blocks (the root's children are at depth 1).
pub(super) const DEPTH_MAX: u32 = 6;
/// Blocks per generated flow, the root excluded.
pub(super) const BLOCKS_MAX: usize = 40;
/// Loops nested in one another, to keep the runs short.
const LOOPS_NESTED_MAX: u32 = 2;

/// splitmix64: small, seedable and good enough to pick test cases.
pub(super) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` times out of 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One generated block before it becomes JSON.
struct Node {
    id: i64,
    ty: &'static str,
    params: Value,
    branches: Vec<(&'static str, Vec<Node>)>,
}

impl Node {
    fn to_json(&self) -> Value {
        let children: Map<String, Value> = self
            .branches
            .iter()
            .map(|(key, nodes)| {
                let items = nodes.iter().map(Node::to_json).collect();
                (key.to_string(), Value::Array(items))
            })
            .collect();
        json!({"id": self.id, "name": format!("b{}", self.id), "blockType": self.ty,
            "inputParams": self.params, "children": children})
    }
}

/// Where a block is generated.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    depth: u32,
    parallel: bool,
    loops: u32,
}

impl Ctx {
    fn inner(self) -> Ctx {
        Ctx {
            depth: self.depth + 1,
            ..self
        }
    }

    fn in_loop(self) -> Ctx {
        Ctx {
            loops: self.loops + 1,
            ..self.inner()
        }
    }

    fn in_parallel(self) -> Ctx {
        Ctx {
            parallel: true,
            ..self.inner()
        }
    }
}

fn simple(v: impl ToString) -> Value {
    json!({"type": "Simple", "value": v.to_string()})
}

fn expr(v: impl ToString) -> Value {
    json!({"type": "Expression", "value": v.to_string()})
}

fn bool_text(rng: &mut Rng) -> &'static str {
    if rng.chance(50) {
        "true"
    } else {
        "false"
    }
}

/// The root's children of a random flow for `seed`, as block JSON.
pub(super) fn generate(seed: u64) -> Value {
    let mut gen = Gen {
        rng: Rng::new(seed),
        next_id: 1,
    };
    let top = Ctx {
        depth: 1,
        parallel: false,
        loops: 0,
    };
    let nodes = gen.list(top, 2, 8);
    Value::Array(nodes.iter().map(Node::to_json).collect())
}

struct Gen {
    rng: Rng,
    next_id: i64,
}

impl Gen {
    fn left(&self) -> usize {
        BLOCKS_MAX.saturating_sub(self.next_id as usize - 1)
    }

    fn node(&mut self, ty: &'static str, params: Value) -> Node {
        let id = self.next_id;
        self.next_id += 1;
        Node {
            id,
            ty,
            params,
            branches: Vec::new(),
        }
    }

    /// A children list of `min..=max` blocks (fewer when the block budget runs out), with the
    /// jumps in it pointed at later siblings.
    fn list(&mut self, ctx: Ctx, min: u64, max: u64) -> Vec<Node> {
        let n = self.rng.range(min, max);
        let mut nodes = Vec::new();
        for _ in 0..n {
            if self.left() == 0 {
                break;
            }
            nodes.push(self.block(ctx));
        }
        for i in 0..nodes.len() {
            if nodes[i].ty != "SkipToComponent" {
                continue;
            }
            if i + 1 < nodes.len() {
                let j = self.rng.range(i as u64 + 1, nodes.len() as u64 - 1) as usize;
                let target = format!("b{}", nodes[j].id);
                nodes[i].params = json!({"skipComponentId": simple(target)});
            } else {
                nodes[i].ty = "PrintBp";
                nodes[i].params = json!({"message": simple("no jump")});
            }
        }
        nodes
    }

    fn block(&mut self, ctx: Ctx) -> Node {
        let room = ctx.depth < DEPTH_MAX && self.left() >= 6;
        if room && self.rng.chance(50) {
            self.container(ctx)
        } else {
            self.leaf(ctx)
        }
    }

    fn leaf(&mut self, ctx: Ctx) -> Node {
        let r = self.rng.below(100);
        let id = self.next_id;
        let var = format!("v{}", self.rng.range(1, 3));
        let key = format!("k{}", self.rng.range(1, 3));
        let jump_ok = !ctx.parallel && ctx.loops == 0;
        let (ty, params) = match r {
            0..=11 => ("PrintBp", json!({"message": simple(format!("m{id}"))})),
            12..=16 => (
                "PrintBp",
                json!({"message": expr(format!("'p{id}=' + task.variables.?{var}"))}),
            ),
            17..=21 => (
                "SetTaskVariableBp",
                json!({"varName": simple(&var), "varValue": simple(format!("x{id}"))}),
            ),
            22..=26 => (
                "SetTaskVariableBp",
                json!({"varName": simple(&var), "varValue": expr(format!("{id} + 1"))}),
            ),
            27..=49 => (
                "DelayBp",
                json!({"timeMillis": simple(self.rng.range(0, 500))}),
            ),
            50..=54 => ("TaskStateBp", json!({"stateMsg": simple(format!("s{id}"))})),
            55..=61 => (
                "CacheDataBp",
                json!({"key": simple(&key), "value": simple(format!("c{id}"))}),
            ),
            62..=66 => ("GetCacheDataBp", json!({"key": simple(&key)})),
            67..=68 => (
                "StringToJsonArrayBp",
                json!({"convertString": simple("{}")}),
            ),
            69 => (
                "ThrowExceptionBp",
                json!({"message": simple(format!("t{id}"))}),
            ),
            70..=71 => ("BreakBp", json!({})),
            72 => ("ReturnBp", json!({})),
            73..=84 if ctx.parallel => ("StopOtherBranch", json!({})),
            85..=94 if jump_ok => ("SkipToComponent", json!({})),
            _ => ("PrintBp", json!({"message": simple(format!("m{id}"))})),
        };
        self.node(ty, params)
    }

    fn container(&mut self, ctx: Ctx) -> Node {
        let loop_ok = ctx.loops < LOOPS_NESTED_MAX;
        match self.rng.below(10) {
            1 => self.parallel(ctx),
            2 => self.conditional(ctx),
            3 => self.if_else(ctx, false),
            4 => self.if_else(ctx, true),
            5 if loop_ok && ctx.depth + 2 <= DEPTH_MAX => self.while_loop(ctx),
            6 if loop_ok => self.repeat(ctx, "RepeatNumBp", 5),
            7 if loop_ok => self.repeat(ctx, "ParallelRepeatNBp", 4),
            8 if loop_ok => self.iterate(ctx),
            9 => self.try_catch(ctx),
            _ => {
                let mut node = self.node("SerialFlowBp", json!({}));
                node.branches = vec![("default", self.list(ctx.inner(), 1, 4))];
                node
            }
        }
    }

    fn parallel(&mut self, ctx: Ctx) -> Node {
        let mut node = self.node("ParallelFlowBp", json!({}));
        node.branches = vec![("default", self.list(ctx.in_parallel(), 1, 3))];
        node
    }

    fn conditional(&mut self, ctx: Ctx) -> Node {
        let condition = bool_text(&mut self.rng);
        let mut node = self.node("IfBp", json!({"condition": simple(condition)}));
        node.branches = vec![("default", self.list(ctx.inner(), 1, 3))];
        node
    }

    fn if_else(&mut self, ctx: Ctx, else_if: bool) -> Node {
        let first = bool_text(&mut self.rng);
        let mut node = if else_if {
            let second = bool_text(&mut self.rng);
            let params = json!({"conditionIf": simple(first), "conditionElseIf": simple(second)});
            self.node("IfElseIfBp", params)
        } else {
            self.node("IfElseBp", json!({"conditionIf": simple(first)}))
        };
        node.branches.push(("if", self.list(ctx.inner(), 0, 2)));
        if else_if {
            node.branches
                .push(("else_if", self.list(ctx.inner(), 0, 2)));
        }
        node.branches.push(("else", self.list(ctx.inner(), 0, 2)));
        node
    }

    /// `SerialFlowBp[set w=0, WhileBp(w < n){ body, set w=w+1 }]`, or a `WhileBp(true)` whose
    /// body ends with `BreakBp`.
    fn while_loop(&mut self, ctx: Ctx) -> Node {
        let mut params = json!({"retryPeriod": simple(self.rng.range(0, 300))});
        if self.rng.chance(30) {
            params["runOnce"] = simple(bool_text(&mut self.rng));
        }
        if self.rng.chance(30) {
            params["loopCondition"] = simple("true");
            let mut node = self.node("WhileBp", params);
            let mut body = self.list(ctx.in_loop(), 0, 2);
            body.push(self.node("BreakBp", json!({})));
            node.branches = vec![("default", body)];
            return node;
        }
        let mut serial = self.node("SerialFlowBp", json!({}));
        let counter = format!("w{}", self.next_id + 1);
        let reset = json!({"varName": simple(&counter), "varValue": expr("0")});
        let reset = self.node("SetTaskVariableBp", reset);
        let rounds = self.rng.range(0, 3);
        params["loopCondition"] = expr(format!("task.variables.{counter} < {rounds}"));
        let mut node = self.node("WhileBp", params);
        let mut body = self.list(ctx.inner().in_loop(), 0, 2);
        let step = json!({"varName": simple(&counter),
            "varValue": expr(format!("task.variables.{counter} + 1"))});
        body.push(self.node("SetTaskVariableBp", step));
        node.branches = vec![("default", body)];
        serial.branches = vec![("default", vec![reset, node])];
        serial
    }

    fn repeat(&mut self, ctx: Ctx, ty: &'static str, max: u64) -> Node {
        let num = self.rng.range(0, max);
        let mut node = self.node(ty, json!({"num": simple(num)}));
        let inner = if ty == "ParallelRepeatNBp" {
            ctx.in_loop().in_parallel()
        } else {
            ctx.in_loop()
        };
        node.branches = vec![("default", self.list(inner, 1, 3))];
        node
    }

    fn iterate(&mut self, ctx: Ctx) -> Node {
        let items: Vec<u64> = (0..self.rng.range(0, 3)).collect();
        let list = serde_json::to_string(&items).expect("a list of numbers");
        let list = if self.rng.chance(50) {
            simple(list)
        } else {
            expr(list)
        };
        let mut node = self.node("IterateListBp", json!({"list": list}));
        node.branches = vec![("default", self.list(ctx.in_loop(), 1, 3))];
        node
    }

    fn try_catch(&mut self, ctx: Ctx) -> Node {
        let mut params = json!({});
        if self.rng.chance(70) {
            params["swallowError"] = simple(bool_text(&mut self.rng));
        }
        if self.rng.chance(40) {
            params["ignoreAbort"] = simple(bool_text(&mut self.rng));
        }
        let mut node = self.node("TryCatchBp", params);
        node.branches = vec![
            ("try", self.list(ctx.inner(), 1, 3)),
            ("catch", self.list(ctx.inner(), 0, 2)),
        ];
        node
    }
}
