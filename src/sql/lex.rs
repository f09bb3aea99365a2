//! Tokens: sqlparser's tokenizer, split into statements, and the token pre-pass that turns
//! the streaming constructs no stock dialect reads into ones it does (or cuts them out):
//!
//! | written                                   | parsed as                                   |
//! | ----------------------------------------- | ------------------------------------------- |
//! | `CREATE [OR REPLACE] STREAM s (...)`      | `CREATE TABLE s (...)`, kind stream         |
//! | `CREATE [OR REPLACE] PUMP p AS INSERT ...`| `INSERT ...`, kind pump `p`                 |
//! | `WATERMARK FOR ts AS expr` in a table     | cut out, kept as (column, expression)       |
//! | `SELECT STREAM x`                         | `SELECT x` (never `STREAM AS x`)            |
//! | `STEP(x BY INTERVAL ...)`                 | `STEP(x, INTERVAL ...)`                     |
//! | `WINDOWED BY STAGGER (... RANGE i)`       | `WINDOW __rillet_stagger AS (... RANGE i PRECEDING)` |
//! | `TUMBLE(TABLE t, ...)` (and HOP, ...)     | `TUMBLE(t, ...)`                            |
//! | `SESSION(TABLE t PARTITION BY k, ...)`    | `SESSION(t, __PARTITION_BY(k), ...)`        |
//!
//! Rewritten and inserted tokens keep the span of what they replace, so an error the parser
//! reports still points into the text as written.

use super::{dialect::StreamingDialect, SqlError};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Tokenizer, Word};

/// The name a stagger window is given in the `WINDOW` clause it is rewritten into.
pub const STAGGER_WINDOW: &str = "__rillet_stagger";
/// The function a session TVF's `PARTITION BY` keys are rewritten into.
pub const PARTITION_BY: &str = "__PARTITION_BY";

/// What a statement declares, besides the SQL the parser reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Head {
    /// A query or DDL as it stands.
    Plain,
    /// `CREATE [OR REPLACE] STREAM` (parsed as `CREATE TABLE`).
    Stream { replace: bool },
    /// `CREATE [OR REPLACE] PUMP name AS` (the rest is an `INSERT`).
    Pump {
        name: String,
        span: Span,
        replace: bool,
    },
}

/// One statement's tokens after the pre-pass.
#[derive(Debug, Clone)]
pub struct Statement {
    pub head: Head,
    pub tokens: Vec<TokenWithSpan>,
    /// `WATERMARK FOR column AS expression` cut out of a `CREATE TABLE`: the column and the
    /// expression's tokens.
    pub watermark: Option<(String, Span, Vec<TokenWithSpan>)>,
    /// Where the statement starts.
    pub span: Span,
}

/// The statements of `sql`, pre-processed.
pub fn statements(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let dialect = StreamingDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::at(e.message, e.location.line, e.location.column))?;
    let mut out = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut depth = 0i32;
    for t in tokens {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            Token::SemiColon if depth <= 0 => {
                depth = 0;
                push(&mut out, std::mem::take(&mut current))?;
                continue;
            }
            _ => {}
        }
        current.push(t);
    }
    push(&mut out, current)?;
    Ok(out)
}

fn push(out: &mut Vec<Statement>, tokens: Vec<TokenWithSpan>) -> Result<(), SqlError> {
    if tokens.iter().all(|t| is_blank(&t.token)) {
        return Ok(());
    }
    out.push(prepare(tokens)?);
    Ok(())
}

/// Whitespace and comments.
pub fn is_blank(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_) | Token::EOF)
}

fn word(t: &Token) -> Option<&Word> {
    match t {
        Token::Word(w) => Some(w),
        _ => None,
    }
}

/// True when `t` is the unquoted word `name` (case-insensitive).
pub fn is_word(t: &Token, name: &str) -> bool {
    word(t).is_some_and(|w| w.quote_style.is_none() && w.value.eq_ignore_ascii_case(name))
}

fn new_word(value: &str, span: Span) -> TokenWithSpan {
    TokenWithSpan {
        token: Token::make_word(value, None),
        span,
    }
}

fn tok(token: Token, span: Span) -> TokenWithSpan {
    TokenWithSpan { token, span }
}

/// Indices of the significant (non-blank) tokens.
fn significant(tokens: &[TokenWithSpan]) -> Vec<usize> {
    (0..tokens.len())
        .filter(|&i| !is_blank(&tokens[i].token))
        .collect()
}

