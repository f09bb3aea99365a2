//! From parsed statements to [`QueryPlan`]s and [`Program`]s.
//!
//! A `SELECT` is planned in three parts, as the Python API builds a query:
//!
//! * what happens to each row before the window (`WHERE`, computed keys and aggregate
//!   inputs, the steps of a stateless sub-query it reads);
//! * the window, keys and aggregates: from `GROUP BY STEP(...)` / `FLOOR(... TO ...)`
//!   (Kinesis), `FROM TABLE(TUMBLE|HOP|CUMULATE|SESSION(...))` with `GROUP BY window_start,
//!   window_end` (Flink), `agg(...) OVER w` with `WINDOW w AS (... RANGE ... PRECEDING)`
//!   (sliding), `WINDOWED BY STAGGER`, or `TOP_K_ITEMS_TUMBLING` /
//!   `COUNT_DISTINCT_ITEMS_TUMBLING`;
//! * what happens to the rows the window emits: the select list, `HAVING`, `ORDER BY`
//!   within each emitted moment, and `ROW_NUMBER() OVER (PARTITION BY window_start,
//!   window_end ...)` (window Top-N). A stateless `SELECT` over a windowed sub-query adds
//!   to these.
//!
//! Names resolve case-insensitively when unquoted and unambiguous, exactly when quoted.
//! `ROWTIME` is the input's time: the event time the caller declared, or else the arrival
//! time; over a window's output it is the window's end.

use super::lex::{self, Head, Statement as Lexed, PARTITION_BY, STAGGER_WINDOW};
use super::{
    dialect::StreamingDialect, Aggregate, Duration, Input, Inputs, Program, Pump, QueryPlan,
    Scalar, SqlError, Step, StreamDecl, TableDecl, Time, Window,
};
#[cfg(test)]
use crate::error::Error;
use crate::error::Result;
use sqlparser::ast::{
    self, CeilFloorKind, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, Ident, NamedWindowExpr, ObjectName, ObjectNamePart, SelectItem, SetExpr, Spanned,
    Statement, TableFactor, Value, VisitMut, VisitorMut, WindowFrameBound, WindowFrameUnits,
    WindowType,
};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Span, Token, TokenWithSpan};
use std::collections::BTreeMap;
use std::ops::ControlFlow;

mod join;

type Res<T> = std::result::Result<T, SqlError>;
/// Output columns and their values.
type Named = Vec<(String, Scalar)>;

/// Plans one `SELECT` over the named inputs.
pub fn plan_query(sql: &str, inputs: &Inputs) -> Result<QueryPlan> {
    plan_query_inner(sql, inputs).map_err(|e| e.into_error(sql))
}

fn plan_query_inner(sql: &str, inputs: &Inputs) -> Res<QueryPlan> {
    let statements = lex::statements(sql)?;
    let Some(first) = statements.first() else {
        return Err(SqlError::at("the SQL text is empty; give one SELECT", 0, 0));
    };
    if statements.len() > 1 || first.head != Head::Plain {
        return Err(SqlError::span(
            "rl.sql() runs one SELECT; an application with CREATE STREAM and CREATE PUMP \
             statements runs with rl.Application(text, SOURCE_SQL_STREAM_001=source)",
            if statements.len() > 1 {
                statements[1].span
            } else {
                first.span
            },
        ));
    }
    let env = Env {
        inputs,
        streams: BTreeMap::new(),
        tables: BTreeMap::new(),
    };
    match parse(first)? {
        Statement::Query(q) => {
            let mut plan = env.query(&q, false)?;
            plan.text = sql.trim().to_string();
            Ok(plan)
        }
        other => Err(SqlError::span(
            "rl.sql() runs a SELECT; this statement is not one (CREATE STREAM, CREATE PUMP and \
             CREATE TABLE belong in rl.Application)",
            other.span(),
        )),
    }
}

/// Plans a Kinesis Data Analytics application (or a Flink script of `CREATE TABLE`s and
/// `INSERT INTO ... SELECT`s).
pub fn plan_application(sql: &str, inputs: &Inputs) -> Result<Program> {
    plan_application_inner(sql, inputs).map_err(|e| e.into_error(sql))
}

fn plan_application_inner(sql: &str, inputs: &Inputs) -> Res<Program> {
    let statements = lex::statements(sql)?;
    if statements.is_empty() {
        return Err(SqlError::at(
            "the application is empty; give CREATE STREAM and CREATE PUMP statements",
            0,
            0,
        ));
    }
    let mut program = Program::default();
    let mut parsed = Vec::new();
    // Declarations first: a pump may read a stream declared after it.
    for st in &statements {
        let stmt = parse(st)?;
        if let Statement::CreateTable(ct) = &stmt {
            let name = object_name(&ct.name)?;
            let columns = ct
                .columns
                .iter()
                .map(|c| (c.name.value.clone(), c.data_type.to_string()))
                .collect();
            let unquoted: Vec<String> = std::iter::once(&name)
                .chain(ct.columns.iter().map(|c| &c.name))
                .filter(|id| id.quote_style.is_none())
                .map(|id| id.value.clone())
                .collect();
            if let Head::Stream { replace } = st.head {
                // CREATE OR REPLACE replaces a stream of that name declared before it.
                if let Some(at) = program.streams.iter().position(|s: &StreamDecl| {
                    s.name == name.value
                        || (name.quote_style.is_none() && s.name.eq_ignore_ascii_case(&name.value))
                }) {
                    if !replace {
                        return Err(SqlError::span(
                            format!(
                                "stream {} is created twice; CREATE OR REPLACE STREAM replaces it",
                                name.value
                            ),
                            name.span,
                        ));
                    }
                    program.streams.remove(at);
                }
                program.streams.push(StreamDecl {
                    name: name.value.clone(),
                    unquoted,
                    columns,
                });
            } else {
                let (time, watermark) = match &st.watermark {
                    Some((col, span, tokens)) => {
                        let expr = parse_expr(tokens.clone(), *span)?;
                        (Some(col.clone()), Some(watermark_delay(col, &expr, *span)?))
                    }
                    None => (None, None),
                };
                program.tables.push(TableDecl {
                    name: name.value.clone(),
                    time,
                    watermark,
                });
            }
        }
        parsed.push(stmt);
    }
    let env = Env {
        inputs,
        streams: program
            .streams
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect(),
        tables: program
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.clone()))
            .collect(),
    };
    let mut unnamed = 0;
    for (st, stmt) in statements.iter().zip(parsed) {
        match stmt {
            Statement::CreateTable(_) => {}
            Statement::Insert(insert) => {
                let (name, replace) = match &st.head {
                    Head::Pump { name, replace, .. } => (name.clone(), *replace),
                    _ => {
                        unnamed += 1;
                        (format!("INSERT_{unnamed}"), false)
                    }
                };
                if let Some(at) = program.pumps.iter().position(|p| p.name == name) {
                    // CREATE OR REPLACE PUMP replaces one of that name created before it.
                    if !replace {
                        let span = match &st.head {
                            Head::Pump { span, .. } => *span,
                            _ => st.span,
                        };
                        return Err(SqlError::span(
                            format!(
                                "pump {name} is created twice; CREATE OR REPLACE PUMP replaces it"
                            ),
                            span,
                        ));
                    }
                    program.pumps.remove(at);
                }
                program.pumps.push(env.pump(name, &insert, st)?);
            }
            Statement::Query(q) => {
                return Err(SqlError::span(
                    "a SELECT on its own produces no stream in an application: insert it \
                     into one, CREATE OR REPLACE PUMP \"P\" AS INSERT INTO \"S\" SELECT STREAM ...",
                    q.span(),
                ))
            }
            other => {
                return Err(SqlError::span(
                    format!(
                        "{} is not supported in an application; it takes CREATE STREAM, \
                         CREATE PUMP ... AS INSERT INTO ... SELECT, and CREATE TABLE ... \
                         (WATERMARK FOR ...)",
                        statement_kind(&other)
                    ),
                    st.span,
                ))
            }
        }
    }
    if program.pumps.is_empty() {
        return Err(SqlError::span(
            "the application has no pump, so it computes nothing: add CREATE OR REPLACE PUMP \
             \"P\" AS INSERT INTO \"S\" SELECT STREAM ...",
            statements[0].span,
        ));
    }
    Ok(program)
}

fn statement_kind(s: &Statement) -> String {
    let text = s.to_string();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse(st: &Lexed) -> Res<Statement> {
    let dialect = StreamingDialect;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(st.tokens.clone());
    let stmt = parser
        .parse_statement()
        .map_err(|e| parser_error(e, st.span))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError::span(
            format!("unexpected {} after the end of the statement", next.token),
            next.span,
        ));
    }
    Ok(stmt)
}

fn parse_expr(tokens: Vec<TokenWithSpan>, span: Span) -> Res<Expr> {
    let dialect = StreamingDialect;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    parser.parse_expr().map_err(|e| parser_error(e, span))
}

/// sqlparser's message ("Expected: ..., found: ... at Line: 3, Column: 7") as an error at
/// that place.
fn parser_error(e: ParserError, fallback: Span) -> SqlError {
    let text = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return SqlError::span("the statement nests too deeply", fallback)
        }
    };
    if let Some(at) = text.rfind(" at Line: ") {
        let place = &text[at + " at Line: ".len()..];
        let mut parts = place.split(", Column: ");
        let line = parts.next().and_then(|l| l.trim().parse().ok());
        let column = parts.next().and_then(|c| c.trim().parse().ok());
        if let (Some(line), Some(column)) = (line, column) {
            return SqlError::at(syntax_hint(&text[..at]), line, column);
        }
    }
    SqlError::span(syntax_hint(&text), fallback)
}

fn syntax_hint(message: &str) -> String {
    format!("syntax error: {message}")
}

/// `ts - INTERVAL '5' SECOND` (or `ts`) as the watermark delay.
fn watermark_delay(column: &str, expr: &Expr, span: Span) -> Res<Duration> {
    match expr {
        Expr::Identifier(id) if id.value.eq_ignore_ascii_case(column) => Ok(Duration::Count(0)),
        Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::Minus,
            right,
        } => match left.as_ref() {
            Expr::Identifier(id) if id.value.eq_ignore_ascii_case(column) => duration(right),
            _ => Err(SqlError::span(
                format!("WATERMARK FOR {column} AS ... must be {column} - INTERVAL '<n>' <unit>"),
                span,
            )),
        },
        _ => Err(SqlError::span(
            format!("WATERMARK FOR {column} AS ... must be {column} - INTERVAL '<n>' <unit>"),
            span,
        )),
    }
}

fn object_name(name: &ObjectName) -> Res<Ident> {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(id)) => Ok(id.clone()),
        _ => Err(SqlError::span(
            format!("{name} is not a plain name"),
            name.span(),
        )),
    }
}

/// True when `id` names `name`: exactly when quoted, ignoring case when not.
fn names(id: &Ident, name: &str) -> bool {
    if id.quote_style.is_some() {
        id.value == name
    } else {
        id.value.eq_ignore_ascii_case(name)
    }
}

/// True when `id` names `name`, a name a SQL text declared: as [`names`], and a quoted
/// upper-case reference also finds a name declared unquoted (`unquoted` lists those), since
/// Kinesis folded unquoted names to upper case.
fn declared(id: &Ident, name: &str, unquoted: &[String]) -> bool {
    names(id, name)
        || (id.quote_style.is_some()
            && unquoted.iter().any(|u| u == name)
            && id.value == name.to_uppercase())
}

fn is_rowtime(id: &Ident) -> bool {
    names(id, "ROWTIME")
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

fn unsupported(what: &str, span: Span) -> SqlError {
    SqlError::span(format!("{what} is not supported"), span)
}

// ---------------------------------------------------------------------------------------
// Relations: what FROM reads.

/// A FROM item, planned.
struct Rel {
    input: Input,
    /// The input's declared event time (a column), if the caller or a declaration fixed it.
    time: Option<String>,
    watermark: Option<Duration>,
    /// Steps of a stateless sub-query this reads through.
    steps: Vec<Step>,
    columns: Option<Vec<String>>,
    /// Names that may qualify its columns.
    qualifiers: Vec<Ident>,
    /// Its columns declared unquoted in the SQL text (see [`declared`]).
    folded: Vec<String>,
    /// A window TVF over it.
    tvf: Option<(Window, String, Vec<String>, Span)>,
    /// The window output columns a TVF adds (`window_start`, `window_end`, `window_time`).
    windowed: Option<QueryPlan>,
    /// A column of this input that is Flink's `window_time` of the query it comes from (a
    /// window's end less a millisecond): a window function on it takes the upstream's
    /// watermark less a millisecond.
    window_time: Option<String>,
    /// What it is in a join (a stream, or a table).
    kind: Kind,
    /// The inputs a join read, for names qualified by any of them (empty: not a join).
    sides: Vec<Side>,
    /// Flink's `FOR SYSTEM_TIME AS OF <time>` on it (a temporal join's other side).
    as_of: Option<Expr>,
    /// A sub-query's select that only keeps columns, not run per batch (see
    /// [`Env::derived`]): a join runs it, as its output's names depend on the exact columns.
    narrowed: Option<Step>,
}

/// What an input is in a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A stream: a source read as a stream, a query, an in-application stream.
    Stream,
    /// A DataFrame or Arrow table given as it is: the table of a join without a time bound,
    /// a stream otherwise.
    Frame,
    /// A reference file (`rl.reference`): always a table.
    Reference,
}

/// One input of a join, for name resolution: its own columns and what each is called in
/// the join's output.
#[derive(Debug, Clone)]
struct Side {
    qualifiers: Vec<Ident>,
    folded: Vec<String>,
    columns: Vec<String>,
    /// Per column: its name in the join's output, or why it cannot be read there.
    out: Vec<Result<String, String>>,
    /// Its event-time column, if it has one.
    time: Option<String>,
}

struct Env<'a> {
    inputs: &'a Inputs,
    streams: BTreeMap<String, StreamDecl>,
    tables: BTreeMap<String, TableDecl>,
}

const WINDOW_COLUMNS: [&str; 3] = ["window_start", "window_end", "window_time"];

