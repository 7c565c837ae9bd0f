//! The expression language of `Expression` parameters (spec §2.3–2.6): a bounded MVEL subset,
//! parsed once when a definition is compiled and evaluated against a [`Scope`] of borrowed maps.
//!
//! - [`lexer`] and [`parser`] turn text into a syntax tree; everything outside the subset of
//!   spec §2.4 (assignment, statements, `new`, `in`, projections, unknown names and methods,
//!   wrong helper argument counts) is a [`ParseError`]. Text size and nesting depth are bounded
//!   by `EXPR_TEXT_BYTES_MAX` and `EXPR_DEPTH_MAX`.
//! - [`eval`] and [`ops`] evaluate with the operator rules of spec §2.5; steps, produced string
//!   bytes and produced collection sizes are bounded by `EXPR_STEPS_MAX`,
//!   `EXPR_STRING_BYTES_MAX` and `EXPR_COLLECTION_ITEMS_MAX`. Non-finite doubles are errors.
//! - [`functions`] and [`string_utils`] (static helpers), [`methods`] (instance methods) and
//!   [`regex`] (the subset `String.split` accepts).
//!
//! Choices where the spec leaves room:
//! - `System.currentTimeMillis()` never reads the clock (the engine is deterministic): it returns
//!   the Int `task.nowMs` when the caller put one in the task map, and is an evaluation error
//!   otherwise.
//! - A `.?` step that finds nothing (null receiver, missing key, null value) ends the whole path
//!   with null, so `blocks.?b1.siteId` is null before `b1` ran (MVEL's `user.?manager.name`).
//! - `1d`/`1D` is a Double (Java), `1l`/`1L` an Int; `empty` reads as `""` outside `==`/`!=`.
//! - `&&`, `||`, `!` and `?:` accept the Strings "true"/"false" ignoring case.

mod eval;
mod functions;
mod lexer;
mod methods;
mod ops;
mod parser;
mod regex;
mod string_utils;
#[cfg(test)]
mod syntax_tests;
#[cfg(test)]
mod tests;

use crate::value::{Map, Value};
use parser::{Node, Root, Seg};

/// Names an expression is evaluated against (spec §2.3). `task` holds the task fields other than
/// variables: id, defLabel, createdOn, status, taskRecordId, priority; `task.variables` resolves to
/// `variables`.
pub struct Scope<'a> {
    pub task_inputs: &'a Map,
    pub blocks: &'a Map,
    pub variables: &'a Map,
    pub task: &'a Map,
}

/// A parsed expression; parsed once at compile time, it keeps its source text.
#[derive(Debug, Clone)]
pub struct Expr {
    text: String,
    root: Node,
}

/// The text is not a valid expression of the supported subset.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    /// Byte offset into the expression text.
    pub offset: usize,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// Evaluation failed; the message is self-contained (the caller adds block, parameter, text).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub message: String,
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

impl Expr {
    /// Parses `text` (already trimmed by the caller, spec §2.1).
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        let root = parser::parse(text)?;
        Ok(Expr {
            text: text.to_string(),
            root,
        })
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates against `scope`; the result keeps its type.
    pub fn eval(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        eval::evaluate(&self.root, scope)
    }

    /// Names X of every static `blocks.X` (and `blocks.?X`, `blocks['X']` with a literal) read
    /// by the expression, in source order.
    pub fn block_refs(&self) -> Vec<&str> {
        let mut out = Vec::new();
        visit(&self.root, &mut |node| {
            if let Node::Path { base, segs } = node {
                if matches!(**base, Node::Root(Root::Blocks)) {
                    out.extend(segs.first().and_then(static_name));
                }
            }
        });
        out
    }

    /// Names V of every static `task.variables.V` read.
    pub fn variable_refs(&self) -> Vec<&str> {
        let mut out = Vec::new();
        visit(&self.root, &mut |node| {
            if let Node::Path { base, segs } = node {
                let is_vars = segs.first().and_then(static_name) == Some("variables");
                if matches!(**base, Node::Root(Root::Task)) && is_vars {
                    out.extend(segs.get(1).and_then(static_name));
                }
            }
        });
        out
    }

    /// True when the expression is a literal constant (no names), e.g. `true`, `"x"`, `[1, 2]`,
    /// `1 + 2`. A call on a class receiver (`Math.max(1, 2)`) counts as a name.
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        visit(&self.root, &mut |node| {
            if matches!(node, Node::Root(_) | Node::Static { .. }) {
                constant = false;
            }
        });
        constant
    }
}

/// The member name a path step reads statically: `.X`, `.?X` or `['X']`.
fn static_name(seg: &Seg) -> Option<&str> {
    match seg {
        Seg::Field { name, .. } => Some(name),
        Seg::Index(Node::Lit(Value::String(name))) => Some(name),
        _ => None,
    }
}

/// Calls `f` on every node in source order (pre-order). Recursion depth is bounded by the
/// parser's depth limit.
fn visit<'n>(node: &'n Node, f: &mut dyn FnMut(&'n Node)) {
    f(node);
    match node {
        Node::Lit(_) | Node::Empty | Node::Root(_) => {}
        Node::Path { base, segs } => {
            visit(base, f);
            for seg in segs {
                match seg {
                    Seg::Field { .. } => {}
                    Seg::Index(index) => visit(index, f),
                    Seg::Method { args, .. } => args.iter().for_each(|a| visit(a, f)),
                }
            }
        }
        Node::Static { args, .. } | Node::List(args) | Node::And(args) | Node::Or(args) => {
            args.iter().for_each(|a| visit(a, f));
        }
        Node::Map(entries) => entries.iter().for_each(|(k, v)| {
            visit(k, f);
            visit(v, f);
        }),
        Node::Neg(inner) | Node::Not(inner) => visit(inner, f),
        Node::Chain { first, rest } => {
            visit(first, f);
            rest.iter().for_each(|(_, n)| visit(n, f));
        }
        Node::Ternary(parts) => parts.iter().for_each(|p| visit(p, f)),
    }
}