fn prepare(mut tokens: Vec<TokenWithSpan>) -> Result<Statement, SqlError> {
    let sig = significant(&tokens);
    let span = tokens[sig[0]].span;
    let at = |k: usize| sig.get(k).map(|&i| &tokens[i].token);
    let mut head = Head::Plain;
    let mut watermark = None;
    if at(0).is_some_and(|t| is_word(t, "CREATE")) {
        let mut k = 1;
        if at(1).is_some_and(|t| is_word(t, "OR")) && at(2).is_some_and(|t| is_word(t, "REPLACE")) {
            k = 3;
        }
        let replace = k == 3;
        if at(k).is_some_and(|t| is_word(t, "STREAM")) {
            head = Head::Stream { replace };
            let i = sig[k];
            tokens[i] = new_word("TABLE", tokens[i].span);
        } else if at(k).is_some_and(|t| is_word(t, "PUMP")) {
            let Some(&name_at) = sig.get(k + 1) else {
                return Err(SqlError::span("CREATE PUMP needs a name, e.g. CREATE OR REPLACE PUMP \"STREAM_PUMP\" AS INSERT INTO ...", tokens[sig[k]].span));
            };
            let name = match &tokens[name_at].token {
                Token::Word(w) if !is_word(&tokens[name_at].token, "AS") => w.value.clone(),
                other => {
                    return Err(SqlError::span(
                        format!("CREATE PUMP needs a name, found {other}"),
                        tokens[name_at].span,
                    ))
                }
            };
            let pump_span = tokens[name_at].span;
            if !at(k + 2).is_some_and(|t| is_word(t, "AS")) {
                let where_ = sig.get(k + 2).map_or(pump_span, |&i| tokens[i].span);
                return Err(SqlError::span(
                    format!("CREATE PUMP {name} needs AS INSERT INTO <stream> SELECT STREAM ..."),
                    where_,
                ));
            }
            head = Head::Pump {
                name,
                span: pump_span,
                replace,
            };
            tokens.drain(..=sig[k + 2]);
        } else if at(k).is_some_and(|t| is_word(t, "TABLE")) {
            watermark = cut_watermark(&mut tokens)?;
        }
    }
    rewrite(&mut tokens)?;
    Ok(Statement {
        head,
        tokens,
        watermark,
        span,
    })
}