impl Env<'_> {
    fn pump(&self, name: String, insert: &ast::Insert, st: &Lexed) -> Res<Pump> {
        let target = match &insert.table {
            ast::TableObject::TableName(n) => object_name(n)?,
            other => return Err(unsupported(&format!("INSERT INTO {other}"), st.span)),
        };
        let Some(decl) = self
            .streams
            .values()
            .find(|s| declared(&target, &s.name, &s.unquoted))
            .cloned()
        else {
            return Err(SqlError::span(
                format!(
                    "stream {} is not created; add CREATE OR REPLACE STREAM \"{}\" (col TYPE, ...) \
                     before the pump{}",
                    target.value,
                    target.value,
                    known(self.streams.keys())
                ),
                target.span,
            ));
        };
        let Some(source) = &insert.source else {
            return Err(SqlError::span("INSERT INTO needs a SELECT", target.span));
        };
        let mut query = self.query(source, true)?;
        // Positional, as KDA inserts: the select list fills the stream's columns in order, or
        // the columns listed after the stream's name.
        let produced: Vec<String> = query
            .columns
            .iter()
            .filter(|c| c.as_str() != "ROWTIME")
            .cloned()
            .collect();
        let targets: Vec<String> = if insert.columns.is_empty() {
            decl.columns.iter().map(|(n, _)| n.clone()).collect()
        } else {
            let mut out = Vec::new();
            for c in &insert.columns {
                let id = object_name(c)?;
                let Some((n, _)) = decl
                    .columns
                    .iter()
                    .find(|(n, _)| declared(&id, n, &decl.unquoted))
                else {
                    return Err(SqlError::span(
                        format!(
                            "stream {} has no column {}; its columns are {}",
                            decl.name,
                            id.value,
                            list(decl.columns.iter().map(|(n, _)| n))
                        ),
                        id.span,
                    ));
                };
                out.push(n.clone());
            }
            out
        };
        if produced.len() != targets.len() {
            return Err(SqlError::span(
                format!(
                    "the SELECT gives {} columns ({}) and stream {} takes {} ({}); give one \
                     value per column, in order",
                    produced.len(),
                    list(produced.iter()),
                    decl.name,
                    targets.len(),
                    list(targets.iter())
                ),
                source.span(),
            ));
        }
        let mut select = vec![("ROWTIME".to_string(), Scalar::Col("ROWTIME".into()))];
        for (name, _) in &decl.columns {
            match targets.iter().position(|t| t == name) {
                Some(i) => select.push((name.clone(), Scalar::Col(produced[i].clone()))),
                None => select.push((name.clone(), Scalar::Null)),
            }
        }
        query.post.push(Step::Select(select));
        query.post.push(Step::Cast(decl.columns.clone()));
        query.columns = std::iter::once("ROWTIME".to_string())
            .chain(decl.columns.iter().map(|(n, _)| n.clone()))
            .collect();
        query.rowtime = Some("ROWTIME".into());
        query.window_start = None;
        query.text = st
            .tokens
            .iter()
            .map(|t| t.token.to_string())
            .collect::<String>()
            .trim()
            .to_string();
        Ok(Pump {
            name,
            into: decl.name,
            query,
        })
    }

    /// Plans a query; `rowtime`: keep a `ROWTIME` column in its output (a sub-query, a pump).
    fn query(&self, q: &ast::Query, rowtime: bool) -> Res<QueryPlan> {
        if let Some(with) = &q.with {
            return Err(unsupported("WITH (common table expressions)", with.span()));
        }
        if let Some(limit) = &q.limit_clause {
            return Err(SqlError::span(
                "LIMIT has no end on a stream; keep the first N per window with ROW_NUMBER() \
                 OVER (PARTITION BY window_start, window_end ORDER BY ...) <= N",
                limit.span(),
            ));
        }
        let select = match q.body.as_ref() {
            SetExpr::Select(s) => s,
            SetExpr::Query(inner) if q.order_by.is_none() => return self.query(inner, rowtime),
            other => {
                return Err(unsupported(
                    "set operations (UNION, INTERSECT, EXCEPT) and VALUES",
                    other.span(),
                ))
            }
        };
        let order: Vec<ast::OrderByExpr> = match &q.order_by {
            None => Vec::new(),
            Some(ob) => match &ob.kind {
                ast::OrderByKind::Expressions(e) => e.clone(),
                ast::OrderByKind::All(_) => {
                    return Err(unsupported("ORDER BY ALL", q.span()));
                }
            },
        };
        self.select(select, &order, rowtime)
    }

    fn select(&self, s: &ast::Select, order: &[ast::OrderByExpr], rowtime: bool) -> Res<QueryPlan> {
        for (present, what) in [
            (
                s.distinct.is_some(),
                "SELECT DISTINCT (use COUNT(DISTINCT x) per window)",
            ),
            (s.top.is_some(), "SELECT TOP"),
            (s.into.is_some(), "SELECT INTO"),
            (!s.lateral_views.is_empty(), "LATERAL VIEW"),
            (s.qualify.is_some(), "QUALIFY"),
            (
                !s.cluster_by.is_empty() || !s.distribute_by.is_empty() || !s.sort_by.is_empty(),
                "CLUSTER/DISTRIBUTE/SORT BY",
            ),
        ] {
            if present {
                return Err(unsupported(what, s.select_token.0.span));
            }
        }
        let (rel, selection) = self.from(s)?;
        let with_rest;
        let s = if selection == s.selection {
            s
        } else {
            with_rest = ast::Select {
                selection,
                ..s.clone()
            };
            &with_rest
        };
        let group: Vec<Expr> = match &s.group_by {
            GroupByExpr::Expressions(e, m) if m.is_empty() => e.clone(),
            GroupByExpr::Expressions(_, _) | GroupByExpr::All(_) => {
                return Err(unsupported(
                    "GROUP BY ALL, ROLLUP, CUBE and GROUPING SETS",
                    s.span(),
                ))
            }
        };
        let scope = Scope::of(&rel);
        // What kind of query: windowed by GROUP BY / a TVF, sliding (OVER), or row by row.
        let mut calls = Calls::default();
        for item in &s.projection {
            if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item {
                calls.collect(e)?;
            }
        }
        if let Some(h) = &s.having {
            calls.collect(h)?;
        }
        for o in order {
            calls.collect(&o.expr)?;
        }
        let stagger = s.named_window.iter().find(|w| w.0.value == STAGGER_WINDOW);
        if !calls.over.is_empty() && (!group.is_empty() || rel.tvf.is_some()) {
            return Err(SqlError::span(
                "an aggregate OVER a window (sliding) cannot be mixed with GROUP BY in one \
                 SELECT; compute it in a query over this one's output",
                calls.over[0].span(),
            ));
        }
        if let Some(windowed) = &rel.windowed {
            if group.is_empty()
                && calls.aggs.is_empty()
                && calls.over.is_empty()
                && stagger.is_none()
            {
                return self.over_output(windowed.clone(), &rel, s, order, rowtime);
            }
        }
        if let Some(def) = stagger {
            if !group.is_empty() || !calls.over.is_empty() || rel.tvf.is_some() {
                return Err(SqlError::span(
                    "WINDOWED BY STAGGER groups by its own PARTITION BY; drop GROUP BY, OVER and window TVFs",
                    s.select_token.0.span,
                ));
            }
            return self.stagger(rel, &scope, s, &calls, order, rowtime, def);
        }
        if !calls.over.is_empty() {
            return self.sliding(rel, &scope, s, &calls, order, rowtime);
        }
        if group.is_empty() && calls.aggs.is_empty() && rel.tvf.is_none() {
            return self.rows(rel, &scope, s, order, rowtime);
        }
        if group.is_empty() && calls.aggs.is_empty() {
            return self.window_rows(rel, &scope, s, order, rowtime);
        }
        self.grouped(rel, &scope, s, &group, &calls, order, rowtime)
    }

    // -- FROM ----------------------------------------------------------------------------

    /// What `FROM` reads, with its joins; and the `WHERE` left once a comma join (`FROM a,
    /// b WHERE a.k = b.k AND ...`) has taken its condition from it.
    fn from(&self, s: &ast::Select) -> Res<(Rel, Option<Expr>)> {
        let Some(first) = s.from.first() else {
            return Err(SqlError::span(
                "a streaming SELECT needs FROM <stream>",
                s.select_token.0.span,
            ));
        };
        let mut pool = Vec::new();
        if let Some(w) = &s.selection {
            join::conjuncts(w, &mut pool);
        }
        let before = pool.len();
        let mut rel = self.factor(&first.relation)?;
        for j in &first.joins {
            rel = self.join_on(rel, j, &mut pool)?;
        }
        for more in &s.from[1..] {
            let mut right = self.factor(&more.relation)?;
            for j in &more.joins {
                right = self.join_on(right, j, &mut pool)?;
            }
            rel = self.join_comma(rel, right, &mut pool, more.relation.span())?;
        }
        if let Some(e) = &rel.as_of {
            return Err(SqlError::span(
                "FOR SYSTEM_TIME AS OF is a temporal join's: FROM s JOIN t FOR SYSTEM_TIME AS OF \
                 s.time ON s.k = t.k",
                e.span(),
            ));
        }
        let selection = if s.from.len() > 1 || pool.len() != before {
            join::and_all(pool)
        } else {
            s.selection.clone()
        };
        Ok((rel, selection))
    }

    fn factor(&self, f: &TableFactor) -> Res<Rel> {
        match f {
            TableFactor::Table {
                name,
                alias,
                args,
                version,
                ..
            } => {
                if let Some(args) = args {
                    return Err(unsupported(
                        &format!("the table function {name}({})", args.args.len()),
                        f.span(),
                    ));
                }
                let id = object_name(name)?;
                let mut rel = self.named(&id)?;
                if let Some(a) = alias {
                    rel.qualifiers.push(a.name.clone());
                }
                match version {
                    None => {}
                    Some(ast::TableVersion::ForSystemTimeAsOf(e)) => rel.as_of = Some(e.clone()),
                    Some(other) => {
                        return Err(unsupported(&format!("{other}"), f.span()));
                    }
                }
                Ok(rel)
            }
            TableFactor::Derived {
                subquery,
                alias,
                lateral,
                ..
            } => {
                if *lateral {
                    return Err(unsupported("LATERAL", f.span()));
                }
                let mut rel = self.derived(subquery)?;
                if let Some(a) = alias {
                    rel.qualifiers = vec![a.name.clone()];
                }
                Ok(rel)
            }
            TableFactor::TableFunction { expr, alias } => {
                let mut rel = self.table_function(expr)?;
                if let Some(a) = alias {
                    rel.qualifiers.push(a.name.clone());
                }
                Ok(rel)
            }
            TableFactor::Function { name, .. } => Err(unsupported(
                &format!("FROM {name}(...) without TABLE(...)"),
                f.span(),
            )),
            other => Err(unsupported(&format!("FROM {other}"), other.span())),
        }
    }

    /// A name in FROM: an input the caller gave, or an in-application stream.
    fn named(&self, id: &Ident) -> Res<Rel> {
        if let Some(decl) = self
            .streams
            .values()
            .find(|s| declared(id, &s.name, &s.unquoted))
        {
            let mut columns: Vec<String> = decl.columns.iter().map(|(n, _)| n.clone()).collect();
            columns.insert(0, "ROWTIME".into());
            return Ok(Rel {
                folded: decl.unquoted.clone(),
                input: Input::Stream(decl.name.clone()),
                time: Some("ROWTIME".into()),
                watermark: None,
                steps: Vec::new(),
                columns: Some(columns),
                qualifiers: vec![id.clone()],
                tvf: None,
                windowed: None,
                window_time: None,
                kind: Kind::Stream,
                sides: Vec::new(),
                as_of: None,
                narrowed: None,
            });
        }
        let matches: Vec<&String> = self.inputs.0.keys().filter(|k| names(id, k)).collect();
        let key = match matches.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(SqlError::span(
                    format!(
                        "{} is not an input{}; pass it by that name, e.g. rl.sql(text, {}=source)",
                        id.value,
                        known(self.inputs.0.keys().chain(self.streams.keys())),
                        id.value
                    ),
                    id.span,
                ))
            }
            _ => match matches.iter().find(|k| k.as_str() == id.value) {
                Some(k) => (*k).clone(),
                None => {
                    return Err(SqlError::span(
                        format!(
                            "{} matches several inputs ({}); quote it to pick one",
                            id.value,
                            list(matches.iter())
                        ),
                        id.span,
                    ))
                }
            },
        };
        let info = &self.inputs.0[&key];
        let table = self
            .tables
            .values()
            .find(|t| t.name.eq_ignore_ascii_case(&key));
        let (time, watermark) = match (&info.time, table) {
            (Some(t), _) => (Some(t.clone()), None),
            (None, Some(t)) => (t.time.clone(), t.watermark.clone()),
            (None, None) => (None, None),
        };
        Ok(Rel {
            input: Input::Name(key),
            time,
            watermark,
            steps: Vec::new(),
            columns: info.columns.clone(),
            qualifiers: vec![id.clone()],
            folded: Vec::new(),
            tvf: None,
            windowed: None,
            window_time: info.window_time.clone(),
            kind: match info.kind.as_deref() {
                Some("frame") => Kind::Frame,
                Some("reference") => Kind::Reference,
                _ => Kind::Stream,
            },
            sides: Vec::new(),
            as_of: None,
            narrowed: None,
        })
    }

    /// A sub-query in FROM (or in `CURSOR(...)`).
    fn derived(&self, q: &ast::Query) -> Res<Rel> {
        let plan = self.query(q, true)?;
        if plan.window.is_some() || plan.rows_window.is_some() {
            return Ok(Rel {
                input: Input::Query(Box::new(plan.clone())),
                time: plan.rowtime.clone(),
                watermark: None,
                steps: Vec::new(),
                columns: Some(plan.columns.clone()),
                qualifiers: Vec::new(),
                folded: Vec::new(),
                tvf: None,
                window_time: plan.window_time.clone(),
                kind: Kind::Stream,
                sides: Vec::new(),
                as_of: None,
                narrowed: None,
                windowed: Some(plan),
            });
        }
        // A stateless sub-query: its steps run before this query's window.
        if plan.post.iter().any(|p| matches!(p, Step::Sort { .. })) {
            return Err(SqlError::span(
                "ORDER BY in a sub-query without a window is not supported; order the outer \
                 query's output",
                q.span(),
            ));
        }
        let time = match &plan.time {
            Time::Declared(t) | Time::Column(t) => Some(t.clone()),
            Time::Rowtime => None,
        };
        // `SELECT *` over an input whose columns are known only once it is read.
        let columns = (!plan.columns.iter().any(|c| c == "*")).then_some(plan.columns);
        // A select that only keeps columns (and names the time ROWTIME) changes nothing this
        // query's window reads (names resolve against `columns`): it is not run per batch.
        let mut steps = plan.steps;
        let mut narrowed = None;
        if let Some(Step::Select(items)) = steps.last() {
            let pure = items.iter().all(|(n, v)| match v {
                Scalar::Col(c) => c == n || n == "ROWTIME",
                _ => false,
            });
            if pure {
                narrowed = steps.pop();
            }
        }
        // What the sub-query reads: a table when it reads one by name and joins nothing.
        let kind = match &plan.input {
            Input::Name(n) if !steps.iter().any(|s| matches!(s, Step::Join(_))) => {
                match self.inputs.0.get(n).and_then(|i| i.kind.as_deref()) {
                    Some("frame") => Kind::Frame,
                    Some("reference") => Kind::Reference,
                    _ => Kind::Stream,
                }
            }
            _ => Kind::Stream,
        };
        Ok(Rel {
            input: plan.input,
            time,
            watermark: plan.watermark,
            steps,
            columns,
            qualifiers: Vec::new(),
            folded: Vec::new(),
            tvf: None,
            windowed: None,
            window_time: None,
            kind,
            sides: Vec::new(),
            as_of: None,
            narrowed,
        })
    }

    fn table_function(&self, expr: &Expr) -> Res<Rel> {
        let Expr::Function(f) = expr else {
            return Err(unsupported(&format!("TABLE({expr})"), expr.span()));
        };
        let name = f.name.to_string().to_ascii_uppercase();
        let args = function_args(f)?;
        match name.as_str() {
            "TUMBLE" | "HOP" | "CUMULATE" | "SESSION" => self.window_tvf(&name, &args, f.span()),
            "TOP_K_ITEMS_TUMBLING" | "COUNT_DISTINCT_ITEMS_TUMBLING" => {
                let plan = self.kda_tumbling(&name, &args, f.span())?;
                Ok(Rel {
                    input: Input::Query(Box::new(plan.clone())),
                    time: plan.rowtime.clone(),
                    watermark: None,
                    steps: Vec::new(),
                    columns: Some(plan.columns.clone()),
                    qualifiers: Vec::new(),
                    folded: Vec::new(),
                    tvf: None,
                    window_time: plan.window_time.clone(),
                    kind: Kind::Stream,
                    sides: Vec::new(),
                    as_of: None,
                    narrowed: None,
                    windowed: Some(plan),
                })
            }
            "RANDOM_CUT_FOREST" | "RANDOM_CUT_FOREST_WITH_EXPLANATION" | "HOTSPOTS" => {
                self.detector(&name, &args, f.span())
            }
            _ => Err(SqlError::span(
                format!(
                    "unknown table function {name}; rillet reads TUMBLE, HOP, CUMULATE, SESSION, \
                     TOP_K_ITEMS_TUMBLING, COUNT_DISTINCT_ITEMS_TUMBLING, RANDOM_CUT_FOREST, \
                     RANDOM_CUT_FOREST_WITH_EXPLANATION and HOTSPOTS"
                ),
                f.name.span(),
            )),
        }
    }

    /// The data argument of a TVF: a name, or `CURSOR(SELECT ...)`, or a sub-query.
    fn data(&self, arg: &Expr) -> Res<Rel> {
        match arg {
            Expr::Identifier(id) => self.named(id),
            Expr::CompoundIdentifier(ids) => self.named(ids.last().expect("non-empty")),
            Expr::Subquery(q) => self.derived(q),
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("CURSOR") => {
                match &f.args {
                    FunctionArguments::Subquery(q) => self.derived(q),
                    FunctionArguments::List(l) if l.args.len() == 1 => match &l.args[0] {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Subquery(q))) => {
                            self.derived(q)
                        }
                        _ => Err(SqlError::span(
                            "CURSOR takes a query: CURSOR(SELECT STREAM * FROM \"S\")",
                            f.span(),
                        )),
                    },
                    _ => Err(SqlError::span(
                        "CURSOR takes a query: CURSOR(SELECT STREAM * FROM \"S\")",
                        f.span(),
                    )),
                }
            }
            other => Err(SqlError::span(
                format!("expected a stream (a name, or CURSOR(SELECT ...)), found {other}"),
                other.span(),
            )),
        }
    }

    fn window_tvf(&self, name: &str, args: &Args, span: Span) -> Res<Rel> {
        let names: &[&str] = match name {
            "TUMBLE" => &["DATA", "TIMECOL", "SIZE", "OFFSET"],
            "HOP" => &["DATA", "TIMECOL", "SLIDE", "SIZE", "OFFSET"],
            "CUMULATE" => &["DATA", "TIMECOL", "STEP", "SIZE", "OFFSET"],
            _ => &["DATA", "TIMECOL", "GAP"],
        };
        let mut a = args.clone();
        let mut keys = Vec::new();
        if name == "SESSION" {
            if let Some(i) = a
                .positional
                .iter()
                .position(|e| matches!(e, Expr::Function(f) if f.name.to_string() == PARTITION_BY))
            {
                let Expr::Function(f) = a.positional.remove(i) else {
                    unreachable!()
                };
                keys = function_args(&f)?.positional;
            }
        }
        let bound = a.bind(name, names, span)?;
        let data = bound.get("DATA").ok_or_else(|| {
            SqlError::span(
                format!("{name} needs the data: {name}(TABLE t, DESCRIPTOR(ts), ...)"),
                span,
            )
        })?;
        let mut rel = self.data(data)?;
        if rel.windowed.is_some() {
            // A window TVF over a windowed query: its rows are read as a stream.
            rel.windowed = None;
        }
        let timecol = bound.get("TIMECOL").ok_or_else(|| {
            SqlError::span(
                format!("{name} needs the time column: DESCRIPTOR(ts)"),
                span,
            )
        })?;
        let ts = descriptor(timecol)?;
        let scope = Scope::of(&rel);
        let time = scope.column(std::slice::from_ref(&ts), ts.span)?;
        if rel.window_time.as_deref() == Some(time.as_str()) {
            // Flink's cascading windows: window_time is the upstream window's end less a
            // millisecond, so the upstream's watermark less a millisecond is this one's.
            rel.time = Some(time.clone());
            rel.watermark = Some(Duration::Text("1ms".into()));
        }
        let get = |k: &str| -> Res<Duration> {
            let e = bound
                .get(k)
                .ok_or_else(|| SqlError::span(format!("{name} needs {k}"), span))?;
            duration(e)
        };
        let offset = bound.get("OFFSET").map(duration).transpose()?;
        let mut wargs = BTreeMap::new();
        let kind = match name {
            "TUMBLE" => {
                wargs.insert("every".into(), get("SIZE")?);
                "tumbling"
            }
            "HOP" => {
                wargs.insert("every".into(), get("SLIDE")?);
                wargs.insert("period".into(), get("SIZE")?);
                "hopping"
            }
            "CUMULATE" => {
                wargs.insert("step".into(), get("STEP")?);
                wargs.insert("period".into(), get("SIZE")?);
                "cumulative"
            }
            _ => {
                wargs.insert("gap".into(), get("GAP")?);
                "session"
            }
        };
        if let Some(o) = offset {
            wargs.insert("offset".into(), o);
        }
        let mut key_names = Vec::new();
        for k in &keys {
            key_names.push(scope.plain_column(k)?);
        }
        rel.tvf = Some((
            Window {
                kind: kind.into(),
                args: wargs,
            },
            time,
            key_names,
            span,
        ));
        Ok(rel)
    }

    /// `TOP_K_ITEMS_TUMBLING(cursor, 'col', k, seconds)` and
    /// `COUNT_DISTINCT_ITEMS_TUMBLING(cursor, 'col', seconds)`: a tumbling window on the
    /// cursor's ROWTIME.
    fn kda_tumbling(&self, name: &str, args: &Args, span: Span) -> Res<QueryPlan> {
        let top = name == "TOP_K_ITEMS_TUMBLING";
        let want = if top { 4 } else { 3 };
        if args.positional.len() != want || !args.named.is_empty() {
            let form = if top {
                "TOP_K_ITEMS_TUMBLING(CURSOR(SELECT STREAM * FROM \"S\"), 'column', k, window_seconds)"
            } else {
                "COUNT_DISTINCT_ITEMS_TUMBLING(CURSOR(SELECT STREAM * FROM \"S\"), 'column', window_seconds)"
            };
            return Err(SqlError::span(
                format!("{name} takes {want} arguments: {form}"),
                span,
            ));
        }
        let rel = self.data(&args.positional[0])?;
        let rel = self.as_stream(rel);
        let col_arg = &args.positional[1];
        let Some(col_name) = string_literal(col_arg) else {
            return Err(SqlError::span(
                format!("{name}: the column is named in single quotes, e.g. 'TICKER'"),
                col_arg.span(),
            ));
        };
        let scope = Scope::of(&rel);
        let column = scope
            .column(&[Ident::with_quote('"', col_name.clone())], col_arg.span())
            .or_else(|_| scope.column(&[Ident::new(col_name.clone())], col_arg.span()))?;
        let seconds = positive_int(&args.positional[want - 1], "the window size in seconds")?;
        let time = rel.time.clone();
        let mut aggs = Vec::new();
        let mut post = Vec::new();
        let columns = if top {
            let k = positive_int(&args.positional[2], "k")?;
            let mut options = BTreeMap::new();
            options.insert("k".into(), serde_json::json!(k));
            aggs.push(Aggregate {
                kind: "top_k".into(),
                column: Some(Scalar::Col(column.clone())),
                filter: None,
                name: "__rl_top_k".into(),
                options,
            });
            post.push(Step::Explode {
                column: "__rl_top_k".into(),
                value: column.clone(),
                count: "MOST_FREQUENT_VALUES".into(),
            });
            vec![column.clone(), "MOST_FREQUENT_VALUES".to_string()]
        } else {
            aggs.push(Aggregate {
                kind: "approx_count_distinct".into(),
                column: Some(Scalar::Col(column.clone())),
                filter: None,
                name: "NUMBER_OF_DISTINCT_ITEMS".into(),
                options: BTreeMap::new(),
            });
            vec!["NUMBER_OF_DISTINCT_ITEMS".to_string()]
        };
        let mut select = vec![("ROWTIME".to_string(), Scalar::Col("window_end".into()))];
        select.extend(columns.iter().map(|c| (c.clone(), Scalar::Col(c.clone()))));
        post.push(Step::Select(select));
        let mut wargs = BTreeMap::new();
        wargs.insert("every".into(), Duration::Text(format!("{seconds}s")));
        let mut all = vec!["ROWTIME".to_string()];
        all.extend(columns);
        Ok(QueryPlan {
            input: rel.input,
            time: time.map_or(Time::Rowtime, Time::Declared),
            watermark: rel.watermark,
            steps: rel.steps,
            window: Some(Window {
                kind: "tumbling".into(),
                args: wargs,
            }),
            by: Vec::new(),
            aggs,
            post,
            columns: all,
            rowtime: Some("ROWTIME".into()),
            window_start: None,
            rows_window: None,
            window_time: None,
            text: String::new(),
        })
    }

    /// `RANDOM_CUT_FOREST(cursor[, trees, sample_size, time_decay, shingle_size])`,
    /// `RANDOM_CUT_FOREST_WITH_EXPLANATION(cursor[, ..., directionality])` and
    /// `HOTSPOTS(cursor[, window_size, scan_radius, min_points])`: the cursor's rows with the
    /// detector's columns added (`ANOMALY_SCORE`, `ANOMALY_EXPLANATION`, `HOTSPOTS_RESULT`),
    /// over the cursor's numeric columns, as Kinesis ran them.
    fn detector(&self, name: &str, args: &Args, span: Span) -> Res<Rel> {
        let form = match name {
            "RANDOM_CUT_FOREST" => {
                "RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM \"S\")[, trees, sample_size, \
                 time_decay, shingle_size])"
            }
            "RANDOM_CUT_FOREST_WITH_EXPLANATION" => {
                "RANDOM_CUT_FOREST_WITH_EXPLANATION(CURSOR(SELECT STREAM * FROM \"S\")[, trees, \
                 sample_size, time_decay, shingle_size, directionality])"
            }
            _ => "HOTSPOTS(CURSOR(SELECT STREAM * FROM \"S\")[, window_size, scan_radius, min_points])",
        };
        let given = args.positional.len();
        let full = match name {
            "RANDOM_CUT_FOREST" => 5,
            "RANDOM_CUT_FOREST_WITH_EXPLANATION" => 6,
            _ => 4,
        };
        if !args.named.is_empty() || (given != 1 && given != full) {
            return Err(SqlError::span(
                format!(
                    "{name} takes the cursor alone (the defaults) or all {} parameters: {form}",
                    full - 1
                ),
                span,
            ));
        }
        let rel = self.data(&args.positional[0])?;
        let mut rel = self.as_stream(rel);
        let p = &args.positional;
        let spec = if name == "HOTSPOTS" {
            let (window, radius, min_points) = if given == full {
                (
                    positive_int(&p[1], "the window size")?,
                    positive_number(&p[2], "the scan radius")?,
                    positive_int(&p[3], "the minimum number of points in a hotspot")?,
                )
            } else {
                (1000, 0.2, 17)
            };
            serde_json::json!({
                "kind": "hotspots", "window_size": window, "scan_radius": radius,
                "min_points": min_points, "kinesis": true,
            })
        } else {
            let explain = name == "RANDOM_CUT_FOREST_WITH_EXPLANATION";
            let (trees, sample, decay, shingle) = if given == full {
                (
                    positive_int(&p[1], "the number of trees")?,
                    positive_int(&p[2], "the sub-sample size")?,
                    positive_int(&p[3], "the time decay")?,
                    positive_int(&p[4], "the shingle size")?,
                )
            } else {
                (100, 256, 100_000, 1)
            };
            let directionality = if explain && given == full {
                match &p[5] {
                    Expr::Value(v) => match &v.value {
                        Value::Boolean(b) => *b,
                        _ => {
                            return Err(SqlError::span(
                                "directionality is true or false",
                                p[5].span(),
                            ))
                        }
                    },
                    other => {
                        return Err(SqlError::span(
                            "directionality is true or false",
                            other.span(),
                        ))
                    }
                }
            } else {
                false
            };
            serde_json::json!({
                "kind": "random_cut_forest", "trees": trees, "sample_size": sample,
                "time_decay": decay, "shingle_size": shingle, "with_explanation": explain,
                "directionality": directionality, "seed": 0, "kinesis": true,
            })
        };
        let added: &[&str] = match name {
            "RANDOM_CUT_FOREST" => &["ANOMALY_SCORE"],
            "RANDOM_CUT_FOREST_WITH_EXPLANATION" => &["ANOMALY_SCORE", "ANOMALY_EXPLANATION"],
            _ => &["HOTSPOTS_RESULT"],
        };
        if let Some(cols) = &mut rel.columns {
            if let Some(taken) = cols.iter().find(|c| added.contains(&c.as_str())) {
                return Err(SqlError::span(
                    format!("the cursor already has a column {taken}, which {name} adds"),
                    span,
                ));
            }
            cols.extend(added.iter().map(|c| c.to_string()));
        }
        rel.steps.push(Step::Detect(spec));
        Ok(rel)
    }

    /// A windowed sub-query read as a stream (its ROWTIME its time).
    fn as_stream(&self, mut rel: Rel) -> Rel {
        rel.windowed = None;
        rel
    }

    // -- the kinds of SELECT ----------------------------------------------------------------

    /// A stateless SELECT over a windowed query: more steps over what it emits.
    fn over_output(
        &self,
        mut plan: QueryPlan,
        rel: &Rel,
        s: &ast::Select,
        order: &[ast::OrderByExpr],
        rowtime: bool,
    ) -> Res<QueryPlan> {
        let scope = Scope::of(rel);
        let rowtime_col = plan.rowtime.clone();
        let out = OutputScope {
            input: &scope,
            keys: Vec::new(),
            aggs: Vec::new(),
            rowtime: rowtime_col.clone(),
            bounds: plan.window_start.clone().zip(plan.rowtime.clone()),
            passthrough: true,
        };
        if let Some(w) = &s.selection {
            let cond = out.scalar(w)?;
            plan.post.push(Step::Filter(cond));
        }
        let (select, columns) = self.select_list(s, &out, rowtime, &plan.columns)?;
        // The columns that carry the window's start and end on, under the names selected:
        // the ones the plan names, or others that hold the same bound.
        let bound = |named: Option<&str>, origin: &str| {
            let same = match &plan.window {
                Some(w) if w.kind != "sliding" => traced(&plan.post, origin),
                _ => Vec::new(),
            };
            named
                .and_then(|c| carried(&select, &columns, c))
                .or_else(|| same.iter().find_map(|c| carried(&select, &columns, c)))
        };
        let start = bound(plan.window_start.as_deref(), "window_start");
        let end = bound(rowtime_col.as_deref(), "window_end");
        self.finish_post(
            &mut plan.post,
            select,
            &columns,
            s.having.as_ref(),
            order,
            &out,
        )?;
        plan.window_start = start;
        plan.rowtime = if rowtime { Some("ROWTIME".into()) } else { end };
        plan.columns = columns;
        Ok(plan)
    }

    /// A SELECT without windows or aggregates: its rows, through its steps.
    fn rows(
        &self,
        rel: Rel,
        scope: &Scope,
        s: &ast::Select,
        order: &[ast::OrderByExpr],
        rowtime: bool,
    ) -> Res<QueryPlan> {
        // ORDER BY a time bucket of the stream's time first (Kinesis' `ORDER BY
        // FLOOR(s.ROWTIME TO SECOND), score DESC`): each bucket's rows come out together when
        // the watermark passes its end, sorted, whatever batches they arrived in.
        let time_col = rel.time.clone().unwrap_or_else(|| "ROWTIME".into());
        let bucket = match order.first() {
            Some(o) => scope
                .time_bucket(&o.expr)?
                .filter(|(col, _)| *col == time_col)
                .map(|(_, every)| every),
            None => None,
        };
        if let (Some(o), Input::Name(_), None) = (order.first(), &rel.input, &bucket) {
            return Err(SqlError::span(
                "ORDER BY over an input's raw rows would order each micro-batch, which depends \
                 on how the input is read; order by a time bucket first (ORDER BY \
                 FLOOR(s.ROWTIME TO SECOND), ...) or order a window's output",
                o.expr.span(),
            ));
        }
        if let Some(h) = &s.having {
            return Err(SqlError::span("HAVING needs GROUP BY", h.span()));
        }
        let mut steps = rel.steps.clone();
        if let Some(w) = &s.selection {
            steps.push(Step::Filter(scope.scalar(w)?));
        }
        let mut select = Vec::new();
        let mut columns = Vec::new();
        if rowtime {
            select.push(("ROWTIME".to_string(), Scalar::Col(time_col.clone())));
            columns.push("ROWTIME".to_string());
        }
        for item in &s.projection {
            match item {
                SelectItem::QualifiedWildcard(kind, _) if !rel.sides.is_empty() => {
                    // Each column under its own name, as SQL names `t.*`; a name already
                    // selected for another value gets the join's name for it (`x_right`),
                    // and a key already selected (an inner join's, one value) is not repeated.
                    for (own, out) in scope.side_star(kind)? {
                        let value = Scalar::Col(out.clone());
                        if select.iter().any(|(_, v)| *v == value) && out != own {
                            continue; // a key already selected: one value
                        }
                        let taken = |n: &String| select.iter().any(|(m, _)| m == n);
                        let name = if !taken(&own) {
                            own
                        } else if select.iter().any(|(m, v)| *m == own && *v == value) {
                            continue;
                        } else if !taken(&out) {
                            out
                        } else {
                            (1..)
                                .map(|i| {
                                    if i == 1 {
                                        format!("{own}_right")
                                    } else {
                                        format!("{own}_right{i}")
                                    }
                                })
                                .find(|n| !taken(n))
                                .expect("a free name")
                        };
                        select.push((name.clone(), value));
                        columns.push(name);
                    }
                }
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => match &rel.columns {
                    Some(cols) => {
                        // A join's copies of keys, for its own use, are not the rows'.
                        let shown = cols
                            .iter()
                            .filter(|c| c.as_str() != "ROWTIME" && !c.starts_with("__rl_"));
                        for c in shown {
                            select.push((c.clone(), Scalar::Col(c.clone())));
                            columns.push(c.clone());
                        }
                    }
                    None => {
                        select.push(("*".into(), Scalar::All(vec!["ROWTIME".into()])));
                        columns.push("*".into());
                    }
                },
                SelectItem::UnnamedExpr(e) => {
                    let name = scope.output_name(e);
                    select.push((name.clone(), scope.scalar(e)?));
                    columns.push(name);
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    select.push((alias.value.clone(), scope.scalar(expr)?));
                    columns.push(alias.value.clone());
                }
                SelectItem::ExprWithAliases { expr, .. } => {
                    return Err(unsupported("several aliases", expr.span()))
                }
            }
        }
        check_unique(&columns, s.span())?;
        // The operator reads the time column under its own name: it travels with the rows
        // even when not selected (`*` of an input whose columns are not known yet keeps it,
        // but leaves out ROWTIME).
        let star = select.iter().any(|(n, _)| n == "*");
        match select.iter().find(|(n, _)| *n == time_col) {
            Some((_, v)) if *v != Scalar::Col(time_col.clone()) => {
                return Err(SqlError::span(
                    format!(
                        "the select list names a column {time_col:?}, the stream's time column, \
                         for another value; give it another name (AS ...)"
                    ),
                    s.select_token.0.span,
                ))
            }
            Some(_) => {}
            None if star && time_col != "ROWTIME" => {}
            None => select.push((time_col.clone(), Scalar::Col(time_col.clone()))),
        }
        // ORDER BY keys: an output column, or a value over the input computed before the
        // operator and carried through it.
        let sort = sort_step(order, &columns, &mut select, |e| scope.scalar(e))?;
        steps.push(Step::Select(select));
        // After the operator: sorted within each batch that arrives (when asked), then
        // exactly the selected columns (the time column and sort keys travelled with them).
        let mut post: Vec<Step> = sort.into_iter().collect();
        post.push(Step::Select(
            columns
                .iter()
                .map(|c| (c.clone(), Scalar::Col(c.clone())))
                .collect(),
        ));
        let rowtime_out = if rowtime {
            Some("ROWTIME".to_string())
        } else {
            columns.contains(&time_col).then_some(time_col)
        };
        Ok(QueryPlan {
            input: rel.input,
            time: rel.time.map_or(Time::Rowtime, Time::Declared),
            watermark: rel.watermark,
            steps,
            window: None,
            by: Vec::new(),
            aggs: Vec::new(),
            post,
            columns,
            rowtime: rowtime_out,
            window_start: None,
            rows_window: bucket.map(|every| {
                let mut args = BTreeMap::new();
                args.insert("every".into(), every);
                Window {
                    kind: "tumbling".into(),
                    args,
                }
            }),
            window_time: window_time_of(s, scope),
            text: String::new(),
        })
    }

    /// A window table function read without aggregates (`SELECT *, ROW_NUMBER() OVER
    /// (PARTITION BY window_start, window_end ...) FROM TABLE(TUMBLE(...))`): each window's
    /// rows come out together when it closes, with its bounds, for the select list, a Top-N
    /// or an ORDER BY over them.
    fn window_rows(
        &self,
        rel: Rel,
        scope: &Scope,
        s: &ast::Select,
        order: &[ast::OrderByExpr],
        rowtime: bool,
    ) -> Res<QueryPlan> {
        let (window, col, _, span) = rel.tvf.clone().expect("a window function");
        if window.kind == "session" {
            return Err(unsupported(
                "a SESSION window's rows without an aggregate (group them by window_start, window_end)",
                span,
            ));
        }
        let time = match &rel.time {
            Some(t) if *t != col => {
                return Err(SqlError::span(
                    format!("the window's DESCRIPTOR({col}) is not the stream's time column {t:?}"),
                    span,
                ))
            }
            Some(t) => Time::Declared(t.clone()),
            None => Time::Column(col.clone()),
        };
        if let Some(h) = &s.having {
            return Err(SqlError::span("HAVING needs GROUP BY", h.span()));
        }
        let mut steps = rel.steps.clone();
        if let Some(w) = &s.selection {
            steps.push(Step::Filter(scope.scalar(w)?));
        }
        let star = s.projection.iter().any(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        if star && rel.columns.is_none() {
            return Err(SqlError::span(
                "SELECT * over a window function's rows needs the input's columns before the \
                 run; name the columns",
                s.select_token.0.span,
            ));
        }
        let input = rel.columns.clone().unwrap_or_default();
        let out = OutputScope {
            input: scope,
            keys: Vec::new(),
            aggs: Vec::new(),
            rowtime: Some("window_end".into()),
            bounds: Some(("window_start".into(), "window_end".into())),
            passthrough: true,
        };
        let natural: Vec<String> = input
            .iter()
            .filter(|c| c.as_str() != "ROWTIME")
            .cloned()
            .chain(WINDOW_COLUMNS.iter().map(|c| c.to_string()))
            .collect();
        let (mut select, columns) = self.select_list(s, &out, rowtime, &natural)?;
        for (name, value) in &mut select {
            if name == "window_time" && *value == Scalar::Col("window_time".into()) {
                *value = sql(&window_time("window_end"), span);
            }
        }
        let (window_start, rowtime_out) = bound_columns(&select, &columns, rowtime);
        let mut post = Vec::new();
        self.finish_post(&mut post, select, &columns, None, order, &out)?;
        Ok(QueryPlan {
            input: rel.input,
            time,
            watermark: rel.watermark,
            steps,
            window: None,
            by: Vec::new(),
            aggs: Vec::new(),
            post,
            columns,
            rowtime: rowtime_out,
            window_start,
            rows_window: Some(window),
            window_time: window_time_of(s, scope),
            text: String::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn grouped(
        &self,
        rel: Rel,
        scope: &Scope,
        s: &ast::Select,
        group: &[Expr],
        calls: &Calls,
        order: &[ast::OrderByExpr],
        rowtime: bool,
    ) -> Res<QueryPlan> {
        let mut steps = rel.steps.clone();
        if let Some(w) = &s.selection {
            steps.push(Step::Filter(scope.scalar(w)?));
        }
        // The window: a TVF's, or the STEP/FLOOR in GROUP BY on the input's time.
        let mut keys: Vec<(String, Expr)> = Vec::new(); // (output column, group expression)
        let mut computed: Vec<(String, Scalar)> = Vec::new();
        let mut window: Option<(Window, String, Span)> = None;
        let mut time = rel.time.clone().map(Time::Declared);
        let mut bound_start = false;
        let mut bound_end = false;
        let mut steps_found: Vec<(String, Duration, Expr)> = Vec::new();
        if let Some((w, col, _, span)) = &rel.tvf {
            if let Some(t) = &rel.time {
                if t != col {
                    return Err(SqlError::span(format!("the window's DESCRIPTOR({col}) is not the stream's time column {t:?}; window on {t}, or declare time={col:?}"), *span));
                }
            } else {
                time = Some(Time::Column(col.clone()));
            }
            window = Some((w.clone(), col.clone(), *span));
        }
        for g in group {
            match g {
                g if rel.tvf.is_some() && bound_name(g) == Some("window_start") => {
                    bound_start = true
                }
                g if rel.tvf.is_some() && bound_name(g) == Some("window_end") => bound_end = true,
                // window_time is window_end less a millisecond: grouping by it adds nothing.
                g if rel.tvf.is_some() && bound_name(g) == Some("window_time") => {}
                _ => {
                    if let Some((col, every)) = scope.time_bucket(g)? {
                        steps_found.push((col, every, g.clone()));
                    } else {
                        let name = self.key_name(s, scope, g)?;
                        match g {
                            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                                let col = scope.column(&idents(g), g.span())?;
                                keys.push((col, g.clone()));
                            }
                            _ => {
                                computed.push((name.clone(), scope.scalar(g)?));
                                keys.push((name, g.clone()));
                            }
                        }
                    }
                }
            }
        }
        if let Some((_, _, tvf_keys, span)) = &rel.tvf {
            if !(bound_start && bound_end) {
                return Err(SqlError::span(
                    "a window TVF's rows are grouped by GROUP BY window_start, window_end [, keys]",
                    *span,
                ));
            }
            if window.as_ref().is_some_and(|(w, _, _)| w.kind == "session") {
                let by: Vec<&String> = keys.iter().map(|(k, _)| k).collect();
                let parts: Vec<&String> = tvf_keys.iter().collect();
                if by != parts {
                    return Err(SqlError::span(
                        format!(
                            "a SESSION window's PARTITION BY ({}) must be the GROUP BY keys ({}): \
                             rillet's sessions are per key, write SESSION(TABLE t PARTITION BY {}, ...)",
                            list(parts.iter()), list(by.iter()), list(by.iter())
                        ),
                        *span,
                    ));
                }
            }
            // STEP/FLOOR next to a TVF are keys.
            for (col, every, g) in steps_found.drain(..) {
                let name = self.key_name(s, scope, &g)?;
                computed.push((name.clone(), Scalar::Truncate { column: col, every }));
                keys.push((name, g));
            }
        } else {
            // Kinesis: the STEP on ROWTIME (the input's time) is the window; others are keys.
            let rowtime_col = rel.time.clone().unwrap_or_else(|| "ROWTIME".into());
            let on_time: Vec<usize> = (0..steps_found.len())
                .filter(|&i| steps_found[i].0 == rowtime_col)
                .collect();
            let pick = if !on_time.is_empty() {
                if rel.time.is_none() {
                    time = Some(Time::Rowtime);
                }
                on_time
            } else if rel.time.is_none() && steps_found.len() == 1 {
                time = Some(Time::Column(steps_found[0].0.clone()));
                vec![0]
            } else if rel.time.is_none() && steps_found.len() > 1 {
                return Err(SqlError::span(
                    format!(
                        "GROUP BY has time buckets on several columns ({}); which is the event time? \
                         Declare it: rl.stream(source, time=\"...\", watermark=\"...\"), or group by \
                         STEP(ROWTIME BY INTERVAL ...) for arrival time",
                        list(steps_found.iter().map(|s| &s.0))
                    ),
                    steps_found[1].2.span(),
                ));
            } else {
                let span = group.first().map_or(s.span(), |g| g.span());
                let hint = match &rel.time {
                    Some(t) => format!("the stream's time is {t}: GROUP BY STEP({t} BY INTERVAL '1' MINUTE) (or ROWTIME)"),
                    None => "GROUP BY STEP(ROWTIME BY INTERVAL '1' MINUTE), or FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE))".into(),
                };
                return Err(SqlError::span(
                    format!("a streaming GROUP BY needs a time window; {hint}"),
                    span,
                ));
            };
            let every = steps_found[pick[0]].1.clone();
            for &i in &pick[1..] {
                if canonical(&steps_found[i].1) != canonical(&every) {
                    return Err(SqlError::span(
                        "GROUP BY has two time windows of different sizes on the same time column",
                        steps_found[i].2.span(),
                    ));
                }
            }
            let col = steps_found[pick[0]].0.clone();
            let span = steps_found[pick[0]].2.span();
            let mut args = BTreeMap::new();
            args.insert("every".into(), every);
            window = Some((
                Window {
                    kind: "tumbling".into(),
                    args,
                },
                col,
                span,
            ));
            let window_exprs: Vec<Expr> = pick.iter().map(|&i| steps_found[i].2.clone()).collect();
            for (i, (col, every, g)) in steps_found.into_iter().enumerate() {
                if pick.contains(&i) {
                    continue;
                }
                let name = self.key_name(s, scope, &g)?;
                computed.push((name.clone(), Scalar::Truncate { column: col, every }));
                keys.push((name, g));
            }
            return self.finish_grouped(
                rel,
                scope,
                s,
                calls,
                order,
                rowtime,
                steps,
                computed,
                keys,
                window.expect("set"),
                time,
                window_exprs,
            );
        }
        let window = window.expect("a TVF window");
        self.finish_grouped(
            rel,
            scope,
            s,
            calls,
            order,
            rowtime,
            steps,
            computed,
            keys,
            window,
            time,
            Vec::new(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_grouped(
        &self,
        rel: Rel,
        scope: &Scope,
        s: &ast::Select,
        calls: &Calls,
        order: &[ast::OrderByExpr],
        rowtime: bool,
        mut steps: Vec<Step>,
        computed: Vec<(String, Scalar)>,
        keys: Vec<(String, Expr)>,
        window: (Window, String, Span),
        time: Option<Time>,
        window_exprs: Vec<Expr>,
    ) -> Res<QueryPlan> {
        let time = time.unwrap_or(Time::Rowtime);
        if time == Time::Rowtime {
            keep_rowtime(&mut steps);
        }
        if !computed.is_empty() {
            steps.push(Step::WithColumns(computed));
        }
        for (k, e) in &keys {
            if WINDOW_COLUMNS.contains(&k.as_str()) {
                return Err(SqlError::span(
                    format!("key column {k:?} would clash with the window's {k} column; rename it"),
                    e.span(),
                ));
            }
        }
        let mut aggs = self.aggregates(s, scope, calls)?;
        if aggs.is_empty() {
            // GROUP BY without an aggregate (each window's distinct keys): a row count the
            // select list leaves out.
            aggs.push((
                String::new(),
                Aggregate {
                    kind: "count".into(),
                    column: None,
                    filter: None,
                    name: "__rl_rows".into(),
                    options: BTreeMap::new(),
                },
            ));
        }
        let (window, _col, _span) = window;
        let out = OutputScope {
            input: scope,
            keys: keys
                .iter()
                .map(|(n, e)| (scope.text(e), n.clone()))
                .chain(
                    window_exprs
                        .iter()
                        .map(|e| (scope.text(e), "window_start".to_string())),
                )
                .collect(),
            aggs: aggs
                .iter()
                .map(|(t, a)| (t.clone(), a.name.clone()))
                .collect(),
            rowtime: Some("window_end".into()),
            bounds: Some(("window_start".into(), "window_end".into())),
            passthrough: false,
        };
        let natural: Vec<String> = keys
            .iter()
            .map(|(k, _)| k.clone())
            .chain(["window_start".to_string(), "window_end".to_string()])
            .chain(aggs.iter().map(|(_, a)| a.name.clone()))
            .collect();
        check_unique(&natural, s.span())?;
        let (select, columns) = self.select_list(s, &out, rowtime, &natural)?;
        let (window_start, rowtime_out) = bound_columns(&select, &columns, rowtime);
        let mut post = Vec::new();
        self.finish_post(&mut post, select, &columns, s.having.as_ref(), order, &out)?;
        Ok(QueryPlan {
            input: rel.input,
            time,
            watermark: rel.watermark,
            steps,
            window: Some(window),
            by: keys.into_iter().map(|(k, _)| k).collect(),
            aggs: aggs.into_iter().map(|(_, a)| a).collect(),
            post,
            columns,
            rowtime: rowtime_out,
            window_start,
            rows_window: None,
            window_time: window_time_of(s, scope),
            text: String::new(),
        })
    }

    /// Aggregates OVER a sliding window (`RANGE INTERVAL ... PRECEDING`).
    fn sliding(
        &self,
        rel: Rel,
        scope: &Scope,
        s: &ast::Select,
        calls: &Calls,
        order: &[ast::OrderByExpr],
        rowtime: bool,
    ) -> Res<QueryPlan> {
        // Every OVER must name the same window.
        let mut spec: Option<ast::WindowSpec> = None;
        for f in &calls.over {
            let this = match f.over.as_ref().expect("an OVER call") {
                WindowType::WindowSpec(w) => w.clone(),
                WindowType::NamedWindow(id) => {
                    let Some(def) = s
                        .named_window
                        .iter()
                        .find(|d| d.0.value.eq_ignore_ascii_case(&id.value))
                    else {
                        return Err(SqlError::span(format!("window {} is not defined; add WINDOW {} AS (PARTITION BY ... RANGE INTERVAL '1' MINUTE PRECEDING)", id.value, id.value), id.span));
                    };
                    match &def.1 {
                        NamedWindowExpr::WindowSpec(w) => w.clone(),
                        NamedWindowExpr::NamedWindow(_) => {
                            return Err(unsupported("a window defined as another window", id.span))
                        }
                    }
                }
            };
            if let Some(prev) = &spec {
                if prev.to_string() != this.to_string() {
                    return Err(SqlError::span(
                        "all aggregates of a SELECT must be OVER the same window",
                        f.span(),
                    ));
                }
            }
            spec = Some(this);
        }
        let spec = spec.expect("at least one OVER");
        let span = calls.over[0].span();
        let Some(frame) = &spec.window_frame else {
            return Err(SqlError::span(
                "a sliding window needs a frame: RANGE INTERVAL '1' MINUTE PRECEDING",
                span,
            ));
        };
        // (name, look-back): a period (RANGE) or a number of rows (ROWS).
        let look_back = match (&frame.units, &frame.start_bound, &frame.end_bound) {
            (
                WindowFrameUnits::Range,
                WindowFrameBound::Preceding(Some(e)),
                None | Some(WindowFrameBound::CurrentRow),
            ) => ("period", duration(e)?),
            (
                WindowFrameUnits::Rows,
                WindowFrameBound::Preceding(Some(e)),
                None | Some(WindowFrameBound::CurrentRow),
            ) => ("rows", row_count(e)?),
            (_, WindowFrameBound::Preceding(None), _) => {
                return Err(unsupported(
                    "UNBOUNDED PRECEDING (a window that never lets rows go; use a \
                     CUMULATE window, or RANGE INTERVAL ... PRECEDING)",
                    span,
                ))
            }
            _ => {
                return Err(SqlError::span(
                    "a sliding window's frame is RANGE INTERVAL '<n>' <unit> PRECEDING or \
                     ROWS <n> PRECEDING",
                    span,
                ))
            }
        };
        let rowtime_col = rel.time.clone().unwrap_or_else(|| "ROWTIME".into());
        for o in &spec.order_by {
            let col = scope.column(&idents(&o.expr), o.expr.span())?;
            if col != rowtime_col {
                return Err(SqlError::span(
                    format!("a sliding window is ordered by the stream's time ({rowtime_col})"),
                    o.expr.span(),
                ));
            }
        }
        let mut steps = rel.steps.clone();
        let time = rel.time.clone().map_or(Time::Rowtime, Time::Declared);
        if time == Time::Rowtime {
            keep_rowtime(&mut steps);
        }
        if let Some(w) = &s.selection {
            steps.push(Step::Filter(scope.scalar(w)?));
        }
        let (keys, computed) = self.partition_keys(s, scope, &spec.partition_by)?;
        if !computed.is_empty() {
            steps.push(Step::WithColumns(computed));
        }
        let over_calls = Calls {
            aggs: calls.over.clone(),
            over: Vec::new(),
        };
        let mut aggs = self.aggregates(s, scope, &over_calls)?;
        // A plain column that is neither a key nor the time: each row carries its own value
        // (Kinesis' sliding windows select them, e.g. a ticker next to a sum OVER w).
        for item in &s.projection {
            let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item
            else {
                continue;
            };
            if !matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                continue;
            }
            let col = scope.column(&idents(e), e.span())?;
            let text = scope.text(e);
            let taken = col == rowtime_col
                || keys
                    .iter()
                    .any(|(k, ke)| *k == col || scope.text(ke) == text)
                || aggs.iter().any(|(t, _)| *t == text);
            if !taken {
                let name = if aggs.iter().any(|(_, a)| a.name == col) {
                    format!("__rl_row_{col}")
                } else {
                    col.clone()
                };
                aggs.push((
                    text,
                    Aggregate {
                        kind: "current".into(),
                        column: Some(Scalar::Col(col)),
                        filter: None,
                        name,
                        options: BTreeMap::new(),
                    },
                ));
            }
        }
        let out = OutputScope {
            input: scope,
            keys: keys
                .iter()
                .map(|(n, e)| (scope.text(e), n.clone()))
                .collect(),
            aggs: aggs
                .iter()
                .map(|(t, a)| (t.clone(), a.name.clone()))
                .collect(),
            rowtime: Some(rowtime_col.clone()),
            bounds: None,
            passthrough: false,
        };
        let mut natural: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        natural.push(rowtime_col.clone());
        natural.extend(aggs.iter().map(|(_, a)| a.name.clone()));
        check_unique(&natural, s.span())?;
        let (select, columns) = self.select_list(s, &out, rowtime, &natural)?;
        let mut post = Vec::new();
        self.finish_post(&mut post, select, &columns, s.having.as_ref(), order, &out)?;
        let mut args = BTreeMap::new();
        if look_back.0 == "period" {
            // SQL's RANGE frame holds the row exactly `period` before: [t - period, t].
            args.insert("closed".into(), Duration::Text("both".into()));
        }
        args.insert(look_back.0.into(), look_back.1);
        let rowtime_out = if rowtime {
            Some("ROWTIME".to_string())
        } else {
            columns.iter().find(|c| **c == rowtime_col).cloned()
        };
        Ok(QueryPlan {
            input: rel.input,
            time,
            watermark: rel.watermark,
            steps,
            window: Some(Window {
                kind: "sliding".into(),
                args,
            }),
            by: keys.into_iter().map(|(k, _)| k).collect(),
            aggs: aggs.into_iter().map(|(_, a)| a).collect(),
            post,
            columns,
            rowtime: rowtime_out,
            window_start: None,
            rows_window: None,
            window_time: window_time_of(s, scope),
            text: String::new(),
        })
    }

    /// `WINDOWED BY STAGGER (PARTITION BY keys RANGE INTERVAL ...)`: a window per key from
    /// its first row, `range` long, on the input's time.
    #[allow(clippy::too_many_arguments)]
    fn stagger(
        &self,
        rel: Rel,
        scope: &Scope,
        s: &ast::Select,
        calls: &Calls,
        order: &[ast::OrderByExpr],
        rowtime: bool,
        def: &ast::NamedWindowDefinition,
    ) -> Res<QueryPlan> {
        let span = def.0.span;
        let NamedWindowExpr::WindowSpec(spec) = &def.1 else {
            return Err(SqlError::span(
                "STAGGER (PARTITION BY <keys> RANGE INTERVAL '1' MINUTE)",
                span,
            ));
        };
        let range =
            match &spec.window_frame {
                Some(ast::WindowFrame {
                    units: WindowFrameUnits::Range,
                    start_bound: WindowFrameBound::Preceding(Some(e)),
                    end_bound: None,
                }) => duration(e)?,
                _ => return Err(SqlError::span(
                    "a stagger window is STAGGER (PARTITION BY <keys> RANGE INTERVAL '<n>' <unit>)",
                    span,
                )),
            };
        if spec.partition_by.is_empty() {
            return Err(SqlError::span(
                "a stagger window needs PARTITION BY <keys>",
                span,
            ));
        }
        let mut steps = rel.steps.clone();
        if let Some(w) = &s.selection {
            steps.push(Step::Filter(scope.scalar(w)?));
        }
        let (keys, computed) = self.partition_keys(s, scope, &spec.partition_by)?;
        let time = Some(rel.time.clone().map_or(Time::Rowtime, Time::Declared));
        let col = rel.time.clone().unwrap_or_else(|| "ROWTIME".into());
        let mut args = BTreeMap::new();
        args.insert("range".into(), range);
        let window = (
            Window {
                kind: "stagger".into(),
                args,
            },
            col,
            span,
        );
        self.finish_grouped(
            rel,
            scope,
            s,
            calls,
            order,
            rowtime,
            steps,
            computed,
            keys,
            window,
            time,
            Vec::new(),
        )
    }

    /// A window's `PARTITION BY` list as keys: columns, truncated times, computed values.
    #[allow(clippy::type_complexity)]
    fn partition_keys(
        &self,
        s: &ast::Select,
        scope: &Scope,
        exprs: &[Expr],
    ) -> Res<(Vec<(String, Expr)>, Named)> {
        let mut keys = Vec::new();
        let mut computed = Vec::new();
        for p in exprs {
            if let Some((col, every)) = scope.time_bucket(p)? {
                let name = self.key_name(s, scope, p)?;
                computed.push((name.clone(), Scalar::Truncate { column: col, every }));
                keys.push((name, p.clone()));
            } else if matches!(p, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                keys.push((scope.column(&idents(p), p.span())?, p.clone()));
            } else {
                let name = self.key_name(s, scope, p)?;
                computed.push((name.clone(), scope.scalar(p)?));
                keys.push((name, p.clone()));
            }
        }
        Ok((keys, computed))
    }

    // -- pieces ---------------------------------------------------------------------------

    /// A computed key's column name: the alias of the select item that computes the same
    /// value, or the expression as written.
    fn key_name(&self, s: &ast::Select, scope: &Scope, g: &Expr) -> Res<String> {
        let text = scope.text(g);
        for item in &s.projection {
            if let SelectItem::ExprWithAlias { expr, alias } = item {
                if scope.text(expr) == text {
                    return Ok(alias.value.clone());
                }
            }
        }
        Ok(scope.output_name(g))
    }

    /// The aggregates, each with its text (resolved against the input) for matching.
    fn aggregates(
        &self,
        s: &ast::Select,
        scope: &Scope,
        calls: &Calls,
    ) -> Res<Vec<(String, Aggregate)>> {
        let mut out: Vec<(String, Aggregate)> = Vec::new();
        for f in &calls.aggs {
            let text = scope.text(&Expr::Function(f.clone()));
            if out.iter().any(|(t, _)| *t == text) {
                continue;
            }
            let mut a = aggregate(f, scope)?;
            // The alias of a select item that is exactly this aggregate names it.
            for item in &s.projection {
                if let SelectItem::ExprWithAlias { expr, alias } = item {
                    if scope.text(expr) == text {
                        a.name = alias.value.clone();
                        break;
                    }
                }
            }
            if out.iter().any(|(_, b)| b.name == a.name) {
                a.name = format!("{}_{}", a.name, out.len());
            }
            out.push((text, a));
        }
        Ok(out)
    }

    /// The select list over a window's output: (name, value) pairs and the column names.
    fn select_list(
        &self,
        s: &ast::Select,
        out: &OutputScope,
        rowtime: bool,
        natural: &[String],
    ) -> Res<(Named, Vec<String>)> {
        let mut select = Vec::new();
        let mut columns = Vec::new();
        if rowtime {
            let rt = out.rowtime.clone().unwrap_or_else(|| "ROWTIME".into());
            select.push(("ROWTIME".to_string(), Scalar::Col(rt)));
            columns.push("ROWTIME".to_string());
        }
        for item in &s.projection {
            match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    if !out.passthrough {
                        return Err(SqlError::span(
                            "SELECT * over a window: name the keys and aggregates",
                            s.select_token.0.span,
                        ));
                    }
                    for c in natural.iter().filter(|c| c.as_str() != "ROWTIME") {
                        select.push((c.clone(), Scalar::Col(c.clone())));
                        columns.push(c.clone());
                    }
                }
                SelectItem::UnnamedExpr(e) => {
                    let value = out.scalar(e)?;
                    let rowtime = matches!(e, Expr::Identifier(id) if is_rowtime(id))
                        || matches!(e, Expr::CompoundIdentifier(ids) if ids.last().is_some_and(is_rowtime));
                    let name = match &value {
                        _ if rowtime => "ROWTIME".to_string(),
                        // A window bound selected by its name keeps it, whatever column holds
                        // it upstream (a windowed sub-query's end is its ROWTIME).
                        Scalar::Col(c) if bound_name(e).is_some_and(|b| b != c) => {
                            bound_name(e).expect("a bound").to_string()
                        }
                        Scalar::Col(c)
                            if matches!(
                                e,
                                Expr::Identifier(_)
                                    | Expr::CompoundIdentifier(_)
                                    | Expr::Function(_)
                            ) =>
                        {
                            c.clone()
                        }
                        _ => out.input.output_name(e),
                    };
                    select.push((name.clone(), value));
                    columns.push(name);
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    select.push((alias.value.clone(), out.scalar(expr)?));
                    columns.push(alias.value.clone());
                }
                SelectItem::ExprWithAliases { expr, .. } => {
                    return Err(unsupported("several aliases", expr.span()))
                }
            }
        }
        check_unique(&columns, s.span())?;
        Ok((select, columns))
    }

    /// The select, then HAVING and ORDER BY over it (with hidden helper columns).
    fn finish_post(
        &self,
        post: &mut Vec<Step>,
        mut select: Vec<(String, Scalar)>,
        columns: &[String],
        having: Option<&Expr>,
        order: &[ast::OrderByExpr],
        out: &OutputScope,
    ) -> Res<()> {
        let mut filter = None;
        if let Some(h) = having {
            select.push(("__rl_having".into(), out.scalar(h)?));
            filter = Some(Scalar::Col("__rl_having".into()));
        }
        // An output column's name (an alias), or a value over the window's output.
        let sort = sort_step(order, columns, &mut select, |e| out.scalar(e))?;
        let hidden = select.len() > columns.len();
        post.push(Step::Select(select));
        post.extend(filter.map(Step::Filter));
        post.extend(sort);
        if hidden {
            post.push(Step::Select(
                columns
                    .iter()
                    .map(|c| (c.clone(), Scalar::Col(c.clone())))
                    .collect(),
            ));
        }
        Ok(())
    }
}

/// `ORDER BY` as a sort of each emitted batch (none without one). A key that names an
/// output column sorts by it; any other is computed by `value` into a hidden column
/// `__rl_order{i}` appended to `select`.
fn sort_step(
    order: &[ast::OrderByExpr],
    columns: &[String],
    select: &mut Named,
    mut value: impl FnMut(&Expr) -> Res<Scalar>,
) -> Res<Option<Step>> {
    let (mut by, mut descending, mut nulls_last) = (Vec::new(), Vec::new(), Vec::new());
    for (i, o) in order.iter().enumerate() {
        let named = match &o.expr {
            Expr::Identifier(id) => columns.iter().find(|c| names(id, c)).cloned(),
            _ => None,
        };
        by.push(match named {
            Some(c) => c,
            None => {
                let name = format!("__rl_order{i}");
                select.push((name.clone(), value(&o.expr)?));
                name
            }
        });
        let desc = o.options.sort == Some(ast::OrderBySort::Desc);
        descending.push(desc);
        nulls_last.push(o.options.nulls_first.map(|f| !f).unwrap_or(!desc));
    }
    Ok((!by.is_empty()).then_some(Step::Sort {
        by,
        descending,
        nulls_last,
    }))
}

/// The output column a select item makes of Flink's `window_time` (its alias, or its own
/// name), when the query reads a window function.
fn window_time_of(s: &ast::Select, scope: &Scope) -> Option<String> {
    if !scope.tvf {
        return None;
    }
    s.projection.iter().find_map(|item| match item {
        SelectItem::UnnamedExpr(e) if bound_name(e) == Some("window_time") => {
            Some("window_time".to_string())
        }
        SelectItem::ExprWithAlias { expr, alias } if bound_name(expr) == Some("window_time") => {
            Some(alias.value.clone())
        }
        _ => None,
    })
}

/// The output columns that keep a window's start, and its end (the rows' ROWTIME: `ROWTIME`
/// when kept under that name), under their own names or an alias (`window_start AS
/// starttime`).
fn bound_columns(
    select: &Named,
    columns: &[String],
    rowtime: bool,
) -> (Option<String>, Option<String>) {
    let end = if rowtime {
        Some("ROWTIME".to_string())
    } else {
        carried(select, columns, "window_end")
    };
    (carried(select, columns, "window_start"), end)
}

/// The output column a select list keeps `col` in: the one of that name, else the first
/// that is exactly it under another name.
fn carried(select: &Named, columns: &[String], col: &str) -> Option<String> {
    let kept = |n: &String| columns.contains(n);
    let value = Scalar::Col(col.to_string());
    select
        .iter()
        .find(|(n, v)| n == col && *v == value && kept(n))
        .or_else(|| select.iter().find(|(n, v)| *v == value && kept(n)))
        .map(|(n, _)| n.clone())
}

/// The columns that carry `origin` (a column the window emits: `window_end`) through the
/// steps over its output, under its own name or an alias.
fn traced(post: &[Step], origin: &str) -> Vec<String> {
    let mut found = vec![origin.to_string()];
    for step in post {
        let carries =
            |v: &Scalar, found: &[String]| matches!(v, Scalar::Col(c) if found.contains(c));
        match step {
            Step::Select(items) => {
                found = items
                    .iter()
                    .filter(|(_, v)| carries(v, &found))
                    .map(|(n, _)| n.clone())
                    .collect();
            }
            Step::WithColumns(items) => {
                let (kept, replaced): (Vec<_>, Vec<_>) =
                    items.iter().partition(|(_, v)| carries(v, &found));
                found.retain(|f| !replaced.iter().any(|(n, _)| n == f));
                found.extend(kept.into_iter().map(|(n, _)| n.clone()));
            }
            Step::Explode { value, count, .. } => found.retain(|f| f != value && f != count),
            _ => {}
        }
    }
    found
}

/// A ROWTIME stamped at arrival survives every select before the window.
fn keep_rowtime(steps: &mut [Step]) {
    for step in steps {
        if let Step::Select(items) = step {
            if !items.iter().any(|(n, _)| n == "ROWTIME") {
                items.push(("ROWTIME".into(), Scalar::Col("ROWTIME".into())));
            }
        }
    }
}

fn check_unique(columns: &[String], span: Span) -> Res<()> {
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].contains(c) {
            return Err(SqlError::span(
                format!("the output has two columns named {c:?}; give one an alias (AS ...)"),
                span,
            ));
        }
    }
    Ok(())
}

fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let v: Vec<String> = items.map(|s| format!("{:?}", s.as_ref())).collect();
    v.join(", ")
}

fn known<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&String> = items.collect();
    if v.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", list(v.into_iter()))
    }
}

/// `window_start`, `window_end` or `window_time`, when `e` names one (qualified or not).
fn bound_name(e: &Expr) -> Option<&'static str> {
    let last = match e {
        Expr::Identifier(id) => id,
        Expr::CompoundIdentifier(ids) => ids.last()?,
        _ => return None,
    };
    WINDOW_COLUMNS.into_iter().find(|w| names(last, w))
}

fn idents(e: &Expr) -> Vec<Ident> {
    match e {
        Expr::Identifier(id) => vec![id.clone()],
        Expr::CompoundIdentifier(ids) => ids.clone(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Function arguments.

#[derive(Clone, Default)]
struct Args {
    positional: Vec<Expr>,
    named: Vec<(String, Expr)>,
}

impl Args {
    /// Named and positional arguments matched to `names`, in order.
    fn bind(&mut self, function: &str, names: &[&str], span: Span) -> Res<BTreeMap<String, Expr>> {
        let mut out = BTreeMap::new();
        if self.positional.len() > names.len() {
            return Err(SqlError::span(
                format!(
                    "{function} takes at most {} arguments ({})",
                    names.len(),
                    names.join(", ")
                ),
                span,
            ));
        }
        for (e, n) in self.positional.drain(..).zip(names) {
            out.insert(n.to_string(), e);
        }
        for (n, e) in self.named.drain(..) {
            let up = n.to_ascii_uppercase();
            if !names.contains(&up.as_str()) {
                return Err(SqlError::span(
                    format!(
                        "{function} has no argument {n}; it takes {}",
                        names.join(", ")
                    ),
                    e.span(),
                ));
            }
            out.insert(up, e);
        }
        Ok(out)
    }
}

fn function_args(f: &ast::Function) -> Res<Args> {
    let mut args = Args::default();
    match &f.args {
        FunctionArguments::None => {}
        FunctionArguments::Subquery(q) => args.positional.push(Expr::Subquery(q.clone())),
        FunctionArguments::List(l) => {
            for a in &l.args {
                match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                        args.positional.push(e.clone())
                    }
                    FunctionArg::Named {
                        name,
                        arg: FunctionArgExpr::Expr(e),
                        ..
                    } => args.named.push((name.value.clone(), e.clone())),
                    other => {
                        return Err(SqlError::span(
                            format!("unexpected argument {other}"),
                            f.span(),
                        ))
                    }
                }
            }
        }
    }
    Ok(args)
}

fn descriptor(e: &Expr) -> Res<Ident> {
    if let Expr::Function(f) = e {
        if f.name.to_string().eq_ignore_ascii_case("DESCRIPTOR") {
            let a = function_args(f)?;
            if let [Expr::Identifier(id)] = a.positional.as_slice() {
                return Ok(id.clone());
            }
        }
    }
    Err(SqlError::span(
        "the time column is given as DESCRIPTOR(column)",
        e.span(),
    ))
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn positive_int(e: &Expr, what: &str) -> Res<i64> {
    literal::<i64>(e).filter(|&i| i > 0).ok_or_else(|| {
        SqlError::span(
            format!("{what} must be a positive integer, found {e}"),
            e.span(),
        )
    })
}

/// A positive number (integer or decimal).
fn positive_number(e: &Expr, what: &str) -> Res<f64> {
    literal::<f64>(e)
        .filter(|&x| x > 0.0 && x.is_finite())
        .ok_or_else(|| {
            SqlError::span(
                format!("{what} must be a positive number, found {e}"),
                e.span(),
            )
        })
}

/// A numeric literal read as `T`, if it is one that parses.
fn literal<T: std::str::FromStr>(e: &Expr) -> Option<T> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.to_string().parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The `n` of `ROWS n PRECEDING`: a whole number of rows.
fn row_count(e: &Expr) -> Res<Duration> {
    literal::<i64>(e)
        .filter(|&n| n >= 0)
        .map(Duration::Count)
        .ok_or_else(|| {
            SqlError::span(
                format!(
                    "ROWS <n> PRECEDING takes a whole number of rows such as ROWS 9 \
                     PRECEDING, got {e}"
                ),
                e.span(),
            )
        })
}

/// An `INTERVAL` (or an integer, for integer time columns) as a duration.
fn duration(e: &Expr) -> Res<Duration> {
    match e {
        Expr::Interval(iv) => {
            let text = match iv.value.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) => s.trim().to_string(),
                    Value::Number(n, _) => n.to_string(),
                    _ => {
                        return Err(SqlError::span(
                            format!("unexpected interval value in {e}"),
                            e.span(),
                        ))
                    }
                },
                _ => {
                    return Err(SqlError::span(
                        format!("unexpected interval value in {e}"),
                        e.span(),
                    ))
                }
            };
            if iv.last_field.is_some() {
                return Err(unsupported(
                    "an INTERVAL range (e.g. MINUTE TO SECOND)",
                    e.span(),
                ));
            }
            let (number, unit) = match &iv.leading_field {
                Some(f) => (
                    text.clone(),
                    unit_of(f).ok_or_else(|| {
                        SqlError::span(format!("unsupported interval unit {f}"), e.span())
                    })?,
                ),
                None => {
                    let mut parts = text.split_whitespace();
                    let n = parts.next().unwrap_or_default().to_string();
                    let u = parts.next().unwrap_or_default();
                    let unit = word_unit(u).ok_or_else(|| {
                        SqlError::span(
                            format!("INTERVAL '{text}' needs a unit, e.g. INTERVAL '1' MINUTE"),
                            e.span(),
                        )
                    })?;
                    (n, unit)
                }
            };
            let n: i64 = number.parse().map_err(|_| {
                SqlError::span(
                    format!(
                        "INTERVAL '{number}' must be a whole number of {unit_name}",
                        unit_name = unit_long(unit)
                    ),
                    e.span(),
                )
            })?;
            if n <= 0 {
                return Err(SqlError::span(
                    format!("INTERVAL '{number}' must be positive"),
                    e.span(),
                ));
            }
            Ok(Duration::Text(format!("{n}{unit}")))
        }
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .to_string()
                .parse::<i64>()
                .map(Duration::Count)
                .map_err(|_| SqlError::span(format!("{n} is not an integer duration"), e.span())),
            _ => Err(SqlError::span(
                format!("expected a duration such as INTERVAL '1' MINUTE, found {e}"),
                e.span(),
            )),
        },
        Expr::Nested(inner) => duration(inner),
        _ => Err(SqlError::span(
            format!("expected a duration such as INTERVAL '1' MINUTE, found {e}"),
            e.span(),
        )),
    }
}

