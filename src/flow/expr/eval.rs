//! Evaluation of a parsed expression against a [`Scope`] (spec §2.5).
//!
//! Values are read in place: a path such as `blocks.b1.siteId` walks borrowed references into
//! the scope (`Cow::Borrowed`) and clones only the value it ends on; values computed on the way
//! (`Cow::Owned`) are taken apart instead of cloned. Every node visit and path step spends one
//! step of the [`EXPR_STEPS_MAX`](crate::limits::EXPR_STEPS_MAX) budget; recursion follows the
//! syntax tree, whose depth the parser bounds.

use super::methods::{self, Recv};
use super::ops::{self, fail, Budget};
use super::parser::{BinOp, Node, Root, Seg};
use super::{EvalError, Scope};
use crate::value::{to_java_string, Map, Value};
use std::borrow::Cow;

/// Evaluates `node` in `scope`.
pub(super) fn evaluate<'v>(node: &'v Node, scope: &Scope<'v>) -> Result<Value, EvalError> {
    let mut ev = Evaluator {
        task_inputs: scope.task_inputs,
        blocks: scope.blocks,
        variables: scope.variables,
        task: scope.task,
        budget: Budget::default(),
    };
    let value = ev.eval(node)?;
    if let Cow::Borrowed(v) = &value {
        ev.budget.charge(v)?;
    }
    Ok(value.into_owned())
}

struct Evaluator<'v> {
    task_inputs: &'v Map,
    blocks: &'v Map,
    variables: &'v Map,
    task: &'v Map,
    budget: Budget,
}

