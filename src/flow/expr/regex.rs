//! The small regex subset `String.split(regex)` supports, with Java `String.split` semantics.
//!
//! Supported: literal characters; `\` before any non-alphanumeric character (a literal, as in
//! `\\.` or `\\|`); `\t \n \r \f`; the classes `\d \D \s \S \w \W` and `.`; bracket classes
//! `[abc]`, `[^abc]`, `[a-z0-9_]` (which may contain escapes and the class shorthands); each
//! element optionally followed by one greedy quantifier `*`, `+` or `?`. Anything else — groups
//! `( )`, alternation `|`, counted repetition `{n,m}`, anchors `^ $`, `\b`, `\p{…}`,
//! back-references, lazy or possessive quantifiers — is an evaluation error naming the construct.
//! A pattern has at most [`EXPR_DEPTH_MAX`] elements (the matcher recurses once per element),
//! and matching spends the evaluation's step budget, so backtracking is bounded.

use super::ops::{check_items, fail, Budget};
use super::EvalError;
use crate::limits::EXPR_DEPTH_MAX;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
enum Class {
    Char(char),
    Range(char, char),
    Digit(bool),
    Space(bool),
    Word(bool),
    Any,
    Set { negated: bool, items: Vec<Class> },
}

impl Class {
    fn matches(&self, c: char) -> bool {
        match self {
            Class::Char(x) => *x == c,
            Class::Range(a, b) => (*a..=*b).contains(&c),
            Class::Digit(neg) => c.is_ascii_digit() != *neg,
            Class::Space(neg) => matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r') != *neg,
            Class::Word(neg) => (c.is_ascii_alphanumeric() || c == '_') != *neg,
            Class::Any => !matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'),
            Class::Set { negated, items } => items.iter().any(|i| i.matches(c)) != *negated,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Quant {
    One,
    Opt,
    Star,
    Plus,
}

/// A compiled pattern: a sequence of (class, quantifier).
#[derive(Debug)]
struct Pattern(Vec<(Class, Quant)>);

fn unsupported<T>(what: &str, pattern: &str) -> Result<T, EvalError> {
    fail(format!(
        "split: {what} is not supported in the regex \"{}\"",
        crate::value::clip(pattern)
    ))
}

fn compile(pattern: &str) -> Result<Pattern, EvalError> {
    let mut chars = pattern.chars().peekable();
    let mut items: Vec<(Class, Quant)> = Vec::new();
    while let Some(c) = chars.next() {
        let class = match c {
            '\\' => escape(chars.next(), pattern)?,
            '[' => bracket(&mut chars, pattern)?,
            '.' => Class::Any,
            '*' | '+' | '?' => {
                let Some(last) = items.last_mut().filter(|(_, q)| *q == Quant::One) else {
                    return unsupported(&format!("quantifier '{c}' here"), pattern);
                };
                last.1 = match c {
                    '*' => Quant::Star,
                    '+' => Quant::Plus,
                    _ => Quant::Opt,
                };
                continue;
            }
            '(' | ')' | '|' | '{' | '}' | '^' | '$' => {
                return unsupported(&format!("'{c}'"), pattern)
            }
            other => Class::Char(other),
        };
        items.push((class, Quant::One));
        if items.len() > EXPR_DEPTH_MAX {
            return unsupported(
                &format!("more than EXPR_DEPTH_MAX ({EXPR_DEPTH_MAX}) elements"),
                pattern,
            );
        }
    }
    Ok(Pattern(items))
}

fn escape(c: Option<char>, pattern: &str) -> Result<Class, EvalError> {
    Ok(match c {
        None => return unsupported("a trailing '\\'", pattern),
        Some('d') => Class::Digit(false),
        Some('D') => Class::Digit(true),
        Some('s') => Class::Space(false),
        Some('S') => Class::Space(true),
        Some('w') => Class::Word(false),
        Some('W') => Class::Word(true),
        Some('t') => Class::Char('\t'),
        Some('n') => Class::Char('\n'),
        Some('r') => Class::Char('\r'),
        Some('f') => Class::Char('\x0C'),
        Some(c) if !c.is_alphanumeric() => Class::Char(c),
        Some(c) => return unsupported(&format!("'\\{c}'"), pattern),
    })
}

fn bracket(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    pattern: &str,
) -> Result<Class, EvalError> {
    let negated = chars.next_if_eq(&'^').is_some();
    let mut items = Vec::new();
    loop {
        let item = match chars.next() {
            None => return unsupported("an unterminated '['", pattern),
            Some(']') if !items.is_empty() => return Ok(Class::Set { negated, items }),
            Some('[') | Some('&') => return unsupported("nested or intersected classes", pattern),
            Some('\\') => escape(chars.next(), pattern)?,
            Some(c) => Class::Char(c),
        };
        let is_range_start = matches!(item, Class::Char(_)) && chars.peek() == Some(&'-');
        if let (true, Class::Char(lo)) = (is_range_start, &item) {
            let lo = *lo;
            chars.next();
            match chars.next() {
                Some(']') => {
                    items.extend([Class::Char(lo), Class::Char('-')]);
                    return Ok(Class::Set { negated, items });
                }
                Some(hi) if hi != '\\' && hi >= lo => items.push(Class::Range(lo, hi)),
                _ => return unsupported("this character range", pattern),
            }
        } else {
            items.push(item);
        }
        if items.len() > EXPR_DEPTH_MAX {
            return unsupported("a class this large", pattern);
        }
    }
}

impl Pattern {
    /// End of the longest-first (greedy, backtracking) match of elements `i..` at `pos`.
    fn match_at(
        &self,
        i: usize,
        text: &[char],
        pos: usize,
        budget: &mut Budget,
    ) -> Result<Option<usize>, EvalError> {
        budget.spend(1)?;
        let Some((class, quant)) = self.0.get(i) else {
            return Ok(Some(pos));
        };
        let (min, max) = match quant {
            Quant::One => (1, 1),
            Quant::Opt => (0, 1),
            Quant::Star => (0, usize::MAX),
            Quant::Plus => (1, usize::MAX),
        };
        let run = text[pos..]
            .iter()
            .take(max)
            .take_while(|c| class.matches(**c))
            .count();
        budget.spend(run)?;
        if run < min {
            return Ok(None);
        }
        for n in (min..=run).rev() {
            if let Some(end) = self.match_at(i + 1, text, pos + n, budget)? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }
}

/// Java `text.split(regex)`: empty strings at the end are dropped; no match gives `[text]`; a
/// zero-width match at the start gives no leading empty string.
pub(super) fn split(text: &str, regex: &str, budget: &mut Budget) -> Result<Value, EvalError> {
    let pattern = compile(regex)?;
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let (mut from, mut index) = (0, 0);
    let mut parts: Vec<Value> = Vec::new();
    while from <= n {
        let mut found = None;
        for start in from..=n {
            if let Some(end) = pattern.match_at(0, &chars, start, budget)? {
                found = Some((start, end));
                break;
            }
        }
        let Some((start, end)) = found else { break };
        if !(index == 0 && start == 0 && end == 0) {
            parts.push(Value::String(chars[index..start].iter().collect()));
            check_items(parts.len() + 1)?;
            index = end;
        }
        from = if end == start { end + 1 } else { end };
    }
    if index == 0 {
        return Ok(Value::Array(vec![Value::String(text.to_string())]));
    }
    parts.push(Value::String(chars[index..].iter().collect()));
    while parts.last().is_some_and(|p| p.as_str() == Some("")) {
        parts.pop();
    }
    Ok(Value::Array(parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sp(text: &str, regex: &str) -> Value {
        split(text, regex, &mut Budget::default()).unwrap()
    }

    fn sp_err(text: &str, regex: &str) -> String {
        split(text, regex, &mut Budget::default())
            .unwrap_err()
            .message
    }

    #[test]
    fn literal_separators() {
        assert_eq!(sp("a,b,c", ","), json!(["a", "b", "c"]));
        assert_eq!(sp("a,,b,,", ","), json!(["a", "", "b"]));
        assert_eq!(sp(",a", ","), json!(["", "a"]));
        assert_eq!(sp("abc", ","), json!(["abc"]));
        assert_eq!(sp("", ","), json!([""]));
        assert_eq!(sp(",,", ","), json!([]));
        assert_eq!(sp("a::b", "::"), json!(["a", "b"]));
        assert_eq!(sp("żółw-ą", "-"), json!(["żółw", "ą"]));
    }

    #[test]
    fn escapes_classes_and_quantifiers() {
        assert_eq!(sp("a.b.c", "\\."), json!(["a", "b", "c"]));
        assert_eq!(sp("a|b", "\\|"), json!(["a", "b"]));
        assert_eq!(sp("a  b\tc", "\\s+"), json!(["a", "b", "c"]));
        assert_eq!(sp("a, b,c", ",\\s*"), json!(["a", "b", "c"]));
        assert_eq!(sp("a1b22c", "\\d+"), json!(["a", "b", "c"]));
        assert_eq!(sp("a;b,c", "[;,]"), json!(["a", "b", "c"]));
        assert_eq!(sp("aXbYc", "[A-Z]"), json!(["a", "b", "c"]));
        assert_eq!(sp("a-b_c", "[^a-z]"), json!(["a", "b", "c"]));
        assert_eq!(sp("a-b", "[x-]"), json!(["a", "b"]));
        assert_eq!(sp("ab", ""), json!(["a", "b"]));
        assert_eq!(sp("colour color", "ou?r"), json!(["col", " col"]));
        assert_eq!(sp("a.b", "."), json!([]));
    }

    #[test]
    fn unsupported_constructs_are_named() {
        assert!(sp_err("a", "a|b").contains("'|'"));
        assert!(sp_err("a", "(a)").contains("'('"));
        assert!(sp_err("a", "a{2}").contains("'{'"));
        assert!(sp_err("a", "^a").contains("'^'"));
        assert!(sp_err("a", "\\bx").contains("'\\b'"));
        assert!(sp_err("a", "a*?").contains("quantifier '?'"));
        assert!(sp_err("a", "*a").contains("quantifier '*'"));
        assert!(sp_err("a", "[ab").contains("unterminated"));
        assert!(sp_err("a", "a\\").contains("trailing"));
        assert!(sp_err("a", &"a".repeat(EXPR_DEPTH_MAX + 1)).contains("EXPR_DEPTH_MAX"));
    }

    #[test]
    fn backtracking_spends_the_step_budget() {
        let text = "a".repeat(5_000);
        let e = sp_err(&text, "a*a*a*a*a*a*b");
        assert!(e.contains("EXPR_STEPS_MAX"), "{e}");
    }
}
