//! Recursive-descent parser of the expression grammar (spec §2.4) into a bounded syntax tree.
//!
//! Chains of one precedence level (`a + b - c`, `a && b && c`) and postfix chains (`a.b[0].c()`)
//! are stored flat, so the tree is only as deep as the nesting of parentheses, sub-expressions
//! and unary operators; that nesting is what [`EXPR_DEPTH_MAX`] bounds, and evaluation recurses
//! no deeper than the parser did.

use super::functions::{self, StaticDef};
use super::lexer::{tokenize, Tok, Token};
use super::methods;
use super::ParseError;
use crate::limits::{EXPR_DEPTH_MAX, EXPR_TEXT_BYTES_MAX};
use crate::value::Value;

/// The top-level names of the expression context (spec §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    TaskInputs,
    Blocks,
    Task,
}

/// A binary operator of the flat chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// One node of the syntax tree.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Lit(Value),
    /// The `empty` literal: equal to null, `""`, `[]` and `{}`; elsewhere it reads as `""`.
    Empty,
    Root(Root),
    Path {
        base: Box<Node>,
        segs: Vec<Seg>,
    },
    Static {
        def: &'static StaticDef,
        args: Vec<Node>,
    },
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    Neg(Box<Node>),
    Not(Box<Node>),
    Chain {
        first: Box<Node>,
        rest: Vec<(BinOp, Node)>,
    },
    And(Vec<Node>),
    Or(Vec<Node>),
    Ternary(Box<[Node; 3]>),
}

/// One postfix step of a path.
#[derive(Debug, Clone)]
pub(super) enum Seg {
    /// `.name` or, null-safe, `.?name`.
    Field { name: String, null_safe: bool },
    /// `[expr]`.
    Index(Node),
    /// `.name(args)` or `.?name(args)`; `name` is one of [`methods::METHODS`].
    Method {
        name: &'static str,
        args: Vec<Node>,
        null_safe: bool,
    },
}

/// Parses a whole expression.
pub(super) fn parse(text: &str) -> Result<Node, ParseError> {
    if text.len() > EXPR_TEXT_BYTES_MAX {
        return Err(ParseError {
            message: format!(
                "expression is {} bytes, more than EXPR_TEXT_BYTES_MAX ({EXPR_TEXT_BYTES_MAX})",
                text.len()
            ),
            offset: EXPR_TEXT_BYTES_MAX,
        });
    }
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    if p.peek() == &Tok::End {
        return p.fail("empty expression");
    }
    let node = p.expr(true)?;
    match p.peek() {
        Tok::End => Ok(node),
        Tok::Ident(w) if matches!(w.as_str(), "contains" | "in" | "instanceof" | "is") => {
            let message = format!("the '{w}' operator is not supported");
            p.fail(message)
        }
        Tok::Colon => p.fail("unexpected ':'; a ternary needs '?' before ':'"),
        other => {
            let message = format!(
                "unexpected {} after a complete expression",
                other.describe()
            );
            p.fail(message)
        }
    }
}

/// Words of MVEL that the supported subset leaves out.
const UNSUPPORTED_WORDS: &[&str] = &[
    "if",
    "else",
    "foreach",
    "for",
    "while",
    "do",
    "until",
    "def",
    "function",
    "new",
    "return",
    "var",
    "import",
    "switch",
    "with",
    "assert",
    "instanceof",
    "is",
    "contains",
    "in",
    "this",
];

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