/// Cuts `[,] WATERMARK FOR col AS expr` out of a `CREATE TABLE` column list.
fn cut_watermark(
    tokens: &mut Vec<TokenWithSpan>,
) -> Result<Option<(String, Span, Vec<TokenWithSpan>)>, SqlError> {
    let mut depth = 0;
    let mut found = None;
    for (i, t) in tokens.iter().enumerate() {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 1 && is_word(&t.token, "WATERMARK") => {
                found = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(start) = found else { return Ok(None) };
    let sig: Vec<usize> = (start..tokens.len())
        .filter(|&i| !is_blank(&tokens[i].token))
        .collect();
    let bad = |span| {
        SqlError::span(
            "WATERMARK needs the form WATERMARK FOR <column> AS <column> - INTERVAL '5' SECOND",
            span,
        )
    };
    if sig.len() < 4 || !is_word(&tokens[sig[1]].token, "FOR") {
        return Err(bad(tokens[start].span));
    }
    let (column, column_span) = match &tokens[sig[2]].token {
        Token::Word(w) => (w.value.clone(), tokens[sig[2]].span),
        _ => return Err(bad(tokens[sig[2]].span)),
    };
    if !is_word(&tokens[sig[3]].token, "AS") {
        return Err(bad(tokens[sig[3]].span));
    }
    // The expression runs to the next comma or the closing parenthesis of the column list.
    let mut end = sig[3] + 1;
    let mut d = 0;
    while end < tokens.len() {
        match tokens[end].token {
            Token::LParen => d += 1,
            Token::RParen if d == 0 => break,
            Token::RParen => d -= 1,
            Token::Comma if d == 0 => break,
            _ => {}
        }
        end += 1;
    }
    let expr: Vec<TokenWithSpan> = tokens[sig[3] + 1..end].to_vec();
    // Drop the comma before it (or after it, when it comes first).
    let mut from = start;
    let mut back = start;
    while back > 0 && is_blank(&tokens[back - 1].token) {
        back -= 1;
    }
    let mut to = end;
    if back > 0 && tokens[back - 1].token == Token::Comma {
        from = back - 1;
    } else if to < tokens.len() && tokens[to].token == Token::Comma {
        to += 1;
    }
    tokens.drain(from..to);
    Ok(Some((column, column_span, expr)))
}

/// The token rewrites that apply anywhere in a statement.
fn rewrite(tokens: &mut Vec<TokenWithSpan>) -> Result<(), SqlError> {
    let mut i = 0;
    // Open parentheses: whether each belongs to a STEP call or a window TVF call.
    let mut stack: Vec<Paren> = Vec::new();
    while i < tokens.len() {
        let next = next_significant(tokens, i + 1);
        match &tokens[i].token {
            Token::LParen => {
                let opener = prev_significant(tokens, i).map(|p| &tokens[p].token);
                let kind = match opener {
                    Some(t) if is_word(t, "STEP") => Paren::Step,
                    Some(t)
                        if ["TUMBLE", "HOP", "CUMULATE", "SESSION"]
                            .iter()
                            .any(|n| is_word(t, n)) =>
                    {
                        Paren::Tvf
                    }
                    _ => Paren::Other,
                };
                stack.push(kind);
                if kind == Paren::Tvf {
                    drop_table_keyword(tokens, i + 1);
                }
            }
            Token::RParen => {
                stack.pop();
            }
            Token::Comma | Token::RArrow if stack.last() == Some(&Paren::Tvf) => {
                drop_table_keyword(tokens, i + 1);
            }
            t if is_word(t, "SELECT") => {
                if let Some(n) = next {
                    // `SELECT STREAM x`: the keyword goes, never read as `STREAM AS x`. A
                    // column named stream (`SELECT stream, x`, `SELECT stream FROM t`) stays.
                    let after = next_significant(tokens, n + 1).map(|a| &tokens[a].token);
                    let column = after.is_none_or(|a| {
                        matches!(a, Token::Comma | Token::Period | Token::EOF)
                            || is_word(a, "FROM")
                            || is_word(a, "AS")
                    });
                    if is_word(&tokens[n].token, "STREAM") && !column {
                        tokens.remove(n);
                    }
                }
            }
            t if is_word(t, "BY") && stack.last() == Some(&Paren::Step) => {
                tokens[i].token = Token::Comma;
            }
            t if is_word(t, "PARTITION") && stack.last() == Some(&Paren::Tvf) => {
                partition_argument(tokens, i)?;
            }
            t if is_word(t, "WINDOWED")
                && next.is_some_and(|n| is_word(&tokens[n].token, "BY")) =>
            {
                stagger(tokens, i)?;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Paren {
    Step,
    Tvf,
    Other,
}

fn next_significant(tokens: &[TokenWithSpan], from: usize) -> Option<usize> {
    (from..tokens.len()).find(|&i| !is_blank(&tokens[i].token))
}

fn prev_significant(tokens: &[TokenWithSpan], before: usize) -> Option<usize> {
    (0..before).rev().find(|&i| !is_blank(&tokens[i].token))
}

/// `TABLE t` (or `TABLE (query)`) as a window TVF's argument: the keyword goes.
fn drop_table_keyword(tokens: &mut Vec<TokenWithSpan>, from: usize) {
    if let Some(n) = next_significant(tokens, from) {
        if word(&tokens[n].token)
            .is_some_and(|w| w.keyword == Keyword::TABLE && w.quote_style.is_none())
        {
            if let Some(after) = next_significant(tokens, n + 1) {
                // `TABLE t`, or `TABLE (SELECT ...)`: the argument without the keyword.
                if matches!(tokens[after].token, Token::Word(_) | Token::LParen) {
                    tokens.remove(n);
                }
            }
        }
    }
}

/// `t PARTITION BY k` or `t PARTITION BY (k1, k2)` inside `SESSION(...)`:
/// `t, __PARTITION_BY(k1, k2)`.
fn partition_argument(tokens: &mut Vec<TokenWithSpan>, at: usize) -> Result<(), SqlError> {
    let span = tokens[at].span;
    let Some(by) = next_significant(tokens, at + 1).filter(|&n| is_word(&tokens[n].token, "BY"))
    else {
        return Err(SqlError::span("expected PARTITION BY <column>", span));
    };
    let Some(first) = next_significant(tokens, by + 1) else {
        return Err(SqlError::span("PARTITION BY needs a column", span));
    };
    let mut replacement = vec![tok(Token::Comma, span), new_word(PARTITION_BY, span)];
    if tokens[first].token != Token::LParen {
        // One (possibly qualified) column: put it in parentheses.
        let mut last = first;
        while let Some(dot) =
            next_significant(tokens, last + 1).filter(|&n| tokens[n].token == Token::Period)
        {
            match next_significant(tokens, dot + 1) {
                Some(n) => last = n,
                None => break,
            }
        }
        let key: Vec<TokenWithSpan> = tokens[first..=last].to_vec();
        replacement.push(tok(Token::LParen, span));
        replacement.extend(key);
        replacement.push(tok(Token::RParen, span));
        tokens.splice(at..=last, replacement);
        return Ok(());
    }
    // A parenthesised list stays as the call's argument list.
    tokens.splice(at..first, replacement);
    Ok(())
}

/// `WINDOWED BY STAGGER ( ... RANGE INTERVAL ... )` into a named window the parser reads.
fn stagger(tokens: &mut Vec<TokenWithSpan>, at: usize) -> Result<(), SqlError> {
    let span = tokens[at].span;
    let by = next_significant(tokens, at + 1).filter(|&n| is_word(&tokens[n].token, "BY"));
    let stag = by
        .and_then(|b| next_significant(tokens, b + 1))
        .filter(|&n| is_word(&tokens[n].token, "STAGGER"));
    let open = stag
        .and_then(|s| next_significant(tokens, s + 1))
        .filter(|&n| tokens[n].token == Token::LParen);
    let Some(open) = open else {
        return Err(SqlError::span(
            "WINDOWED BY needs STAGGER (PARTITION BY <keys> RANGE INTERVAL '1' MINUTE)",
            span,
        ));
    };
    let mut depth = 0;
    let mut close = None;
    for (j, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth -= 1;
                if depth == 0 {
                    close = Some(j);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(close) = close else {
        return Err(SqlError::span(
            "WINDOWED BY STAGGER ( is never closed",
            span,
        ));
    };
    let close_span = tokens[close].span;
    tokens.insert(close, new_word("PRECEDING", close_span));
    tokens.insert(
        close,
        tok(
            Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
            close_span,
        ),
    );
    tokens.splice(
        at..open,
        [
            new_word("WINDOW", span),
            tok(
                Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                span,
            ),
            new_word(STAGGER_WINDOW, span),
            tok(
                Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                span,
            ),
            new_word("AS", span),
            tok(
                Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                span,
            ),
        ],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement's tokens without whitespace (rewrites do not keep spacing).
    fn text(s: &Statement) -> String {
        s.tokens
            .iter()
            .filter(|t| !is_blank(&t.token))
            .map(|t| t.token.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn splits_and_rewrites() {
        let sql = "CREATE OR REPLACE STREAM \"S\" (a INT);\n\
                   CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"S\" SELECT STREAM x FROM t \
                   GROUP BY STEP(t.ROWTIME BY INTERVAL '60' SECOND);";
        let st = statements(sql).unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].head, Head::Stream { replace: true });
        assert!(text(&st[0]).starts_with("CREATE OR REPLACE TABLE"));
        assert!(matches!(&st[1].head, Head::Pump { name, .. } if name == "P"));
        let t = text(&st[1]);
        assert!(t.starts_with("INSERT INTO"), "{t}");
        assert!(t.contains("SELECT x FROM"), "{t}");
        assert!(
            t.contains("STEP ( t . ROWTIME , INTERVAL '60' SECOND )"),
            "{t}"
        );
    }

    #[test]
    fn stagger_and_tvf_arguments() {
        let st = statements(
            "SELECT STREAM k FROM s WINDOWED BY STAGGER (PARTITION BY k RANGE INTERVAL '1' MINUTE)",
        )
        .unwrap();
        let t = text(&st[0]);
        assert!(
            t.contains(
                "WINDOW __rillet_stagger AS ( PARTITION BY k RANGE INTERVAL '1' MINUTE PRECEDING )"
            ),
            "{t}"
        );
        let st = statements(
            "SELECT * FROM TABLE(SESSION(TABLE Bid PARTITION BY item, DESCRIPTOR(ts), INTERVAL '5' MINUTES))",
        )
        .unwrap();
        let t = text(&st[0]);
        assert!(
            t.contains("SESSION ( Bid , __PARTITION_BY ( item ) , DESCRIPTOR ( ts )"),
            "{t}"
        );
    }

    #[test]
    fn watermark_is_cut_out() {
        let st = statements(
            "CREATE TABLE Bid (ts TIMESTAMP(3), price DOUBLE, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)",
        )
        .unwrap();
        let (col, _, expr) = st[0].watermark.clone().unwrap();
        assert_eq!(col, "ts");
        let e: String = expr.iter().map(|t| t.token.to_string()).collect();
        assert_eq!(e.trim(), "ts - INTERVAL '5' SECOND");
        assert!(text(&st[0]).ends_with("price DOUBLE )"), "{}", text(&st[0]));
    }
}