/// Where a path walk stands: a value, one of the scope's maps, or the `task` root (whose
/// `variables` member is the scope's variables map).
enum Cur<'v> {
    Val(Cow<'v, Value>),
    Map(&'v Map),
    Task,
}

/// Which member of a List or Map a step selects.
enum Sel<'k> {
    Pos(usize),
    Key(&'k str),
}

impl<'v> Evaluator<'v> {
    fn eval(&mut self, node: &'v Node) -> Result<Cow<'v, Value>, EvalError> {
        self.budget.spend(1)?;
        Ok(match node {
            Node::Lit(v) => Cow::Borrowed(v),
            Node::Empty => Cow::Owned(Value::String(String::new())),
            Node::Root(root) => {
                let cur = self.root(*root);
                self.materialize(cur)
            }
            Node::Path { base, segs } => self.path(base, segs)?,
            Node::Static { def, args } => {
                let args = self.eval_all(args)?;
                let refs: Vec<&Value> = args.iter().map(|a| a.as_ref()).collect();
                Cow::Owned((def.call)(&refs, self.task)?)
            }
            Node::List(items) => {
                ops::check_items(items.len())?;
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    let v = self.eval(item)?;
                    self.budget.charge(&v)?;
                    values.push(v.into_owned());
                }
                Cow::Owned(Value::Array(values))
            }
            Node::Map(entries) => Cow::Owned(self.map_literal(entries)?),
            Node::Neg(inner) => Cow::Owned(ops::negate(&*self.eval(inner)?)?),
            Node::Not(inner) => Cow::Owned(Value::Bool(!ops::truth(&*self.eval(inner)?)?)),
            Node::Chain { first, rest } => Cow::Owned(self.chain(first, rest)?),
            Node::And(items) => Cow::Owned(Value::Bool(self.logical(items, false)?)),
            Node::Or(items) => Cow::Owned(Value::Bool(self.logical(items, true)?)),
            Node::Ternary(parts) => {
                let [cond, then, other] = parts.as_ref();
                let chosen = if ops::truth(&*self.eval(cond)?)? {
                    then
                } else {
                    other
                };
                self.eval(chosen)?
            }
        })
    }

    fn eval_all(&mut self, nodes: &'v [Node]) -> Result<Vec<Cow<'v, Value>>, EvalError> {
        nodes.iter().map(|n| self.eval(n)).collect()
    }

    fn map_literal(&mut self, entries: &'v [(Node, Node)]) -> Result<Value, EvalError> {
        ops::check_items(entries.len())?;
        let mut map = Map::new();
        for (key, value) in entries {
            let key = self.eval(key)?;
            let Some(key) = to_java_string(&key) else {
                return fail("a map literal key is null");
            };
            let value = self.eval(value)?;
            self.budget.charge(&value)?;
            map.insert(key, value.into_owned());
        }
        Ok(Value::Object(map))
    }

    /// `&&` (`stop_on` false) or `||` (`stop_on` true), short-circuit.
    fn logical(&mut self, items: &'v [Node], stop_on: bool) -> Result<bool, EvalError> {
        for item in items {
            if ops::truth(&*self.eval(item)?)? == stop_on {
                return Ok(stop_on);
            }
        }
        Ok(!stop_on)
    }

    fn chain(&mut self, first: &'v Node, rest: &'v [(BinOp, Node)]) -> Result<Value, EvalError> {
        let mut acc = self.eval(first)?;
        let mut acc_is_empty_literal = matches!(first, Node::Empty);
        for (op, node) in rest {
            let rhs = self.eval(node)?;
            let value = match op {
                BinOp::Eq | BinOp::Ne => {
                    let equal = if matches!(node, Node::Empty) {
                        ops::is_empty_value(&acc)
                    } else if acc_is_empty_literal {
                        ops::is_empty_value(&rhs)
                    } else {
                        ops::loose_eq(&acc, &rhs)
                    };
                    Value::Bool(equal == (*op == BinOp::Eq))
                }
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    Value::Bool(ops::compare(*op, &acc, &rhs)?)
                }
                _ => ops::arith(*op, &acc, &rhs)?,
            };
            acc = Cow::Owned(value);
            acc_is_empty_literal = false;
        }
        Ok(acc.into_owned())
    }

    fn root(&self, root: Root) -> Cur<'v> {
        match root {
            Root::TaskInputs => Cur::Map(self.task_inputs),
            Root::Blocks => Cur::Map(self.blocks),
            Root::Task => Cur::Task,
        }
    }

    /// The value a walk stands on; a scope map is cloned only here, when it is the result.
    fn materialize(&self, cur: Cur<'v>) -> Cow<'v, Value> {
        match cur {
            Cur::Val(v) => v,
            Cur::Map(map) => Cow::Owned(Value::Object(map.clone())),
            Cur::Task => {
                let mut task = self.task.clone();
                task.insert(
                    "variables".to_string(),
                    Value::Object(self.variables.clone()),
                );
                Cow::Owned(Value::Object(task))
            }
        }
    }

    fn path(&mut self, base: &'v Node, segs: &'v [Seg]) -> Result<Cow<'v, Value>, EvalError> {
        let mut cur = match base {
            Node::Root(root) => self.root(*root),
            other => Cur::Val(self.eval(other)?),
        };
        for seg in segs {
            self.budget.spend(1)?;
            let next = match seg {
                Seg::Field { name, null_safe } => self.field(cur, name, *null_safe)?,
                Seg::Index(node) => {
                    let index = self.eval(node)?;
                    Some(self.index(cur, &index)?)
                }
                Seg::Method {
                    name,
                    args,
                    null_safe,
                } => self.method(cur, name, args, *null_safe)?,
            };
            // A null-safe step that found nothing ends the whole path with null.
            let Some(next) = next else {
                return Ok(Cow::Owned(Value::Null));
            };
            cur = next;
        }
        Ok(self.materialize(cur))
    }

    /// `.name` / `.?name`; `None` when a null-safe step finds nothing (or null).
    fn field(
        &self,
        cur: Cur<'v>,
        name: &str,
        null_safe: bool,
    ) -> Result<Option<Cur<'v>>, EvalError> {
        let found = match cur {
            Cur::Task if name == "variables" => return Ok(Some(Cur::Map(self.variables))),
            Cur::Task => self.task.get(name).map(Cow::Borrowed),
            Cur::Map(map) => map.get(name).map(Cow::Borrowed),
            Cur::Val(v) => match v.as_ref() {
                Value::Object(map) if map.contains_key(name) => Some(take(v, Sel::Key(name))),
                Value::Object(_) => None,
                _ if null_safe => None,
                Value::Null => {
                    return fail(format!("could not access: {name} (the value is null)"))
                }
                other => {
                    return fail(format!(
                        "could not access: {name} on {}",
                        ops::describe(other)
                    ))
                }
            },
        };
        match found {
            Some(v) if null_safe && v.is_null() => Ok(None),
            Some(v) => Ok(Some(Cur::Val(v))),
            None if null_safe => Ok(None),
            None => fail(format!("could not access: {name}")),
        }
    }

    /// `[index]`: a List position (Int, in range) or a Map key (missing → null).
    fn index(&self, cur: Cur<'v>, index: &Value) -> Result<Cur<'v>, EvalError> {
        let key = index.as_str();
        let map_get = |map: &'v Map| {
            key.and_then(|k| map.get(k))
                .map_or(Cow::Owned(Value::Null), Cow::Borrowed)
        };
        let v = match cur {
            Cur::Task if key == Some("variables") => return Ok(Cur::Map(self.variables)),
            Cur::Task => return Ok(Cur::Val(map_get(self.task))),
            Cur::Map(map) => return Ok(Cur::Val(map_get(map))),
            Cur::Val(v) => v,
        };
        let sel = match (v.as_ref(), index) {
            (Value::Array(items), Value::Number(n)) if n.is_i64() => {
                let i = n.as_i64().unwrap_or(-1);
                match usize::try_from(i).ok().filter(|i| *i < items.len()) {
                    Some(i) => Sel::Pos(i),
                    None => {
                        return fail(format!(
                            "index {i} is out of range for a list of {} items",
                            items.len()
                        ))
                    }
                }
            }
            (Value::Array(_), other) => {
                return fail(format!(
                    "a list index must be an integer, got {}",
                    ops::describe(other)
                ))
            }
            (Value::Object(map), _) => match key.filter(|k| map.contains_key(*k)) {
                Some(k) => Sel::Key(k),
                None => return Ok(Cur::Val(Cow::Owned(Value::Null))),
            },
            (other, _) => return fail(format!("cannot index {} with [ ]", ops::describe(other))),
        };
        Ok(Cur::Val(take(v, sel)))
    }

    fn method(
        &mut self,
        cur: Cur<'v>,
        name: &str,
        args: &'v [Node],
        null_safe: bool,
    ) -> Result<Option<Cur<'v>>, EvalError> {
        if null_safe && matches!(&cur, Cur::Val(v) if v.is_null()) {
            return Ok(None);
        }
        let args = self.eval_all(args)?;
        let refs: Vec<&Value> = args.iter().map(|a| a.as_ref()).collect();
        let task;
        let recv = match &cur {
            Cur::Val(v) => Recv::Value(v.as_ref()),
            Cur::Map(map) => Recv::Map(map),
            Cur::Task => {
                task = self.materialize(Cur::Task);
                Recv::Value(task.as_ref())
            }
        };
        let result = methods::call(name, recv, &refs, &mut self.budget)?;
        Ok(Some(Cur::Val(Cow::Owned(result))))
    }
}

/// The selected member: borrowed from a borrowed container, moved out of an owned one.
fn take<'v>(container: Cow<'v, Value>, sel: Sel<'_>) -> Cow<'v, Value> {
    match container {
        Cow::Borrowed(v) => Cow::Borrowed(match sel {
            Sel::Pos(i) => &v[i],
            Sel::Key(k) => &v[k],
        }),
        Cow::Owned(Value::Array(mut items)) => match sel {
            Sel::Pos(i) if i < items.len() => Cow::Owned(items.swap_remove(i)),
            _ => Cow::Owned(Value::Null),
        },
        Cow::Owned(Value::Object(mut map)) => match sel {
            Sel::Key(k) => Cow::Owned(map.remove(k).unwrap_or(Value::Null)),
            Sel::Pos(_) => Cow::Owned(Value::Null),
        },
        Cow::Owned(_) => Cow::Owned(Value::Null),
    }
}
