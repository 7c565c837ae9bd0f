//! The validated form of a definition: a flat arena of blocks with parsed parameters, built by
//! [`super::compile`]. Engine and scheduler work only with these types, never with raw JSON.

use crate::blocks::KindSpec;
use crate::flow::expr::Expr;
use crate::value::Value;

/// Index of a block in [`Flow::blocks`]; the root block is index 0.
pub type BlockIdx = u32;

/// The branches a block can have (spec §1.6), in a fixed order so a block's children can be kept
/// in a small array indexed by branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Branch {
    Default = 0,
    If = 1,
    ElseIf = 2,
    Else = 3,
    Try = 4,
    Catch = 5,
}

/// Number of [`Branch`] variants.
pub const BRANCH_COUNT: usize = 6;

impl Branch {
    /// Every branch, in index order.
    pub const ALL: [Branch; BRANCH_COUNT] = [
        Branch::Default,
        Branch::If,
        Branch::ElseIf,
        Branch::Else,
        Branch::Try,
        Branch::Catch,
    ];

    /// The key of this branch in a block's `children` object.
    pub fn key(self) -> &'static str {
        match self {
            Branch::Default => "default",
            Branch::If => "if",
            Branch::ElseIf => "else_if",
            Branch::Else => "else",
            Branch::Try => "try",
            Branch::Catch => "catch",
        }
    }

    /// The branch for a `children` key, if it is one.
    pub fn from_key(key: &str) -> Option<Branch> {
        Branch::ALL.into_iter().find(|b| b.key() == key)
    }
}

/// How a parameter's value is produced at block start (spec §2.1).
#[derive(Debug, Clone)]
pub enum ParamSource {
    /// Absent, JSON null, empty after trimming, or an unknown kind: the value is null.
    Null,
    /// A `Simple` value: the trimmed string.
    Simple(String),
    /// An `Expression`, parsed once at compile time.
    Expr(Expr),
    /// A `Key-Value` list: entries whose key or value text starts with `=` are expressions.
    KeyValue(Vec<KvEntry>),
}

/// One entry of a `Key-Value` parameter.
#[derive(Debug, Clone)]
pub struct KvEntry {
    pub key: KvPart,
    pub value: KvPart,
    /// The third field: `"object"` parses the value as a JSON object.
    pub object: bool,
}

/// A key or value of a `Key-Value` entry: literal text or an expression (text after `=`).
#[derive(Debug, Clone)]
pub enum KvPart {
    Literal(Value),
    Expr(Expr),
}

/// One parameter of a block, as given in the definition.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub source: ParamSource,
}

/// One block of a validated flow.
#[derive(Debug, Clone)]
pub struct Block {
    pub id: i64,
    pub name: String,
    /// The block type as written (for `SubTask::<id>` the full text).
    pub block_type: String,
    pub kind: &'static KindSpec,
    pub params: Vec<Param>,
    /// Children per branch, indexed by `Branch as usize`; a missing branch is empty (§8 Q1).
    pub children: [Vec<BlockIdx>; BRANCH_COUNT],
    pub parent: Option<BlockIdx>,
    pub depth: u32,
    pub remark: Option<String>,
}

impl Block {
    /// The children of one branch.
    pub fn branch(&self, branch: Branch) -> &[BlockIdx] {
        &self.children[branch as usize]
    }

    /// The parameter named `name`, if the definition gives it.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// A declared global input (`detail.inputParams`, spec §1.4).
#[derive(Debug, Clone)]
pub struct InputDecl {
    pub name: String,
    pub type_name: String,
    pub default_value: Value,
    /// The whole declared entry as written, stored with each run (§1.4 step 5).
    pub raw: Value,
}

/// Which terminal states release the sites a run still holds (spec §4.9, §8 Q15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleasePolicy {
    /// RDS: release on stop, error and manual end only when `releaseSites` is true.
    Rds { release_sites: bool },
    /// Stricter vwed option: release on every end, normal end included.
    Always,
}

impl ReleasePolicy {
    /// The policy a definition's `releaseSites` and `releasePolicy: "always"` name.
    pub fn from_flags(release_sites: bool, release_always: bool) -> ReleasePolicy {
        if release_always {
            ReleasePolicy::Always
        } else {
            ReleasePolicy::Rds { release_sites }
        }
    }

    /// Whether a run that ended with `code` (`manual_end` for a manual end) releases every
    /// site it still holds. RDS (§4.9): with `releaseSites`, on stop, error and manual end,
    /// never on a normal end; `Always` also on a normal end. Interrupted runs are not ended and
    /// keep their locks (a retry needs them).
    pub fn releases(self, code: i32, manual_end: bool) -> bool {
        use crate::engine::code;
        match self {
            ReleasePolicy::Always => true,
            ReleasePolicy::Rds { release_sites } => {
                release_sites && (manual_end || code == code::STOPPED || code == code::FAILED)
            }
        }
    }
}

/// Periodic start settings (spec §4.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    pub enabled: bool,
    pub period_ms: i64,
    pub delay_ms: i64,
}

/// A validated definition, ready to run.
#[derive(Debug, Clone)]
pub struct Flow {
    pub id: String,
    pub label: String,
    pub version: i64,
    pub inputs: Vec<InputDecl>,
    /// Block arena; index 0 is the root.
    pub blocks: Vec<Block>,
    pub periodic: Option<Periodic>,
    pub release: ReleasePolicy,
    /// Some block is a site block: steps keep the site wait queue's rows.
    pub uses_sites: bool,
    /// Some block is a robot block: an ended run's fleet orders are terminated.
    pub uses_robots: bool,
}

impl Flow {
    /// The block at `idx`.
    pub fn block(&self, idx: BlockIdx) -> &Block {
        &self.blocks[idx as usize]
    }

    /// Whether block `target` lies under block `ancestor` (any branch, any depth).
    pub fn is_descendant(&self, target: BlockIdx, ancestor: BlockIdx) -> bool {
        let mut cur = self.block(target).parent;
        while let Some(p) = cur {
            if p == ancestor {
                return true;
            }
            cur = self.block(p).parent;
        }
        false
    }

    /// The index of the block named `name`, compared ignoring case (as `SkipToComponent` does).
    pub fn find_by_name_ignore_case(&self, name: &str) -> Option<BlockIdx> {
        self.blocks
            .iter()
            .position(|b| b.name.eq_ignore_ascii_case(name))
            .map(|i| i as BlockIdx)
    }
}

#[cfg(test)]
mod release_tests {
    use super::ReleasePolicy;
    use crate::engine::code;

    #[test]
    fn release_policy_on_every_terminal_state() {
        let ends = [
            (code::FINISHED, false),
            (code::FINISHED, true),
            (code::STOPPED, false),
            (code::FAILED, false),
        ];
        let table = [
            (
                ReleasePolicy::Rds {
                    release_sites: false,
                },
                [false, false, false, false],
            ),
            (
                ReleasePolicy::Rds {
                    release_sites: true,
                },
                [false, true, true, true],
            ),
            (ReleasePolicy::Always, [true, true, true, true]),
        ];
        for (policy, want) in table {
            for ((code, manual), want) in ends.iter().zip(want) {
                assert_eq!(
                    policy.releases(*code, *manual),
                    want,
                    "{policy:?} {code} {manual}"
                );
            }
        }
    }
}
