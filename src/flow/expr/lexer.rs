//! Tokenizer of the expression language (spec §2.4): numbers, strings, identifiers, operators.
//!
//! Characters of constructs outside the supported subset (`=`, `;`, `{`, `}`, `~=`, single `&`
//! or `|`) are reported here with a message that names the construct.

use super::ParseError;

/// One token kind. Identifiers include keywords (`null`, `true`, `if`, …); the parser decides.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Ident(String),
    Int(i64),
    Double(f64),
    Str(String),
    /// `.`
    Dot,
    /// `.?`
    DotQ,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Colon,
    Question,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Not,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    /// A character outside the subset, with the message that names the construct. Reported
    /// when the parser reaches it, so an earlier unsupported keyword is named first.
    Bad(String),
    End,
}

impl Tok {
    /// How the token reads in an error message.
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Double(d) => format!("number {d}"),
            Tok::Str(_) => "a string".to_string(),
            Tok::End => "the end of the expression".to_string(),
            Tok::Bad(message) => message.clone(),
            other => format!("'{}'", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::Dot => ".",
            Tok::DotQ => ".?",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Colon => ":",
            Tok::Question => "?",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Not => "!",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::And => "&&",
            Tok::Or => "||",
            _ => "",
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub offset: usize,
}

/// Splits `text` into tokens, ending with [`Tok::End`].
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        lexer.skip_whitespace();
        let offset = lexer.pos;
        let tok = lexer.next_token()?;
        let end = tok == Tok::End;
        out.push(Token { tok, offset });
        if end {
            return Ok(out);
        }
    }
}

struct Lexer<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
}

fn err<T>(message: impl Into<String>, offset: usize) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
        offset,
    })
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$'
}