/// A duration in one spelling: nanoseconds for fixed spans, months for calendar ones, the
/// count for integers (`'60' SECOND` and `'1' MINUTE` are the same).
fn canonical(d: &Duration) -> String {
    let Duration::Text(text) = d else {
        return format!("{d:?}");
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let Ok(n) = n.parse::<i128>() else {
        return text.clone();
    };
    let (scale, calendar): (i128, bool) = match unit {
        "ns" => (1, false),
        "us" => (1_000, false),
        "ms" => (1_000_000, false),
        "s" => (1_000_000_000, false),
        "m" => (60_000_000_000, false),
        "h" => (3_600_000_000_000, false),
        "d" => (86_400_000_000_000, false),
        "w" => (604_800_000_000_000, false),
        "mo" => (1, true),
        "y" => (12, true),
        _ => return text.clone(),
    };
    if calendar {
        format!("{}mo", n * scale)
    } else {
        format!("{}ns", n * scale)
    }
}

fn unit_of(f: &DateTimeField) -> Option<&'static str> {
    Some(match f {
        DateTimeField::Year | DateTimeField::Years => "y",
        DateTimeField::Month | DateTimeField::Months => "mo",
        DateTimeField::Week(_) | DateTimeField::Weeks => "w",
        DateTimeField::Day | DateTimeField::Days => "d",
        DateTimeField::Hour | DateTimeField::Hours => "h",
        DateTimeField::Minute | DateTimeField::Minutes => "m",
        DateTimeField::Second | DateTimeField::Seconds => "s",
        DateTimeField::Millisecond | DateTimeField::Milliseconds => "ms",
        DateTimeField::Microsecond | DateTimeField::Microseconds => "us",
        DateTimeField::Nanosecond | DateTimeField::Nanoseconds => "ns",
        _ => return None,
    })
}