const CHAIN_LEVELS: [&[(Tok, BinOp)]; 4] = [
    &[(Tok::Eq, BinOp::Eq), (Tok::Ne, BinOp::Ne)],
    &[
        (Tok::Lt, BinOp::Lt),
        (Tok::Le, BinOp::Le),
        (Tok::Gt, BinOp::Gt),
        (Tok::Ge, BinOp::Ge),
    ],
    &[(Tok::Plus, BinOp::Add), (Tok::Minus, BinOp::Sub)],
    &[
        (Tok::Star, BinOp::Mul),
        (Tok::Slash, BinOp::Div),
        (Tok::Percent, BinOp::Rem),
    ],
];

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn offset(&self) -> usize {
        self.toks[self.pos.min(self.toks.len() - 1)].offset
    }

    fn bump(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        let hit = self.peek() == tok;
        if hit {
            self.bump();
        }
        hit
    }

    /// An error at the current token; on a [`Tok::Bad`] token its own message wins.
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        let message = match self.peek() {
            Tok::Bad(own) => own.clone(),
            _ => message.into(),
        };
        Err(ParseError {
            message,
            offset: self.offset(),
        })
    }

    fn expect(&mut self, tok: &Tok, context: &str) -> Result<(), ParseError> {
        if self.eat(tok) {
            return Ok(());
        }
        let message = format!(
            "expected {} {context}, found {}",
            tok.describe(),
            self.peek().describe()
        );
        self.fail(message)
    }

    /// Enters one nesting level; every recursion of the parser goes through here.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > EXPR_DEPTH_MAX {
            return self.fail(format!(
                "expression is nested deeper than EXPR_DEPTH_MAX ({EXPR_DEPTH_MAX})"
            ));
        }
        Ok(())
    }

    /// A sub-expression; inside list and map literals (`ternary` false) a ternary must be
    /// parenthesized.
    fn expr(&mut self, ternary: bool) -> Result<Node, ParseError> {
        self.enter()?;
        let cond = self.logical(false)?;
        let node = if self.peek() != &Tok::Question {
            cond
        } else if !ternary {
            return self.fail("a ternary inside a list or map literal must be parenthesized");
        } else {
            self.bump();
            let then = self.expr(true)?;
            self.expect(&Tok::Colon, "in the ternary 'c ? a : b'")?;
            let other = self.expr(true)?;
            Node::Ternary(Box::new([cond, then, other]))
        };
        self.depth -= 1;
        Ok(node)
    }

    /// `or` (when `and` is false) or `and` level.
    fn logical(&mut self, and: bool) -> Result<Node, ParseError> {
        let op = if and { Tok::And } else { Tok::Or };
        let operand = |p: &mut Self| if and { p.chain(0) } else { p.logical(true) };
        let first = operand(self)?;
        if self.peek() != &op {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(&op) {
            items.push(operand(self)?);
        }
        Ok(if and {
            Node::And(items)
        } else {
            Node::Or(items)
        })
    }

    /// One of the four binary levels of [`CHAIN_LEVELS`], then unary.
    fn chain(&mut self, level: usize) -> Result<Node, ParseError> {
        let operand = |p: &mut Self| {
            if level + 1 < CHAIN_LEVELS.len() {
                p.chain(level + 1)
            } else {
                p.unary()
            }
        };
        let first = operand(self)?;
        let mut rest = Vec::new();
        loop {
            let found = CHAIN_LEVELS[level].iter().find(|(t, _)| t == self.peek());
            let Some(&(_, op)) = found else { break };
            self.bump();
            rest.push((op, operand(self)?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(Node::Chain {
            first: Box::new(first),
            rest,
        })
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        let neg = match self.peek() {
            Tok::Not => false,
            Tok::Minus => true,
            _ => return self.postfix(),
        };
        self.bump();
        self.enter()?;
        let operand = Box::new(self.unary()?);
        self.depth -= 1;
        Ok(if neg {
            Node::Neg(operand)
        } else {
            Node::Not(operand)
        })
    }

    fn postfix(&mut self) -> Result<Node, ParseError> {
        let base = self.primary()?;
        let mut segs = Vec::new();
        loop {
            let null_safe = match self.peek() {
                Tok::Dot => false,
                Tok::DotQ => true,
                Tok::LBracket => {
                    self.bump();
                    let index = self.expr(true)?;
                    self.expect(&Tok::RBracket, "after the index")?;
                    segs.push(Seg::Index(index));
                    continue;
                }
                _ => break,
            };
            self.bump();
            segs.push(self.member(null_safe)?);
        }
        if segs.is_empty() {
            return Ok(base);
        }
        Ok(Node::Path {
            base: Box::new(base),
            segs,
        })
    }

    /// The name after `.` or `.?`: a field, or a method call when `(` follows.
    fn member(&mut self, null_safe: bool) -> Result<Seg, ParseError> {
        let Tok::Ident(name) = self.peek().clone() else {
            let message = format!(
                "expected a name after '.', found {}",
                self.peek().describe()
            );
            return self.fail(message);
        };
        let at = self.offset();
        self.bump();
        if self.peek() != &Tok::LParen {
            return Ok(Seg::Field { name, null_safe });
        }
        let Some(method) = methods::METHODS.iter().find(|m| m.name == name) else {
            let message = format!(
                "unknown method '{name}'; supported: {}",
                methods::method_names()
            );
            return Err(ParseError {
                message,
                offset: at,
            });
        };
        let args = self.args()?;
        if !(method.min..=method.max).contains(&args.len()) {
            let message = format!(
                "method '{name}' {}, got {}",
                arity_text(method.min, method.max),
                args.len()
            );
            return Err(ParseError {
                message,
                offset: at,
            });
        }
        Ok(Seg::Method {
            name: method.name,
            args,
            null_safe,
        })
    }

    fn args(&mut self) -> Result<Vec<Node>, ParseError> {
        self.expect(&Tok::LParen, "to start the arguments")?;
        let mut args = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(args);
        }
        loop {
            args.push(self.expr(true)?);
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            self.expect(&Tok::Comma, "or ')' between arguments")?;
        }
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let at = self.offset();
        match self.bump() {
            Tok::Int(i) => Ok(Node::Lit(Value::from(i))),
            Tok::Double(d) => Ok(Node::Lit(crate::value::double(d).unwrap_or(Value::Null))),
            Tok::Str(s) => Ok(Node::Lit(Value::String(s))),
            Tok::LParen => {
                let inner = self.expr(true)?;
                self.expect(&Tok::RParen, "to close '('")?;
                Ok(inner)
            }
            Tok::LBracket => self.list_or_map(),
            Tok::Ident(name) => self.name(name, at),
            other => {
                self.pos -= 1;
                let message = format!("expected a value, found {}", other.describe());
                self.fail(message)
            }
        }
    }

    fn name(&mut self, name: String, at: usize) -> Result<Node, ParseError> {
        let node = match name.as_str() {
            "null" | "nil" => Node::Lit(Value::Null),
            "true" => Node::Lit(Value::Bool(true)),
            "false" => Node::Lit(Value::Bool(false)),
            "empty" => Node::Empty,
            "taskInputs" => Node::Root(Root::TaskInputs),
            "blocks" => Node::Root(Root::Blocks),
            "task" => Node::Root(Root::Task),
            _ if functions::CLASSES.contains(&name.as_str()) => return self.static_call(&name, at),
            _ if UNSUPPORTED_WORDS.contains(&name.as_str()) => {
                let message = format!("'{name}' is not supported in expressions");
                return Err(ParseError {
                    message,
                    offset: at,
                });
            }
            _ => {
                let message = format!("unknown name '{name}'; expected taskInputs, blocks or task");
                return Err(ParseError {
                    message,
                    offset: at,
                });
            }
        };
        Ok(node)
    }

    fn static_call(&mut self, class: &str, at: usize) -> Result<Node, ParseError> {
        if !self.eat(&Tok::Dot) {
            let message = format!(
                "'{class}' can only be used to call a method, as in {class}.{}(…)",
                functions::first_method(class)
            );
            return Err(ParseError {
                message,
                offset: at,
            });
        }
        let method_at = self.offset();
        let Tok::Ident(method) = self.bump() else {
            return Err(ParseError {
                message: format!("expected a method name after '{class}.'"),
                offset: method_at,
            });
        };
        let Some(def) = functions::lookup_static(class, &method) else {
            let message = format!(
                "'{class}.{method}' is not supported; supported: {}",
                functions::static_names(class)
            );
            return Err(ParseError {
                message,
                offset: method_at,
            });
        };
        if self.peek() != &Tok::LParen {
            let message = format!("'{class}.{method}' must be called with arguments in '(…)'");
            return self.fail(message);
        }
        let args = self.args()?;
        if !(def.min..=def.max).contains(&args.len()) {
            let message = format!(
                "{class}.{method} {}, got {}",
                arity_text(def.min, def.max),
                args.len()
            );
            return Err(ParseError {
                message,
                offset: method_at,
            });
        }
        Ok(Node::Static { def, args })
    }

    fn list_or_map(&mut self) -> Result<Node, ParseError> {
        if self.eat(&Tok::RBracket) {
            return Ok(Node::List(Vec::new()));
        }
        let first = self.expr(false)?;
        if !self.eat(&Tok::Colon) {
            let mut items = vec![first];
            while self.eat(&Tok::Comma) {
                items.push(self.expr(false)?);
            }
            self.expect(&Tok::RBracket, "or ',' in the list literal")?;
            return Ok(Node::List(items));
        }
        let mut entries = vec![(first, self.expr(false)?)];
        while self.eat(&Tok::Comma) {
            let key = self.expr(false)?;
            self.expect(&Tok::Colon, "between key and value in the map literal")?;
            entries.push((key, self.expr(false)?));
        }
        self.expect(&Tok::RBracket, "or ',' in the map literal")?;
        Ok(Node::Map(entries))
    }
}

fn arity_text(min: usize, max: usize) -> String {
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    match max - min {
        0 => format!("takes {min} {}", plural(min)),
        1 => format!("takes {min} or {max} {}", plural(max)),
        _ => format!("takes {min} to {max} arguments"),
    }
}
