//! Whole-flow checks that need the finished block arena (spec §1.7 warnings): `blocks.X` and
//! `task.variables.V` read where nothing can have produced them yet, `WhileBp` loops that can
//! never end, and `BreakBp` outside a loop. All walks are iterative.

use super::compile::Diags;
use super::model::{Block, BlockIdx, ParamSource};
use std::collections::HashSet;

const LOOPS: &[&str] = &[
    "WhileBp",
    "RepeatNumBp",
    "IterateListBp",
    "ParallelRepeatNBp",
];
const PARALLEL: &[&str] = &["ParallelFlowBp", "ParallelRepeatNBp"];
/// Containers that set their own outputs before running their children (spec §1.7).
const EARLY_OUTPUTS: &[&str] = &[
    "WhileBp",
    "RepeatNumBp",
    "IterateListBp",
    "TryCatchBp",
    "CSelectAgvBp",
];
/// Blocks that may set any task variable (the name is not known before the run).
const DYNAMIC_SETTERS: &[&str] = &["ScriptBp", "ScriptVariablesBp", "SetTaskVariablesBp"];
const LOOP_EXITS: &[&str] = &["BreakBp", "ReturnBp", "ThrowExceptionBp", "MarkTaskEndBp"];

struct Tree<'a> {
    blocks: &'a [Block],
    /// Pre-order position of every block (document order).
    pre: Vec<usize>,
}

impl<'a> Tree<'a> {
    fn new(blocks: &'a [Block]) -> Tree<'a> {
        let mut pre = vec![0; blocks.len()];
        let mut stack: Vec<BlockIdx> = vec![0];
        let mut n = 0;
        while let Some(i) = stack.pop() {
            pre[i as usize] = n;
            n += 1;
            for branch in blocks[i as usize].children.iter().rev() {
                stack.extend(branch.iter().rev());
            }
        }
        Tree { blocks, pre }
    }

    fn kind(&self, i: BlockIdx) -> &str {
        self.blocks[i as usize].kind.name
    }

    fn ancestors(&self, i: BlockIdx) -> impl Iterator<Item = BlockIdx> + '_ {
        std::iter::successors(self.blocks[i as usize].parent, |&p| {
            self.blocks[p as usize].parent
        })
    }

    fn is_descendant(&self, x: BlockIdx, of: BlockIdx) -> bool {
        self.ancestors(x).any(|a| a == of)
    }

    /// The lowest common ancestor of two different blocks.
    fn lca(&self, a: BlockIdx, b: BlockIdx) -> BlockIdx {
        let mine: HashSet<BlockIdx> = std::iter::once(a).chain(self.ancestors(a)).collect();
        std::iter::once(b)
            .chain(self.ancestors(b))
            .find(|x| mine.contains(x))
            .unwrap_or(0)
    }

    fn in_shared_loop(&self, lca: BlockIdx) -> bool {
        std::iter::once(lca)
            .chain(self.ancestors(lca))
            .any(|a| LOOPS.contains(&self.kind(a)))
    }

    /// Whether block `x` can have produced outputs before block `b` starts.
    fn can_run_before(&self, x: BlockIdx, b: BlockIdx) -> bool {
        if x == b {
            return self.ancestors(b).any(|a| LOOPS.contains(&self.kind(a)));
        }
        if self.is_descendant(b, x) {
            return EARLY_OUTPUTS.contains(&self.kind(x)) || self.in_shared_loop(x);
        }
        if self.is_descendant(x, b) {
            return LOOPS.contains(&self.kind(b)) || self.in_shared_loop(b);
        }
        let lca = self.lca(x, b);
        if PARALLEL.contains(&self.kind(lca)) || self.in_shared_loop(lca) {
            return true;
        }
        let exclusive = matches!(self.kind(lca), "IfElseBp" | "IfElseIfBp");
        let different_branch = exclusive && {
            let branch_of = |n: BlockIdx| {
                let child = std::iter::once(n)
                    .chain(self.ancestors(n))
                    .find(|&a| self.blocks[a as usize].parent == Some(lca));
                self.blocks[lca as usize]
                    .children
                    .iter()
                    .position(|c| child.is_some_and(|ch| c.contains(&ch)))
            };
            branch_of(x) != branch_of(b)
        };
        !different_branch && self.pre[x as usize] < self.pre[b as usize]
    }