fn word_unit(w: &str) -> Option<&'static str> {
    let w = w.to_ascii_lowercase();
    let w = w.strip_suffix('s').unwrap_or(&w);
    Some(match w {
        "year" => "y",
        "month" => "mo",
        "week" => "w",
        "day" => "d",
        "hour" => "h",
        "minute" => "m",
        "second" => "s",
        "millisecond" => "ms",
        "microsecond" => "us",
        _ => return None,
    })
}

fn unit_long(u: &str) -> &'static str {
    match u {
        "y" => "years",
        "mo" => "months",
        "w" => "weeks",
        "d" => "days",
        "h" => "hours",
        "m" => "minutes",
        "s" => "seconds (use MILLISECOND for less)",
        "ms" => "milliseconds",
        _ => "units",
    }
}

// ---------------------------------------------------------------------------------------
// Aggregates.

/// Aggregates other engines have and rillet does not: named as unsupported, not mistaken
/// for scalar functions.
const OTHER_AGGREGATES: [&str; 16] = [
    "STRING_AGG",
    "ARRAY_AGG",
    "LISTAGG",
    "GROUP_CONCAT",
    "BOOL_AND",
    "BOOL_OR",
    "EVERY",
    "ANY_VALUE",
    "COLLECT",
    "BIT_AND",
    "BIT_OR",
    "CORR",
    "COVAR_POP",
    "COVAR_SAMP",
    "ARG_MAX",
    "ARG_MIN",
];

