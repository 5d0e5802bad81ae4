//! Splitting an expression into tokens.
//!
//! Positions are 1-based character offsets into the whole JSON string,
//! counting the opening `[` as position 1, so error messages point at the
//! character the user sees.

use std::fmt;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// A function name or `true`/`false`.
    Ident(String),
    /// A single-quoted string with `''` already unescaped.
    Str(String),
    /// An integer literal.
    Int(i64),
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenKind::LParen => f.write_str("'('"),
            TokenKind::RParen => f.write_str("')'"),
            TokenKind::LBracket => f.write_str("'['"),
            TokenKind::RBracket => f.write_str("']'"),
            TokenKind::Comma => f.write_str("','"),
            TokenKind::Dot => f.write_str("'.'"),
            TokenKind::Ident(s) => write!(f, "name '{s}'"),
            TokenKind::Str(s) => write!(f, "string '{s}'"),
            TokenKind::Int(i) => write!(f, "integer {i}"),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// What the token is.
    pub(crate) kind: TokenKind,
    /// 1-based character position in the whole JSON string.
    pub(crate) pos: usize,
}

/// Tokenizes `text`, the expression between the outer brackets.
///
/// `first_pos` is the position of `text`'s first character (2 for a normal
/// `[...]` expression).
pub(crate) fn tokenize(text: &str, first_pos: usize) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = first_pos + i;
        let single = match c {
            '(' => Some(TokenKind::LParen),
            ')' => Some(TokenKind::RParen),
            '[' => Some(TokenKind::LBracket),
            ']' => Some(TokenKind::RBracket),
            ',' => Some(TokenKind::Comma),
            '.' => Some(TokenKind::Dot),
            _ => None,
        };
        if let Some(kind) = single {
            tokens.push(Token { kind, pos });
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let (s, next) = lex_string(&chars, i, first_pos)?;
            tokens.push(Token {
                kind: TokenKind::Str(s),
                pos,
            });
            i = next;
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let n = digits.parse::<i64>().map_err(|_| {
                format!("integer literal {digits} at position {pos} is out of range")
            })?;
            tokens.push(Token {
                kind: TokenKind::Int(n),
                pos,
            });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token {
                kind: TokenKind::Ident(chars[start..i].iter().collect()),
                pos,
            });
        } else {
            return Err(format!("unexpected character '{c}' at position {pos}"));
        }
    }
    Ok(tokens)
}

/// Reads a single-quoted string starting at `start`; returns the text and
/// the index after the closing quote.
fn lex_string(chars: &[char], start: usize, first_pos: usize) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(format!(
                    "unterminated string literal starting at position {}",
                    first_pos + start
                ))
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                out.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((out, i + 1)),
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text, 2)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn punctuation_names_and_literals() {
        use TokenKind::*;
        assert_eq!(
            kinds("concat('a', -12, x_1)[0].b"),
            vec![
                Ident("concat".into()),
                LParen,
                Str("a".into()),
                Comma,
                Int(-12),
                Comma,
                Ident("x_1".into()),
                RParen,
                LBracket,
                Int(0),
                RBracket,
                Dot,
                Ident("b".into()),
            ]
        );
    }

    #[test]
    fn doubled_quote_is_an_escaped_quote() {
        assert_eq!(kinds("'it''s'"), vec![TokenKind::Str("it's".into())]);
        assert_eq!(kinds("''''"), vec![TokenKind::Str("'".into())]);
        assert_eq!(kinds("''"), vec![TokenKind::Str(String::new())]);
    }

    #[test]
    fn positions_count_from_the_opening_bracket() {
        let tokens = tokenize("a( 'x')", 2).unwrap();
        let positions: Vec<usize> = tokens.iter().map(|t| t.pos).collect();
        assert_eq!(positions, vec![2, 3, 5, 8]);
    }

    #[test]
    fn whitespace_and_newlines_are_skipped() {
        assert_eq!(kinds(" \n\t1 "), vec![TokenKind::Int(1)]);
    }

    #[test]
    fn unterminated_string_reports_its_start() {
        assert_eq!(
            tokenize("concat('abc", 2).unwrap_err(),
            "unterminated string literal starting at position 9"
        );
    }

    #[test]
    fn bad_characters_and_big_ints_are_errors() {
        assert_eq!(
            tokenize("a + b", 2).unwrap_err(),
            "unexpected character '+' at position 4"
        );
        assert_eq!(
            tokenize("-x", 2).unwrap_err(),
            "unexpected character '-' at position 2"
        );
        assert_eq!(
            tokenize("99999999999999999999", 2).unwrap_err(),
            "integer literal 99999999999999999999 at position 2 is out of range"
        );
    }
}
