//! Parsing tokens into an expression tree.
//!
//! Grammar (ARM has no operators, only calls and accessors):
//!
//! ```text
//! expr    := primary ( '.' NAME | '[' expr ']' )*
//! primary := STRING | INT | 'true' | 'false' | NAME '(' ( expr ( ',' expr )* )? ')'
//! ```

use super::lexer::{tokenize, Token, TokenKind};

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The text is not a valid expression.
    Syntax(String),
    /// The expression tree would be deeper than the nesting budget allows.
    TooDeep,
}

impl From<String> for ParseError {
    fn from(message: String) -> Self {
        ParseError::Syntax(message)
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// A string literal.
    Str(String),
    /// An integer literal.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `name(args...)`; `pos` is where the name starts.
    Call {
        name: String,
        pos: usize,
        args: Vec<Expr>,
    },
    /// `target.name`; `pos` is where the `.` is.
    Property {
        target: Box<Expr>,
        name: String,
        pos: usize,
    },
    /// `target[index]`; `pos` is where the `[` is.
    Index {
        target: Box<Expr>,
        index: Box<Expr>,
        pos: usize,
    },
}

/// Parses the text between an expression's outer brackets.
///
/// `room` is how many nesting levels the tree may have: every call,
/// `.name` and `[index]` is one level, since evaluating (and dropping) the
/// tree recurses once per level. A deeper tree is [`ParseError::TooDeep`],
/// found before it is built.
pub(crate) fn parse(text: &str, room: usize) -> Result<Expr, ParseError> {
    let tokens = tokenize(text, 2)?;
    // Position just past the text, i.e. of the closing `]`.
    let end_pos = 2 + text.chars().count();
    let mut p = Parser {
        tokens,
        next: 0,
        end_pos,
        room,
    };
    if p.tokens.is_empty() {
        return Err(ParseError::Syntax("empty expression".to_string()));
    }
    let (expr, _) = p.expr(0)?;
    if let Some(t) = p.peek() {
        return Err(ParseError::Syntax(format!(
            "unexpected {} at position {} after the end of the expression",
            t.kind, t.pos
        )));
    }
    Ok(expr)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    end_pos: usize,
    /// Most levels the whole tree may have.
    room: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.next).cloned();
        if t.is_some() {
            self.next += 1;
        }
        t
    }

    /// Parses an expression whose root will sit `depth` levels below the
    /// tree's root; returns it with its height (its own levels).
    ///
    /// `depth + height` is checked as each node is made, so neither the
    /// parser's recursion nor a long `.a.b.c...` chain can go past `room`.
    fn expr(&mut self, depth: usize) -> Result<(Expr, usize), ParseError> {
        if depth >= self.room {
            return Err(ParseError::TooDeep);
        }
        let (mut expr, mut height) = self.primary(depth)?;
        let room = self.room;
        let fits = |height: usize| {
            if depth + height > room {
                Err(ParseError::TooDeep)
            } else {
                Ok(())
            }
        };
        loop {
            match self.peek().map(|t| (t.kind.clone(), t.pos)) {
                Some((TokenKind::Dot, pos)) => {
                    self.next += 1;
                    match self.bump() {
                        Some(Token {
                            kind: TokenKind::Ident(name),
                            ..
                        }) => {
                            height += 1;
                            fits(height)?;
                            expr = Expr::Property {
                                target: Box::new(expr),
                                name,
                                pos,
                            }
                        }
                        Some(t) => {
                            return Err(ParseError::Syntax(format!(
                                "expected a property name after '.' at position {pos}, found {} at position {}",
                                t.kind, t.pos
                            )))
                        }
                        None => {
                            return Err(ParseError::Syntax(format!(
                                "expected a property name after '.' at position {pos}, found the end of the expression"
                            )))
                        }
                    }
                }
                Some((TokenKind::LBracket, pos)) => {
                    self.next += 1;
                    let (index, index_height) = self.expr(depth + 1)?;
                    self.expect_close(TokenKind::RBracket, "]", "[", pos)?;
                    height = 1 + height.max(index_height);
                    fits(height)?;
                    expr = Expr::Index {
                        target: Box::new(expr),
                        index: Box::new(index),
                        pos,
                    };
                }
                _ => return Ok((expr, height)),
            }
        }
    }

    /// A literal or a call, with its height.
    fn primary(&mut self, depth: usize) -> Result<(Expr, usize), ParseError> {
        let Some(tok) = self.bump() else {
            return Err(ParseError::Syntax(format!(
                "expected a value at position {}, found the end of the expression",
                self.end_pos
            )));
        };
        match tok.kind {
            TokenKind::Str(s) => Ok((Expr::Str(s), 1)),
            TokenKind::Int(i) => Ok((Expr::Int(i), 1)),
            TokenKind::Ident(name) => {
                let is_call = matches!(self.peek(), Some(t) if t.kind == TokenKind::LParen);
                if !is_call {
                    if name.eq_ignore_ascii_case("true") {
                        return Ok((Expr::Bool(true), 1));
                    }
                    if name.eq_ignore_ascii_case("false") {
                        return Ok((Expr::Bool(false), 1));
                    }
                    // `ns.fn(...)` is a user-defined function call.
                    if let Some(full) = self.user_function_name(&name) {
                        return Err(ParseError::Syntax(format!(
                            "unsupported ARM template function '{full}' at position {} (user-defined functions are not supported)",
                            tok.pos
                        )));
                    }
                    return Err(ParseError::Syntax(format!(
                        "expected '(' after function name '{name}' at position {}",
                        tok.pos
                    )));
                }
                let open = self.bump().map_or(tok.pos, |t| t.pos);
                let (args, args_height) = self.args(depth, open)?;
                let call = Expr::Call {
                    name,
                    pos: tok.pos,
                    args,
                };
                Ok((call, 1 + args_height))
            }
            other => Err(ParseError::Syntax(format!(
                "unexpected {other} at position {}",
                tok.pos
            ))),
        }
    }

    /// If the tokens after `name` are `. NAME (`, returns `name.NAME`.
    fn user_function_name(&self, name: &str) -> Option<String> {
        let t = &self.tokens;
        let n = self.next;
        match (t.get(n), t.get(n + 1), t.get(n + 2)) {
            (
                Some(Token {
                    kind: TokenKind::Dot,
                    ..
                }),
                Some(Token {
                    kind: TokenKind::Ident(member),
                    ..
                }),
                Some(Token {
                    kind: TokenKind::LParen,
                    ..
                }),
            ) => Some(format!("{name}.{member}")),
            _ => None,
        }
    }

    /// Parses call arguments after the `(` at `open`, through the `)`;
    /// returns them with the greatest height among them.
    fn args(&mut self, depth: usize, open: usize) -> Result<(Vec<Expr>, usize), ParseError> {
        let mut args = Vec::new();
        let mut height = 0;
        if matches!(self.peek(), Some(t) if t.kind == TokenKind::RParen) {
            self.next += 1;
            return Ok((args, height));
        }
        loop {
            let (arg, arg_height) = self.expr(depth + 1)?;
            args.push(arg);
            height = height.max(arg_height);
            match self.bump() {
                Some(Token {
                    kind: TokenKind::Comma,
                    ..
                }) => continue,
                Some(Token {
                    kind: TokenKind::RParen,
                    ..
                }) => return Ok((args, height)),
                Some(t) => {
                    return Err(ParseError::Syntax(format!(
                        "expected ',' or ')' at position {}, found {}",
                        t.pos, t.kind
                    )))
                }
                None => {
                    return Err(ParseError::Syntax(format!(
                        "unbalanced parentheses: '(' at position {open} is never closed"
                    )))
                }
            }
        }
    }

    fn expect_close(
        &mut self,
        kind: TokenKind,
        close: &str,
        open: &str,
        open_pos: usize,
    ) -> Result<(), ParseError> {
        match self.bump() {
            Some(t) if t.kind == kind => Ok(()),
            Some(t) => Err(ParseError::Syntax(format!(
                "expected '{close}' at position {}, found {}",
                t.pos, t.kind
            ))),
            None => Err(ParseError::Syntax(format!(
                "unbalanced brackets: '{open}' at position {open_pos} is never closed"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses with plenty of room; returns syntax errors as text.
    fn parse(text: &str) -> Result<Expr, String> {
        match super::parse(text, 64) {
            Ok(e) => Ok(e),
            Err(ParseError::Syntax(m)) => Err(m),
            Err(ParseError::TooDeep) => Err("too deep".to_string()),
        }
    }

    fn call(name: &str, pos: usize, args: Vec<Expr>) -> Expr {
        Expr::Call {
            name: name.into(),
            pos,
            args,
        }
    }

    #[test]
    fn literals() {
        assert_eq!(parse("'a'").unwrap(), Expr::Str("a".into()));
        assert_eq!(parse("-4").unwrap(), Expr::Int(-4));
        assert_eq!(parse("true").unwrap(), Expr::Bool(true));
        assert_eq!(parse("False").unwrap(), Expr::Bool(false));
    }

    #[test]
    fn nested_calls() {
        assert_eq!(
            parse("concat('a', toLower('B'))").unwrap(),
            call(
                "concat",
                2,
                vec![
                    Expr::Str("a".into()),
                    call("toLower", 14, vec![Expr::Str("B".into())])
                ]
            )
        );
        assert_eq!(parse("null()").unwrap(), call("null", 2, vec![]));
    }

    #[test]
    fn property_and_index_chains() {
        let e = parse("resourceGroup().tags['a b'][0].x").unwrap();
        let rg = call("resourceGroup", 2, vec![]);
        let tags = Expr::Property {
            target: Box::new(rg),
            name: "tags".into(),
            pos: 17,
        };
        let ab = Expr::Index {
            target: Box::new(tags),
            index: Box::new(Expr::Str("a b".into())),
            pos: 22,
        };
        let zero = Expr::Index {
            target: Box::new(ab),
            index: Box::new(Expr::Int(0)),
            pos: 29,
        };
        let x = Expr::Property {
            target: Box::new(zero),
            name: "x".into(),
            pos: 32,
        };
        assert_eq!(e, x);
    }

    #[test]
    fn unbalanced_parentheses() {
        assert_eq!(
            parse("concat('a', toLower('b')").unwrap_err(),
            "unbalanced parentheses: '(' at position 8 is never closed"
        );
        assert_eq!(
            parse("concat('a'))").unwrap_err(),
            "unexpected ')' at position 13 after the end of the expression"
        );
        assert_eq!(
            parse("concat('a'").unwrap_err(),
            "unbalanced parentheses: '(' at position 8 is never closed"
        );
        assert_eq!(
            parse("concat(").unwrap_err(),
            "expected a value at position 9, found the end of the expression"
        );
    }

    #[test]
    fn bracket_and_syntax_errors() {
        assert_eq!(
            parse("a()[0").unwrap_err(),
            "unbalanced brackets: '[' at position 5 is never closed"
        );
        assert_eq!(
            parse("a('x' 'y')").unwrap_err(),
            "expected ',' or ')' at position 8, found string 'y'"
        );
        assert_eq!(
            parse("a().").unwrap_err(),
            "expected a property name after '.' at position 5, found the end of the expression"
        );
        assert_eq!(
            parse("parameters").unwrap_err(),
            "expected '(' after function name 'parameters' at position 2"
        );
        assert_eq!(parse("").unwrap_err(), "empty expression");
        assert_eq!(parse("  ").unwrap_err(), "empty expression");
        assert_eq!(parse(",").unwrap_err(), "unexpected ',' at position 2");
    }

    #[test]
    fn user_defined_functions_are_named() {
        assert_eq!(
            parse("contoso.uniqueName('a')").unwrap_err(),
            "unsupported ARM template function 'contoso.uniqueName' at position 2 (user-defined functions are not supported)"
        );
    }

    #[test]
    fn deep_nesting_is_rejected_not_overflowed() {
        let text = format!("{}1{}", "a(".repeat(500), ")".repeat(500));
        assert_eq!(parse(&text).unwrap_err(), "too deep");
    }

    #[test]
    fn every_call_and_accessor_is_a_level() {
        let room = |text: &str, room: usize| super::parse(text, room).is_ok();
        // a(b(1)): three levels.
        assert!(room("a(b(1))", 3));
        assert!(!room("a(b(1))", 2));
        // a().x.y: three levels, whatever the chain is made of.
        assert!(room("a().x.y", 3));
        assert!(!room("a().x.y", 2));
        assert!(room("a()[0][1]", 3));
        assert!(!room("a()[0][1]", 2));
        // The index expression counts below its accessor.
        assert!(room("a()[b(c())]", 3));
        assert!(!room("a()[b(c())]", 2));
        // Wrapping a call in an accessor pushes its arguments down a level.
        assert!(room("a(b().x)[0]", 4));
        assert!(!room("a(b().x)[0]", 3));
        assert!(!room("f(a().x.y)", 3));
        // Long chains fail while being built, not when evaluated or dropped.
        let props = format!("a(){}", ".p".repeat(200_000));
        assert_eq!(super::parse(&props, 64), Err(ParseError::TooDeep));
        let index = format!("a(){}", "[0]".repeat(200_000));
        assert_eq!(super::parse(&index, 64), Err(ParseError::TooDeep));
    }
}