const AGGREGATES: [&str; 20] = [
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "VAR_SAMP",
    "VARIANCE",
    "VAR_POP",
    "STDDEV",
    "STDDEV_SAMP",
    "STDDEV_POP",
    "FIRST_VALUE",
    "LAST_VALUE",
    "APPROX_COUNT_DISTINCT",
    "MEDIAN",
    "PERCENTILE_DISC",
    "APPROX_PERCENTILE",
    "APPROX_QUANTILE",
    "PERCENTILE_CONT",
    "MODE",
];

fn is_aggregate(f: &ast::Function) -> bool {
    let n = f.name.to_string().to_ascii_uppercase();
    AGGREGATES.contains(&n.as_str())
}

/// The aggregate calls of a SELECT, and the calls OVER a window.
#[derive(Default)]
struct Calls {
    aggs: Vec<ast::Function>,
    over: Vec<ast::Function>,
}

impl Calls {
    fn collect(&mut self, e: &Expr) -> Res<()> {
        struct V<'a>(&'a mut Calls, Option<SqlError>, usize);
        impl sqlparser::ast::Visitor for V<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                if let Expr::Function(f) = e {
                    let name = f.name.to_string().to_ascii_uppercase();
                    if OTHER_AGGREGATES.contains(&name.as_str()) {
                        self.1 = Some(SqlError::span(
                            format!(
                                "the aggregate {name} is not supported; rillet has COUNT, SUM, AVG, \
                                 MIN, MAX, VAR/STDDEV, FIRST_VALUE, LAST_VALUE, COUNT(DISTINCT), \
                                 APPROX_COUNT_DISTINCT, MEDIAN, PERCENTILE_CONT/DISC and \
                                 APPROX_PERCENTILE"
                            ),
                            f.span(),
                        ));
                        return ControlFlow::Break(());
                    }
                    if is_aggregate(f) {
                        if self.2 > 0 {
                            self.1 =
                                Some(SqlError::span("an aggregate inside an aggregate", f.span()));
                            return ControlFlow::Break(());
                        }
                        if f.over.is_some() {
                            self.0.over.push(f.clone());
                        } else {
                            self.0.aggs.push(f.clone());
                        }
                        self.2 += 1;
                    }
                }
                ControlFlow::Continue(())
            }
            fn post_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                if let Expr::Function(f) = e {
                    if is_aggregate(f) {
                        self.2 -= 1;
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let mut v = V(self, None, 0);
        let _ = sqlparser::ast::Visit::visit(e, &mut v);
        match v.1 {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn aggregate(f: &ast::Function, scope: &Scope) -> Res<Aggregate> {
    let name = f.name.to_string().to_ascii_uppercase();
    let span = f.span();
    let (args, distinct, within) = match &f.args {
        FunctionArguments::List(l) => {
            let distinct = matches!(
                l.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            if let Some(c) = l.clauses.first() {
                return Err(unsupported(&format!("{c} inside {name}(...)"), span));
            }
            if let Some(n) = &f.null_treatment {
                return Err(unsupported(&format!("{name}(...) {n}"), span));
            }
            (l.args.clone(), distinct, f.within_group.clone())
        }
        FunctionArguments::None => (Vec::new(), false, Vec::new()),
        FunctionArguments::Subquery(_) => {
            return Err(unsupported("a sub-query as an aggregate's argument", span))
        }
    };
    let star = matches!(
        args.as_slice(),
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
    );
    let exprs: Vec<&Expr> = args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    let one = || -> Res<&Expr> {
        match exprs.as_slice() {
            [e] => Ok(e),
            _ => Err(SqlError::span(format!("{name} takes one argument"), span)),
        }
    };
    let input = |e: &Expr| -> Res<(Scalar, String)> {
        match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                let c = scope.column(&idents(e), e.span())?;
                Ok((Scalar::Col(c.clone()), c))
            }
            _ => Ok((scope.scalar(e)?, String::new())),
        }
    };
    let mut options = BTreeMap::new();
    let (kind, column, suffix): (&str, Option<(Scalar, String)>, String) = match name.as_str() {
        "COUNT" if star || exprs.is_empty() => ("count", None, "count".into()),
        "COUNT" if distinct => (
            "count_distinct",
            Some(input(one()?)?),
            "count_distinct".into(),
        ),
        "COUNT" => ("count", Some(input(one()?)?), "count".into()),
        "SUM" => ("sum", Some(input(one()?)?), "sum".into()),
        "AVG" => ("mean", Some(input(one()?)?), "mean".into()),
        "MIN" => ("min", Some(input(one()?)?), "min".into()),
        "MAX" => ("max", Some(input(one()?)?), "max".into()),
        "VAR_SAMP" | "VARIANCE" | "VAR_POP" => {
            options.insert(
                "ddof".into(),
                serde_json::json!(if name == "VAR_POP" { 0 } else { 1 }),
            );
            ("var", Some(input(one()?)?), "var".into())
        }
        "STDDEV" | "STDDEV_SAMP" | "STDDEV_POP" => {
            options.insert(
                "ddof".into(),
                serde_json::json!(if name == "STDDEV_POP" { 0 } else { 1 }),
            );
            ("std", Some(input(one()?)?), "std".into())
        }
        "FIRST_VALUE" => ("first", Some(input(one()?)?), "first".into()),
        "LAST_VALUE" => ("last", Some(input(one()?)?), "last".into()),
        "APPROX_COUNT_DISTINCT" => (
            "approx_count_distinct",
            Some(input(one()?)?),
            "approx_count_distinct".into(),
        ),
        "MEDIAN" => {
            // As SQL engines: the mean of the two middle values of an even count.
            options.insert("q".into(), serde_json::json!(0.5));
            options.insert("interpolation".into(), serde_json::json!("linear"));
            ("quantile", Some(input(one()?)?), "median".into())
        }
        "PERCENTILE_DISC" | "PERCENTILE_CONT" => {
            let q = fraction(one()?)?;
            let [o] = within.as_slice() else {
                return Err(SqlError::span(
                    format!("{name}(q) WITHIN GROUP (ORDER BY column)"),
                    span,
                ));
            };
            if o.options.sort == Some(ast::OrderBySort::Desc) {
                return Err(unsupported(&format!("{name} ... ORDER BY ... DESC"), span));
            }
            let method = if name == "PERCENTILE_DISC" {
                "equiprobable"
            } else {
                "linear"
            };
            options.insert("q".into(), serde_json::json!(q));
            options.insert("interpolation".into(), serde_json::json!(method));
            ("quantile", Some(input(&o.expr)?), quantile_suffix(q))
        }
        "APPROX_PERCENTILE" | "APPROX_QUANTILE" => {
            let [e, q] = exprs.as_slice() else {
                return Err(SqlError::span(format!("{name}(column, q)"), span));
            };
            let q = fraction(q)?;
            options.insert("q".into(), serde_json::json!(q));
            ("approx_quantile", Some(input(e)?), quantile_suffix(q))
        }
        _ => {
            return Err(SqlError::span(
                format!(
                "{name} is not supported; use PERCENTILE_DISC, PERCENTILE_CONT or APPROX_PERCENTILE"
            ),
                span,
            ))
        }
    };
    if distinct && kind != "count_distinct" {
        return Err(unsupported(&format!("{name}(DISTINCT ...)"), span));
    }
    let filter = f.filter.as_ref().map(|w| scope.scalar(w)).transpose()?;
    let default = match &column {
        None => "count".to_string(),
        Some((_, c)) if !c.is_empty() => format!("{c}_{suffix}"),
        Some(_) => f.to_string(),
    };
    let default = if filter.is_some() && column.as_ref().is_none_or(|(_, c)| !c.is_empty()) {
        // Same name as without the filter would clash with it; the SQL text names it.
        f.to_string()
    } else {
        default
    };
    Ok(Aggregate {
        kind: kind.into(),
        column: column.map(|(s, _)| s),
        filter,
        name: default,
        options,
    })
}

fn fraction(e: &Expr) -> Res<f64> {
    if let Expr::Value(v) = e {
        if let Value::Number(n, _) = &v.value {
            if let Ok(q) = n.to_string().parse::<f64>() {
                if (0.0..=1.0).contains(&q) {
                    return Ok(q);
                }
            }
        }
    }
    Err(SqlError::span(
        format!("a quantile is a number between 0 and 1, found {e}"),
        e.span(),
    ))
}

/// As the Python API names quantiles: `q99`, `q99.9`, `q50`.
fn quantile_suffix(q: f64) -> String {
    let v = format!("{:.4}", q * 100.0);
    let v = v.trim_end_matches('0').trim_end_matches('.');
    format!("q{v}")
}

// ---------------------------------------------------------------------------------------
// Names and expressions.

/// What names mean before the window: the input's columns.
struct Scope {
    columns: Option<Vec<String>>,
    qualifiers: Vec<Ident>,
    /// Columns declared unquoted in the SQL text (see [`declared`]).
    folded: Vec<String>,
    rowtime: String,
    /// `window_start`, `window_end`, `window_time` of a TVF are columns here.
    tvf: bool,
    /// A join's inputs: a name resolves in the one that has it (or the one it is qualified
    /// by), to that column's name in the join's output.
    sides: Vec<Side>,
}

impl Scope {
    fn of(rel: &Rel) -> Scope {
        Scope {
            columns: rel.columns.clone(),
            qualifiers: rel.qualifiers.clone(),
            folded: rel.folded.clone(),
            rowtime: rel.time.clone().unwrap_or_else(|| "ROWTIME".into()),
            tvf: rel.tvf.is_some(),
            sides: rel.sides.clone(),
        }
    }

    /// The column a (possibly qualified) name refers to.
    fn column(&self, parts: &[Ident], span: Span) -> Res<String> {
        let (qualifier, id) = match parts {
            [id] => (None, id),
            [q, id] => (Some(q), id),
            [.., q, id] => (Some(q), id),
            [] => return Err(SqlError::span("expected a column name", span)),
        };
        if !self.sides.is_empty() {
            return self.joined_column(qualifier, id);
        }
        if let Some(q) = qualifier {
            if !self
                .qualifiers
                .iter()
                .any(|known| names(q, &known.value) || names(known, &q.value))
            {
                return Err(SqlError::span(
                    format!(
                        "{} is not a stream of this query (it reads {})",
                        q.value,
                        list(self.qualifiers.iter().map(|i| &i.value))
                    ),
                    q.span,
                ));
            }
        }
        // A column spelled exactly so (Flink's `window_time AS rowtime`) is that column;
        // otherwise ROWTIME is the input's time.
        let exact = self
            .columns
            .as_ref()
            .is_some_and(|cols| cols.contains(&id.value) && id.value != "ROWTIME");
        if is_rowtime(id) && !exact {
            return Ok(self.rowtime.clone());
        }
        if self.tvf && WINDOW_COLUMNS.iter().any(|w| names(id, w)) {
            return Ok(id.value.to_ascii_lowercase());
        }
        let Some(cols) = &self.columns else {
            return Ok(id.value.clone());
        };
        if let Some(c) = match_column(id, cols, &self.folded)? {
            return Ok(c);
        }
        let shown: Vec<&String> = cols.iter().filter(|c| c.as_str() != "ROWTIME").collect();
        Err(SqlError::span(
            format!(
                "column {} not found; the input has columns {}",
                id.value,
                list(shown.into_iter())
            ),
            id.span,
        ))
    }

    /// `t.*` in a join: the columns of input `t`, each its own name and its name in the
    /// join's output (a key of a reference table in a left join, which the join does not
    /// keep, is left out).
    fn side_star(&self, kind: &ast::SelectItemQualifiedWildcardKind) -> Res<Vec<(String, String)>> {
        let ast::SelectItemQualifiedWildcardKind::ObjectName(name) = kind else {
            return Err(unsupported("this qualified *", Span::empty()));
        };
        let q = object_name(name)?;
        let Some(side) = self.sides.iter().find(|side| {
            side.qualifiers
                .iter()
                .any(|k| names(&q, &k.value) || names(k, &q.value))
        }) else {
            return Err(self.no_such_input(&q));
        };
        Ok(side
            .columns
            .iter()
            .zip(&side.out)
            .filter(|(c, _)| c.as_str() != "ROWTIME" && !c.starts_with("__rl_"))
            .filter_map(|(c, o)| o.as_ref().ok().map(|o| (c.clone(), o.clone())))
            .collect())
    }

    /// A join's column under its input's own name (`t.region` is `region`), if it resolves.
    fn own_name(&self, parts: &[Ident]) -> Option<String> {
        let out = self.column(parts, Span::empty()).ok()?;
        let (qualifier, id) = match parts {
            [id] => (None, id),
            [.., q, id] => (Some(q), id),
            [] => return None,
        };
        self.sides
            .iter()
            .filter(|side| {
                qualifier.is_none_or(|q| {
                    side.qualifiers
                        .iter()
                        .any(|k| names(q, &k.value) || names(k, &q.value))
                })
            })
            .find_map(|side| {
                let c = match_column(id, &side.columns, &side.folded).ok()??;
                let p = side.columns.iter().position(|x| *x == c)?;
                (side.out[p].as_ref().ok() == Some(&out)).then_some(c)
            })
            .or(Some(out))
    }

    fn no_such_input(&self, q: &Ident) -> SqlError {
        let known: Vec<&String> = self
            .sides
            .iter()
            .flat_map(|s| s.qualifiers.iter().map(|i| &i.value))
            .collect();
        SqlError::span(
            format!(
                "{} is not an input of this join (it reads {})",
                q.value,
                list(known.into_iter())
            ),
            q.span,
        )
    }

    /// A name in a join: the column of the input it is qualified by, or of the one input
    /// that has it, as the join's output names it.
    fn joined_column(&self, qualifier: Option<&Ident>, id: &Ident) -> Res<String> {
        if is_rowtime(id) && qualifier.is_none() {
            return Ok(self.rowtime.clone()); // the query's time: the stream's
        }
        let mut hits: Vec<(usize, Result<String, String>)> = Vec::new();
        let mut qualified = false;
        for (i, side) in self.sides.iter().enumerate() {
            if let Some(q) = qualifier {
                if !side
                    .qualifiers
                    .iter()
                    .any(|k| names(q, &k.value) || names(k, &q.value))
                {
                    continue;
                }
                qualified = true;
            }
            let found = match match_column(id, &side.columns, &side.folded)? {
                Some(c) => {
                    let p = side.columns.iter().position(|x| *x == c).expect("found");
                    Some(side.out[p].clone())
                }
                // ROWTIME of an input is its time; unqualified, the query's.
                None if is_rowtime(id) => match (&side.time, qualifier) {
                    (Some(t), _) => Some(Ok(t.clone())),
                    (None, _) if i == 0 => Some(Ok(self.rowtime.clone())),
                    (None, q) => Some(Err(format!(
                        "{} has no event time here: ROWTIME is the query's, {}",
                        q.map_or("this input", |q| q.value.as_str()),
                        self.rowtime
                    ))),
                },
                None => None,
            };
            if let Some(f) = found {
                hits.push((i, f));
            }
        }
        // Unqualified, an outer join's key is the stream's: the copy of the other side's
        // key (null where nothing matched) is read by its qualified name only.
        if qualifier.is_none() && hits.len() > 1 {
            let copy =
                |o: &Result<String, String>| o.as_ref().is_ok_and(|n| n.starts_with("__rl_key"));
            if hits.iter().any(|(_, o)| !copy(o)) {
                hits.retain(|(_, o)| !copy(o));
            }
        }
        if let (Some(q), false) = (qualifier, qualified) {
            return Err(self.no_such_input(q));
        }
        let side_names = |i: usize| {
            self.sides[i]
                .qualifiers
                .last()
                .map_or_else(|| format!("input {}", i + 1), |q| q.value.clone())
        };
        match hits.as_slice() {
            [] => {
                let shown: Vec<String> = self
                    .sides
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| {
                        qualifier.is_none_or(|q| s.qualifiers.iter().any(|k| names(q, &k.value)))
                    })
                    .map(|(i, s)| format!("{}: {}", side_names(i), list(s.columns.iter())))
                    .collect();
                Err(SqlError::span(
                    format!(
                        "column {} not found; the inputs have columns {}",
                        id.value,
                        shown.join("; ")
                    ),
                    id.span,
                ))
            }
            [(_, Ok(one))] => Ok(one.clone()),
            [(_, Err(why))] => Err(SqlError::span(why.clone(), id.span)),
            many => {
                let outs: Vec<&String> = many.iter().filter_map(|(_, o)| o.as_ref().ok()).collect();
                // An inner join's key is one value; unqualified, an outer join's key is the
                // stream's (the other side's is refused only when asked for by name).
                if !outs.is_empty() && outs.iter().all(|o| *o == outs[0]) {
                    let keyed = many.iter().all(|(_, o)| match o {
                        Ok(_) => true,
                        Err(why) => why.contains("is a join key"),
                    });
                    if keyed {
                        return Ok(outs[0].clone());
                    }
                }
                Err(SqlError::span(
                    format!(
                        "{} is a column of {}; qualify it ({}.{})",
                        id.value,
                        many.iter()
                            .map(|(i, _)| side_names(*i))
                            .collect::<Vec<_>>()
                            .join(" and "),
                        side_names(many[0].0),
                        id.value
                    ),
                    id.span,
                ))
            }
        }
    }

    fn plain_column(&self, e: &Expr) -> Res<String> {
        match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => self.column(&idents(e), e.span()),
            _ => Err(SqlError::span(
                format!("expected a column, found {e}"),
                e.span(),
            )),
        }
    }

    /// `STEP(col BY INTERVAL ...)` or `FLOOR(col TO unit)`: the column and the bucket size.
    fn time_bucket(&self, e: &Expr) -> Res<Option<(String, Duration)>> {
        match e {
            Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("STEP") => {
                let a = function_args(f)?;
                let [col, every] = a.positional.as_slice() else {
                    return Err(SqlError::span(
                        "STEP(column BY INTERVAL '<n>' <unit>)",
                        f.span(),
                    ));
                };
                Ok(Some((self.plain_column(col)?, duration(every)?)))
            }
            Expr::Floor {
                expr,
                field: CeilFloorKind::DateTimeField(field),
            } => {
                let unit = unit_of(field).ok_or_else(|| SqlError::span(format!("FLOOR(... TO {field}) is not supported; use SECOND, MINUTE, HOUR, DAY, WEEK, MONTH or YEAR"), e.span()))?;
                Ok(Some((
                    self.plain_column(expr)?,
                    Duration::Text(format!("1{unit}")),
                )))
            }
            Expr::Nested(inner) => self.time_bucket(inner),
            _ => Ok(None),
        }
    }

    /// An expression over the input as polars SQL text.
    fn scalar(&self, e: &Expr) -> Res<Scalar> {
        if let Some((column, every)) = self.time_bucket(e)? {
            return Ok(Scalar::Truncate { column, every });
        }
        if let Expr::Identifier(_) | Expr::CompoundIdentifier(_) = e {
            return Ok(Scalar::Col(self.column(&idents(e), e.span())?));
        }
        let mut copy = e.clone();
        let mut r = Resolver {
            scope: self,
            out: None,
            error: None,
        };
        let _ = copy.visit(&mut r);
        if let Some(err) = r.error {
            return Err(err);
        }
        Ok(sql(&copy, e.span()))
    }

    /// The expression with its names resolved, for matching one expression to another.
    /// Two spellings of one value give the same text: names resolved, function names in
    /// upper case, time buckets as their column and size (`STEP(s.ROWTIME BY INTERVAL '60'
    /// SECOND)` is `FLOOR(ROWTIME TO MINUTE)`).
    fn text(&self, e: &Expr) -> String {
        if let Ok(Some((column, every))) = self.time_bucket(e) {
            return format!("BUCKET({column:?}, {})", canonical(&every));
        }
        let mut copy = e.clone();
        let mut r = Resolver {
            scope: self,
            out: None,
            error: None,
        };
        let _ = copy.visit(&mut r);
        struct Upper;
        impl VisitorMut for Upper {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
                if let Expr::Function(f) = e {
                    for part in &mut f.name.0 {
                        if let ObjectNamePart::Identifier(id) = part {
                            if id.quote_style.is_none() {
                                id.value = id.value.to_ascii_uppercase();
                            }
                        }
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let _ = copy.visit(&mut Upper);
        copy.to_string()
    }

    /// The name an unaliased select item gets: a column's own name, else the expression.
    fn output_name(&self, e: &Expr) -> String {
        match e {
            // In a join, a column keeps its own name (`t.region` is `region`, as in SQL).
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) if !self.sides.is_empty() => {
                self.own_name(&idents(e)).unwrap_or_else(|| e.to_string())
            }
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => self
                .column(&idents(e), e.span())
                .unwrap_or_else(|_| e.to_string()),
            _ => e.to_string(),
        }
    }
}

/// The (possibly qualified) column names in an expression, each as its parts.
fn all_idents(e: &Expr) -> Vec<Vec<Ident>> {
    struct Names(Vec<Vec<Ident>>);
    impl sqlparser::ast::Visitor for Names {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(id) => self.0.push(vec![id.clone()]),
                Expr::CompoundIdentifier(ids) => self.0.push(ids.clone()),
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(Vec::new());
    let _ = sqlparser::ast::Visit::visit(e, &mut names);
    names.0
}

/// A duration as written in SQL, signed (`-10m`, `5`).
fn join_text(d: &Duration) -> String {
    match d {
        Duration::Count(n) => n.to_string(),
        Duration::Text(t) => t.clone(),
    }
}

/// The column of `cols` a name means: spelled exactly so; quoted, declared so unquoted (see
/// [`declared`]); unquoted, the one column spelled so in any case (several: an error).
fn match_column(id: &Ident, cols: &[String], folded: &[String]) -> Res<Option<String>> {
    if cols.contains(&id.value) {
        return Ok(Some(id.value.clone()));
    }
    if id.quote_style.is_some() {
        return Ok(cols.iter().find(|c| declared(id, c, folded)).cloned());
    }
    let found: Vec<&String> = cols
        .iter()
        .filter(|c| c.eq_ignore_ascii_case(&id.value))
        .collect();
    match found.as_slice() {
        [one] => Ok(Some((*one).clone())),
        [] => Ok(None),
        many => Err(SqlError::span(
            format!(
                "{} matches several columns ({}); quote the one you mean",
                id.value,
                list(many.iter().copied())
            ),
            id.span,
        )),
    }
}

/// `"end" - INTERVAL '1 millisecond'`: Flink's `window_time` of a window ending at `end`.
fn window_time(end: &str) -> Expr {
    let text = format!(
        "(\"{}\" - INTERVAL '1 millisecond')",
        end.replace('"', "\"\"")
    );
    Parser::new(&StreamingDialect)
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_expr())
        .expect("a quoted name minus an interval parses")
}

fn sql(e: &Expr, span: Span) -> Scalar {
    Scalar::Sql {
        text: e.to_string(),
        line: span.start.line,
        column: span.start.column,
    }
}

/// What names mean over a window's output: keys, aggregates and bounds.
struct OutputScope<'a> {
    input: &'a Scope,
    /// Group expressions (resolved text) and their output columns.
    keys: Vec<(String, String)>,
    /// Aggregate calls (resolved text) and their output columns.
    aggs: Vec<(String, String)>,
    /// The column ROWTIME means.
    rowtime: Option<String>,
    /// The window's bounds, when in the output: (start, end).
    bounds: Option<(String, String)>,
    /// Over another query's output: any of its columns may be named.
    passthrough: bool,
}

impl OutputScope<'_> {
    fn scalar(&self, e: &Expr) -> Res<Scalar> {
        if let Some(c) = self.replacement(e)? {
            return Ok(Scalar::Col(c));
        }
        if let Some((column, every)) = self.input.time_bucket(e)? {
            // FLOOR(ROWTIME TO SECOND) over the output: the output's time, truncated.
            let col = if column == self.input.rowtime {
                self.rowtime.clone().unwrap_or(column)
            } else {
                self.named(&idents_of_bucket(e), e.span())?
            };
            return Ok(Scalar::Truncate { column: col, every });
        }
        let mut copy = e.clone();
        let mut r = Resolver {
            scope: self.input,
            out: Some(self),
            error: None,
        };
        let _ = copy.visit(&mut r);
        if let Some(err) = r.error {
            return Err(err);
        }
        if let Expr::Identifier(id) = &copy {
            if id.quote_style == Some('"') {
                return Ok(Scalar::Col(id.value.clone()));
            }
        }
        Ok(sql(&copy, e.span()))
    }

    /// A whole expression that is a key, an aggregate or a bound: its output column.
    fn replacement(&self, e: &Expr) -> Res<Option<String>> {
        if self.passthrough {
            return Ok(None);
        }
        let text = self.input.text(e);
        if let Some((_, c)) = self.aggs.iter().find(|(t, _)| *t == text) {
            return Ok(Some(c.clone()));
        }
        if let Some((_, c)) = self.keys.iter().find(|(t, _)| *t == text) {
            return Ok(Some(c.clone()));
        }
        Ok(None)
    }

    /// A name over the output.
    fn named(&self, parts: &[Ident], span: Span) -> Res<String> {
        let Some(id) = parts.last() else {
            return Err(SqlError::span("expected a column name", span));
        };
        if is_rowtime(id) {
            if let Some(r) = &self.rowtime {
                return Ok(r.clone());
            }
        }
        if let Some((start, end)) = &self.bounds {
            if names(id, "window_start") {
                return Ok(start.clone());
            }
            if names(id, "window_end") {
                return Ok(end.clone());
            }
        }
        if self.passthrough {
            return self.input.column(parts, span);
        }
        let col = self.input.column(parts, span)?;
        if self.bounds.is_none() && col == self.input.rowtime {
            // A sliding window's row time, named by its column.
            if let Some(r) = &self.rowtime {
                return Ok(r.clone());
            }
        }
        if let Some((_, c)) = self
            .keys
            .iter()
            .find(|(t, _)| *t == format!("\"{col}\"") || *t == col)
        {
            return Ok(c.clone());
        }
        Err(SqlError::span(
            format!(
                "column {} is neither a GROUP BY key nor inside an aggregate",
                id.value
            ),
            id.span,
        ))
    }
}