    /// Whether two blocks can run at the same time (different branches of a parallel block).
    fn concurrent(&self, x: BlockIdx, b: BlockIdx) -> bool {
        x != b
            && !self.is_descendant(x, b)
            && !self.is_descendant(b, x)
            && PARALLEL.contains(&self.kind(self.lca(x, b)))
    }
}

/// Runs every whole-flow check.
pub(super) fn check(blocks: &[Block], diags: &mut Diags) {
    let tree = Tree::new(blocks);
    let setters = Setters::collect(blocks);
    for (i, block) in blocks.iter().enumerate() {
        let i = i as BlockIdx;
        for param in &block.params {
            for expr in exprs(&param.source) {
                for name in expr.block_refs() {
                    block_ref(&tree, i, name, &param.name, diags);
                }
                for var in expr.variable_refs() {
                    variable_ref(&tree, &setters, i, var, &param.name, diags);
                }
            }
        }
        match block.kind.name {
            "WhileBp" => while_can_end(&tree, &setters, i, diags),
            "BreakBp" => break_in_loop(&tree, i, diags),
            "BatchSettingSiteBp" => batch_targets(block, diags),
            "CAgvOperationBp" | "CAgvSendOperationBp" => {
                inside_order(&tree, i, diags);
                operation_known(block, diags);
            }
            "CAgvMonitorOperationBp" => inside_order(&tree, i, diags),
            "CSelectAgvBp" => select_priority(block, diags),
            _ => {}
        }
    }
}