fn is_ident_char(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek(0).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn next_token(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        let Some(b) = self.peek(0) else {
            return Ok(Tok::End);
        };
        if is_ident_start(b) {
            while self.peek(0).is_some_and(is_ident_char) {
                self.pos += 1;
            }
            return Ok(Tok::Ident(self.text[start..self.pos].to_string()));
        }
        if b.is_ascii_digit() {
            return self.number();
        }
        if b == b'"' || b == b'\'' {
            return self.string(b);
        }
        self.operator(b)
    }

    fn operator(&mut self, b: u8) -> Result<Tok, ParseError> {
        let start = self.pos;
        let next = self.peek(1);
        let (tok, len) = match (b, next) {
            (b'.', Some(b'?')) => (Tok::DotQ, 2),
            (b'=', Some(b'=')) => (Tok::Eq, 2),
            (b'!', Some(b'=')) => (Tok::Ne, 2),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'&', Some(b'&')) => (Tok::And, 2),
            (b'|', Some(b'|')) => (Tok::Or, 2),
            (b'~', Some(b'=')) => (
                Tok::Bad("the '~=' (regex match) operator is not supported".into()),
                2,
            ),
            (b'+' | b'-' | b'*' | b'/' | b'%', Some(b'=')) => (
                Tok::Bad("assignment is not supported (expressions only read values)".into()),
                2,
            ),
            (b'.', _) => (Tok::Dot, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b',', _) => (Tok::Comma, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'?', _) => (Tok::Question, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'!', _) => (Tok::Not, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            _ => (self.unsupported_char(start), 1),
        };
        self.pos += len;
        Ok(tok)
    }

    /// A [`Tok::Bad`] for the character at `start`; the caller skips one byte, the rest of a
    /// multi-byte character is skipped here.
    fn unsupported_char(&mut self, start: usize) -> Tok {
        let c = self.text[start..].chars().next().unwrap_or('\u{FFFD}');
        self.pos += c.len_utf8() - 1;
        let message = match c {
            '=' => "assignment '=' is not supported; use '==' to compare".to_string(),
            ';' => "';' (several statements) is not supported; write one expression".to_string(),
            '{' | '}' => "inline arrays '{…}' are not supported; use a list literal [a, b]".into(),
            '&' | '|' => format!("bitwise operator '{c}' is not supported; use '{c}{c}'"),
            _ => format!("unexpected character '{}'", c.escape_debug()),
        };
        Tok::Bad(message)
    }

    fn number(&mut self) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.digits();
        let mut is_double = false;
        if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
            is_double = true;
            self.pos += 1;
            self.digits();
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
            if self.peek(1 + sign).is_some_and(|b| b.is_ascii_digit()) {
                is_double = true;
                self.pos += 1 + sign;
                self.digits();
            }
        }
        let body = &self.text[start..self.pos];
        match self.peek(0) {
            Some(b'd' | b'D') => {
                is_double = true;
                self.pos += 1;
            }
            Some(b'l' | b'L') if !is_double => self.pos += 1,
            _ => {}
        }
        if self.peek(0).is_some_and(is_ident_char) {
            return err(
                format!("malformed number '{}…'", &self.text[start..self.pos]),
                start,
            );
        }
        if is_double {
            match body.parse::<f64>() {
                Ok(d) if d.is_finite() => Ok(Tok::Double(d)),
                _ => err(format!("number '{body}' is out of range"), start),
            }
        } else {
            match body.parse::<i64>() {
                Ok(i) => Ok(Tok::Int(i)),
                Err(_) => err(format!("integer '{body}' does not fit in 64 bits"), start),
            }
        }
    }

    fn digits(&mut self) {
        while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn string(&mut self, quote: u8) -> Result<Tok, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.pos..].chars().next() else {
                return err("unterminated string literal", start);
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                _ if c as u32 == u32::from(quote) => return Ok(Tok::Str(out)),
                '\\' => out.push(self.escape(at)?),
                _ => out.push(c),
            }
        }
    }

    fn escape(&mut self, at: usize) -> Result<char, ParseError> {
        let Some(c) = self.peek(0) else {
            return err("unterminated string literal", at);
        };
        self.pos += 1;
        Ok(match c {
            b'"' => '"',
            b'\'' => '\'',
            b'\\' => '\\',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(at),
            _ => {
                let c = self.text[self.pos - 1..].chars().next().unwrap_or('?');
                return err(
                    format!("unknown escape '\\{}' in string", c.escape_debug()),
                    at,
                );
            }
        })
    }

    fn hex4(&mut self, at: usize) -> Result<u32, ParseError> {
        let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
        if hex.len() != 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return err("'\\u' must be followed by 4 hex digits", at);
        }
        self.pos += 4;
        u32::from_str_radix(hex, 16).or_else(|_| err("bad '\\u' escape", at))
    }

    /// `\uXXXX`, joining a UTF-16 surrogate pair written as two escapes.
    fn unicode_escape(&mut self, at: usize) -> Result<char, ParseError> {
        let high = self.hex4(at)?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if self.peek(0) != Some(b'\\') || self.peek(1) != Some(b'u') {
                return err("'\\u' escape is an unpaired surrogate", at);
            }
            self.pos += 2;
            let low = self.hex4(at)?;
            if !(0xDC00..0xE000).contains(&low) {
                return err("'\\u' escape is an unpaired surrogate", at);
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).map_or_else(|| err("'\\u' escape is an unpaired surrogate", at), Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        tokenize(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn lex_err(text: &str) -> ParseError {
        tokenize(text).unwrap_err()
    }

    /// The message of the first [`Tok::Bad`] token and its offset.
    fn bad(text: &str) -> (String, usize) {
        let toks = tokenize(text).unwrap();
        toks.into_iter()
            .find_map(|t| match t.tok {
                Tok::Bad(m) => Some((m, t.offset)),
                _ => None,
            })
            .expect("a bad token")
    }

    #[test]
    fn numbers_with_suffixes() {
        assert_eq!(toks("12"), vec![Tok::Int(12), Tok::End]);
        assert_eq!(toks("12L"), vec![Tok::Int(12), Tok::End]);
        assert_eq!(toks("1.5"), vec![Tok::Double(1.5), Tok::End]);
        assert_eq!(toks("1e3"), vec![Tok::Double(1000.0), Tok::End]);
        assert_eq!(toks("2E-2d"), vec![Tok::Double(0.02), Tok::End]);
        assert_eq!(toks("3d"), vec![Tok::Double(3.0), Tok::End]);
        assert_eq!(
            toks("1.toString"),
            vec![
                Tok::Int(1),
                Tok::Dot,
                Tok::Ident("toString".into()),
                Tok::End
            ]
        );
        assert!(lex_err("99999999999999999999").message.contains("64 bits"));
        assert!(lex_err("12abc").message.contains("malformed number"));
        assert!(lex_err("1.5L").message.contains("malformed number"));
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(toks(r#""a\"b""#), vec![Tok::Str("a\"b".into()), Tok::End]);
        assert_eq!(toks(r"'it\'s'"), vec![Tok::Str("it's".into()), Tok::End]);
        assert_eq!(
            toks(r"'\\\n\r\t'"),
            vec![Tok::Str("\\\n\r\t".into()), Tok::End]
        );
        assert_eq!(toks(r"'\u00e9'"), vec![Tok::Str("é".into()), Tok::End]);
        assert_eq!(
            toks(r"'\ud83d\ude00'"),
            vec![Tok::Str("😀".into()), Tok::End]
        );
        assert_eq!(
            toks("'żółw \"x\"'"),
            vec![Tok::Str("żółw \"x\"".into()), Tok::End]
        );
        assert_eq!(lex_err("'abc").message, "unterminated string literal");
        assert_eq!(lex_err("'abc\\").message, "unterminated string literal");
        assert!(lex_err(r"'\q'").message.contains("unknown escape"));
        assert!(lex_err(r"'\u12'").message.contains("4 hex digits"));
        assert!(lex_err(r"'\ud83d'").message.contains("surrogate"));
    }

    #[test]
    fn operators_and_offsets() {
        let t = tokenize("a.?b != 1").unwrap();
        assert_eq!(t[1].tok, Tok::DotQ);
        assert_eq!(t[3].tok, Tok::Ne);
        assert_eq!(t[3].offset, 5);
        assert_eq!(
            toks("<=>=&&||!"),
            vec![Tok::Le, Tok::Ge, Tok::And, Tok::Or, Tok::Not, Tok::End]
        );
    }

    #[test]
    fn unsupported_characters_are_named() {
        assert!(bad("a = 1").0.contains("assignment"));
        assert!(bad("a += 1").0.contains("assignment"));
        assert!(bad("a; b").0.contains("';'"));
        assert!(bad("{1, 2}").0.contains("inline arrays"));
        assert!(bad("a ~= 'x'").0.contains("'~='"));
        assert!(bad("a & b").0.contains("bitwise"));
        assert_eq!(bad("a # b").1, 2);
        assert!(bad("ä").0.contains("unexpected character 'ä'"));
        assert_eq!(toks("ä1").len(), 3, "a multi-byte character is one token");
    }
}