fn idents_of_bucket(e: &Expr) -> Vec<Ident> {
    match e {
        Expr::Function(f) => match function_args(f) {
            Ok(a) => a.positional.first().map(idents).unwrap_or_default(),
            Err(_) => Vec::new(),
        },
        Expr::Floor { expr, .. } => idents(expr),
        Expr::Nested(inner) => idents_of_bucket(inner),
        _ => Vec::new(),
    }
}

/// Rewrites names to quoted columns (over the input, or over a window's output).
struct Resolver<'a> {
    scope: &'a Scope,
    out: Option<&'a OutputScope<'a>>,
    error: Option<SqlError>,
}

impl VisitorMut for Resolver<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let fail = |this: &mut Self, err: SqlError| {
            this.error = Some(err);
            ControlFlow::Break(())
        };
        if let Some(out) = self.out {
            match out.replacement(e) {
                Ok(Some(c)) => {
                    *e = Expr::Identifier(quoted(&c));
                    return ControlFlow::Continue(());
                }
                Ok(None) => {}
                Err(err) => return fail(self, err),
            }
        }
        match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_)
                if bound_name(e) == Some("window_time")
                    && self.out.is_some_and(|o| o.bounds.is_some()) =>
            {
                // Flink's window_time: the window's end less a millisecond.
                let end = &self.out.and_then(|o| o.bounds.as_ref()).expect("checked").1;
                *e = window_time(end);
            }
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                let span = e.span();
                let parts = idents(e);
                let r = match self.out {
                    Some(out) => out.named(&parts, span),
                    None => self.scope.column(&parts, span),
                };
                match r {
                    Ok(c) => *e = Expr::Identifier(quoted(&c)),
                    Err(err) => return fail(self, err),
                }
            }
            Expr::Function(f) => {
                let n = f.name.to_string().to_ascii_uppercase();
                if is_aggregate(f) && f.over.is_none() {
                    let msg = if self.out.is_some() {
                        format!("{n}(...) here is not one of the query's aggregates")
                    } else {
                        format!("{n}(...) is an aggregate; it needs GROUP BY with a window, or OVER a window")
                    };
                    return fail(self, SqlError::span(msg, f.span()));
                }
                if n == "STEP" || n == "CURSOR" || n == "DESCRIPTOR" {
                    return fail(
                        self,
                        SqlError::span(format!("{n}(...) is not supported here"), f.span()),
                    );
                }
                if matches!(n.as_str(), "ROW_NUMBER" | "RANK" | "DENSE_RANK") {
                    // Window Top-N: exact per emitted moment when partitioned by the window.
                    let Some(out) = self.out else {
                        return fail(self, SqlError::span(format!("{n}() OVER (...) ranks a window's rows: use it over a windowed query's output, PARTITION BY window_start, window_end"), f.span()));
                    };
                    let ok = match &f.over {
                        Some(WindowType::WindowSpec(w)) => {
                            let parts: Vec<String> = w
                                .partition_by
                                .iter()
                                .filter_map(|p| out.named(&idents(p), p.span()).ok())
                                .collect();
                            match &out.bounds {
                                Some((s, end)) => parts.contains(s) && parts.contains(end),
                                None => false,
                            }
                        }
                        _ => false,
                    };
                    if !ok {
                        return fail(self, SqlError::span(format!("{n}() OVER (...) must be PARTITION BY window_start, window_end [, keys] (a Top-N per window, as Flink requires)"), f.span()));
                    }
                }
            }
            Expr::Floor {
                field: CeilFloorKind::DateTimeField(_),
                ..
            } => {
                return fail(self, unsupported("FLOOR(... TO ...) inside a larger expression (use it as a whole GROUP BY or select item)", e.span()));
            }
            Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::In {
                target: ast::InTarget::Subquery(_),
                ..
            } => {
                return fail(
                    self,
                    unsupported("a sub-query inside an expression", e.span()),
                );
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(cols: &[&str]) -> Inputs {
        let mut m = BTreeMap::new();
        m.insert(
            "SOURCE_SQL_STREAM_001".to_string(),
            crate::sql::InputInfo {
                columns: Some(cols.iter().map(|s| s.to_string()).collect()),
                time: None,
                window_time: None,
                kind: None,
            },
        );
        Inputs(m)
    }

    #[test]
    fn kinesis_step_on_rowtime_and_event_time() {
        let sql = "SELECT STREAM Ticker_Symbol, MIN(Price) AS Min_Price, MAX(Price) AS Max_Price
            FROM \"SOURCE_SQL_STREAM_001\"
            GROUP BY Ticker_Symbol, STEP(\"SOURCE_SQL_STREAM_001\".ROWTIME BY INTERVAL '60' SECOND)";
        let q = plan_query(sql, &inputs(&["ticker_symbol", "price"])).unwrap();
        assert_eq!(q.time, Time::Rowtime);
        assert_eq!(q.by, ["ticker_symbol"]);
        assert_eq!(
            q.window.as_ref().unwrap().args["every"],
            Duration::Text("60s".into())
        );
        assert_eq!(q.columns, ["ticker_symbol", "Min_Price", "Max_Price"]);
        assert_eq!(q.aggs[0].name, "Min_Price");
    }

    #[test]
    fn errors_point_at_the_text() {
        let err = plan_query(
            "SELECT STREAM nope FROM s GROUP BY STEP(ROWTIME BY INTERVAL '1' MINUTE)",
            &Inputs(BTreeMap::from([(
                "s".to_string(),
                crate::sql::InputInfo {
                    columns: Some(vec!["a".into()]),
                    time: None,
                    window_time: None,
                    kind: None,
                },
            )])),
        )
        .unwrap_err();
        let Error::Sql {
            message,
            line,
            column,
        } = err
        else {
            panic!()
        };
        assert_eq!((line, column), (1, 15));
        assert!(message.contains("column nope not found"), "{message}");
        assert!(message.ends_with("\n                ^"), "{message}");
    }

    #[test]
    fn select_stream_is_never_an_alias() {
        let q = plan_query(
            "SELECT STREAM x, COUNT(*) FROM s GROUP BY x, FLOOR(s.ROWTIME TO MINUTE)",
            &Inputs(BTreeMap::from([("s".to_string(), Default::default())])),
        )
        .unwrap();
        assert_eq!(q.columns, ["x", "count"]);
    }

    #[test]
    fn a_window_bound_keeps_the_name_it_is_selected_by() {
        let ins = Inputs(BTreeMap::from([(
            "t".to_string(),
            crate::sql::InputInfo {
                columns: Some(vec!["ts".into(), "k".into()]),
                time: Some("ts".into()),
                window_time: None,
                kind: None,
            },
        )]));
        let inner = "SELECT window_start, window_end, k, COUNT(*) AS n \
            FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) \
            GROUP BY window_start, window_end, k";
        for (outer, columns, start, end) in [
            (
                "SELECT k, window_end FROM ({inner})",
                &["k", "window_end"][..],
                None,
                Some("window_end"),
            ),
            (
                "SELECT k, t.window_end, n FROM ({inner}) t",
                &["k", "window_end", "n"],
                None,
                Some("window_end"),
            ),
            (
                "SELECT window_start, window_end, n FROM ({inner})",
                &["window_start", "window_end", "n"],
                Some("window_start"),
                Some("window_end"),
            ),
            (
                "SELECT k FROM (SELECT k, window_end FROM ({inner}))",
                &["k"],
                None,
                None,
            ),
            (
                "SELECT k, window_end FROM (SELECT k, window_end FROM ({inner}))",
                &["k", "window_end"],
                None,
                Some("window_end"),
            ),
            (
                "SELECT k, window_end AS e FROM ({inner})",
                &["k", "e"],
                None,
                Some("e"),
            ),
            (
                "SELECT k, ROWTIME FROM ({inner})",
                &["k", "ROWTIME"],
                None,
                Some("ROWTIME"),
            ),
        ] {
            let sql = outer.replace("{inner}", inner);
            let q = plan_query(&sql, &ins).expect(&sql);
            assert_eq!(q.columns, columns, "{sql}");
            assert_eq!(q.window_start.as_deref(), start, "{sql}");
            assert_eq!(q.rowtime.as_deref(), end, "{sql}");
        }
    }
}