fn exprs(source: &ParamSource) -> Vec<&super::expr::Expr> {
    match source {
        ParamSource::Expr(e) => vec![e],
        ParamSource::KeyValue(entries) => entries
            .iter()
            .flat_map(|e| [&e.key, &e.value])
            .filter_map(|p| match p {
                super::model::KvPart::Expr(e) => Some(e),
                super::model::KvPart::Literal(_) => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn block_ref(tree: &Tree<'_>, at: BlockIdx, name: &str, param: &str, diags: &mut Diags) {
    let block = &tree.blocks[at as usize];
    let Some(x) = tree.blocks.iter().position(|b| b.name == name) else {
        let msg = format!("reads blocks.{name}, but there is no block named {name}");
        diags.warn(Some(block), Some(param), msg);
        return;
    };
    if !tree.can_run_before(x as BlockIdx, at) {
        let msg = format!(
            "reads blocks.{name} where {name} cannot have run yet (the read fails at run time)"
        );
        diags.warn(Some(block), Some(param), msg);
    }
}

/// Which blocks set which task variables.
struct Setters {
    named: Vec<(String, BlockIdx)>,
    dynamic: Vec<BlockIdx>,
}

impl Setters {
    fn collect(blocks: &[Block]) -> Setters {
        let mut named = Vec::new();
        let mut dynamic = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let i = i as BlockIdx;
            if DYNAMIC_SETTERS.contains(&b.kind.name) {
                dynamic.push(i);
            } else if b.kind.name == "SetTaskVariableBp" {
                match b.param("varName").map(|p| &p.source) {
                    Some(ParamSource::Simple(name)) => named.push((name.clone(), i)),
                    _ => dynamic.push(i),
                }
            }
        }
        Setters { named, dynamic }
    }

    fn of<'s>(&'s self, var: &'s str) -> impl Iterator<Item = BlockIdx> + 's {
        self.named
            .iter()
            .filter(move |(n, _)| n == var)
            .map(|(_, i)| *i)
            .chain(self.dynamic.iter().copied())
    }
}

fn variable_ref(
    tree: &Tree<'_>,
    setters: &Setters,
    at: BlockIdx,
    var: &str,
    param: &str,
    diags: &mut Diags,
) {
    if setters.of(var).any(|s| tree.can_run_before(s, at)) {
        return;
    }
    let block = &tree.blocks[at as usize];
    let msg = format!(
        "reads task.variables.{var}, but no block that can run before it sets {var} \
         (the read fails at run time)"
    );
    diags.warn(Some(block), Some(param), msg);
}

fn while_can_end(tree: &Tree<'_>, setters: &Setters, w: BlockIdx, diags: &mut Diags) {
    let block = &tree.blocks[w as usize];
    let in_body = |x: BlockIdx| tree.is_descendant(x, w);
    let exits = (0..tree.blocks.len() as BlockIdx)
        .any(|x| in_body(x) && LOOP_EXITS.contains(&tree.kind(x)));
    if exits {
        return;
    }
    let changeable = match block.param("loopCondition").map(|p| &p.source) {
        Some(ParamSource::Expr(e)) => {
            e.variable_refs()
                .iter()
                .any(|v| setters.of(v).any(|s| in_body(s) || tree.concurrent(s, w)))
                || e.block_refs().iter().any(|name| {
                    tree.blocks
                        .iter()
                        .position(|b| b.name == *name)
                        .is_some_and(|x| {
                            in_body(x as BlockIdx) || tree.concurrent(x as BlockIdx, w)
                        })
                })
        }
        _ => false,
    };
    if !changeable {
        let msg = "the loop body can never change this condition and has no BreakBp or \
                   ReturnBp: the loop runs until the task is stopped"
            .to_string();
        diags.warn(Some(block), Some("loopCondition"), msg);
    }
}

fn break_in_loop(tree: &Tree<'_>, b: BlockIdx, diags: &mut Diags) {
    for a in tree.ancestors(b) {
        match tree.kind(a) {
            "WhileBp" | "IterateListBp" => return,
            "ParallelFlowBp" | "ParallelRepeatNBp" => break,
            _ => {}
        }
    }
    let msg = "BreakBp is not inside a WhileBp or IterateListBp (RepeatNumBp and parallel \
               blocks do not catch it): the run will fail when it is reached"
        .to_string();
    diags.warn(Some(&tree.blocks[b as usize]), None, msg);
}

/// `BatchSettingSiteBp` with both lists empty updates every site (spec §3.7): warn unless one
/// of them is a literal non-empty list.
fn batch_targets(block: &Block, diags: &mut Diags) {
    let listed = |name: &str| {
        matches!(block.param(name).map(|p| &p.source), Some(ParamSource::Simple(s))
            if serde_json::from_str::<serde_json::Value>(s)
                .is_ok_and(|v| v.as_array().is_some_and(|a| !a.is_empty())))
    };
    if !listed("siteIds") && !listed("groupNames") {
        let msg = "siteIds and groupNames may both be empty: then every site is updated".into();
        diags.warn(Some(block), Some("siteIds"), msg);
    }
}

/// `CAgvOperationBp` (and the send and monitor variants) act on the order of an enclosing
/// `CSelectAgvBp`; outside one there is no order (RDS sends `id: null` and fails at run time;
/// spec §3.8 **Engine:** reject).
fn inside_order(tree: &Tree<'_>, b: BlockIdx, diags: &mut Diags) {
    if tree.ancestors(b).any(|a| tree.kind(a) == "CSelectAgvBp") {
        return;
    }
    let msg = format!(
        "{} must be inside a CSelectAgvBp (it acts on that order)",
        tree.kind(b)
    );
    diags.error(Some(&tree.blocks[b as usize]), None, msg);
}

/// A literal `scriptName` must be an operation of the catalog (`assets/rbk-scripts.json`) or a
/// robot script (`*.py`); RDS would fail the block at run time.
fn operation_known(block: &Block, diags: &mut Diags) {
    if let Some(ParamSource::Simple(name)) = block.param("scriptName").map(|p| &p.source) {
        if !crate::blocks::known_operation(name) {
            let msg = format!("unknown operation {name}: not in the operation catalog");
            diags.error(Some(block), Some("scriptName"), msg);
        }
    }
}

/// `CSelectAgvBp` sets the task's priority to its own `priority`, 1 when absent (RDS, kept:
/// spec §8 Q20): say so when the parameter is missing.
fn select_priority(block: &Block, diags: &mut Diags) {
    if block
        .param("priority")
        .is_none_or(|p| matches!(p.source, ParamSource::Null))
    {
        let msg = "no priority: the task's priority becomes 1 when this block starts (as in RDS)";
        diags.warn(Some(block), Some("priority"), msg.into());
    }
}
