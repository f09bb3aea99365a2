//! Joins in `FROM`: a stream with a table (Kinesis' reference data), two streams within a
//! time bound (Flink's interval join) or as of each row's time (Flink's temporal join,
//! `FOR SYSTEM_TIME AS OF`), planned into the Python API's `join`, `join_interval` and
//! `join_asof`.
//!
//! Which input is the table: a reference file always; a DataFrame or Arrow table given as
//! it is when the join has no time bound (the first one in `FROM` is the stream when both
//! are). The stream comes first in the output, whichever order `FROM` names them in.
//!
//! The condition is read conjunct by conjunct: equalities of a column of each side are the
//! keys; comparisons of the two sides' times (`b.t BETWEEN a.t - INTERVAL '1' MINUTE AND
//! a.t`, `>=`, `<=`) are the interval; anything else filters the joined rows (an inner join)
//! or is refused (a left join, where it would have to keep the rows it fails).

use super::{
    duration, idents, is_rowtime, match_column, unsupported, Env, Kind, Rel, Res, Scope, Side,
};
use crate::sql::{Duration, Input, JoinPlan, QueryPlan, Scalar, SqlError, Step, Time};
use sqlparser::ast::{self, BinaryOperator, Expr, Ident, JoinConstraint, JoinOperator, Spanned};
use sqlparser::tokenizer::Span;

/// How rows without a match are kept, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Inner,
    Left,
    Right,
}

/// A join's condition: its `ON` conjuncts, its `USING` columns, and the `WHERE` conjuncts
/// an inner join may take its keys and time bound from (the rest stay there).
struct Condition<'p> {
    on: Vec<Expr>,
    using: Vec<Ident>,
    pool: Option<&'p mut Vec<Expr>>,
}

/// One time comparison: `other.time - self.time` at least (`lower`) or at most this.
struct Bound {
    lower: bool,
    value: Duration,
    /// The left and the right time column it compares: a side and its own name there,
    /// until named as the relations name them.
    columns: ((usize, String), (usize, String)),
    span: Span,
}

/// A conjunct that compares the two sides' times: the time bound, or a filter.
struct Candidate {
    expr: Expr,
    /// Taken from an inner join's `WHERE` (given back there when not the bound).
    from_pool: bool,
    /// Its bounds, each with the left and right time columns as the relations name them.
    bounds: Vec<((String, String), Bound)>,
    /// A strict comparison: the error it is as a bound.
    strict: Option<SqlError>,
}

/// The pair of time columns (left, right) that is the join's time bound when the
/// comparisons name several: the one bounded from below and above by conjuncts on it alone
/// (when several are, the one on both sides' event times); `None` when no pair is.
fn time_pair(candidates: &[Candidate], left: &Rel, right: &Rel) -> Option<(String, String)> {
    let mut pairs: Vec<&(String, String)> = Vec::new();
    for c in candidates {
        for (named, _) in &c.bounds {
            if !pairs.contains(&named) {
                pairs.push(named);
            }
        }
    }
    let closed = |pair: &(String, String), lower: bool| {
        candidates.iter().any(|c| {
            c.strict.is_none()
                && c.bounds.iter().all(|(named, _)| named == pair)
                && c.bounds.iter().any(|(_, b)| b.lower == lower)
        })
    };
    let complete: Vec<&(String, String)> = pairs
        .into_iter()
        .filter(|p| closed(p, true) && closed(p, false))
        .collect();
    let is_time = |rel: &Rel, col: &str| {
        rel.time
            .as_deref()
            .is_some_and(|t| t == col || renames(rel, t, col))
    };
    match complete.as_slice() {
        [one] => Some((*one).clone()),
        many => {
            let on_times: Vec<&&(String, String)> = many
                .iter()
                .filter(|(l, r)| is_time(left, l) && is_time(right, r))
                .collect();
            match on_times.as_slice() {
                [one] => Some((**one).clone()),
                _ => None,
            }
        }
    }
}

/// A time operand: a column of a side, plus a signed offset.
struct Operand {
    side: usize,
    column: String,
    offset: Duration,
}

/// The conjuncts of a condition.
pub(super) fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner)
            if matches!(
                inner.as_ref(),
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(inner, out)
        }
        other => out.push(other.clone()),
    }
}

/// The conjuncts joined by AND again.
pub(super) fn and_all(mut parts: Vec<Expr>) -> Option<Expr> {
    let first = if parts.is_empty() {
        return None;
    } else {
        parts.remove(0)
    };
    Some(parts.into_iter().fold(first, |acc, e| Expr::BinaryOp {
        left: Box::new(acc),
        op: BinaryOperator::And,
        right: Box::new(e),
    }))
}

fn negate(d: &Duration) -> Duration {
    match d {
        Duration::Count(n) => Duration::Count(-n),
        Duration::Text(t) => match t.strip_prefix('-') {
            Some(rest) => Duration::Text(rest.to_string()),
            None => Duration::Text(format!("-{t}")),
        },
    }
}

fn is_zero(d: &Duration) -> bool {
    matches!(d, Duration::Count(0))
}

/// `a - b` where at most one of them is not zero.
fn minus(a: &Duration, b: &Duration) -> Duration {
    if is_zero(b) {
        a.clone()
    } else {
        negate(b)
    }
}

/// The sides of a relation, each mapping its own columns to the relation's columns.
fn sides_of(rel: &Rel) -> Res<Vec<Side>> {
    if !rel.sides.is_empty() {
        return Ok(rel.sides.clone());
    }
    let Some(columns) = rel.columns.clone() else {
        let input = match &rel.input {
            crate::sql::Input::Name(n) | crate::sql::Input::Stream(n) => n.clone(),
            crate::sql::Input::Query(_) => "...".into(),
        };
        let alias = rel
            .qualifiers
            .last()
            .map_or(input.clone(), |q| q.value.clone());
        return Err(SqlError::span(
            format!(
                "the columns of {alias} are not known before it is read, and a join needs them \
                 to name its output; list them in a sub-query: (SELECT a, b, ... FROM {input}) \
                 AS {alias}"
            ),
            rel.qualifiers.first().map_or(Span::empty(), |q| q.span),
        ));
    };
    Ok(vec![Side {
        qualifiers: rel.qualifiers.clone(),
        folded: rel.folded.clone(),
        out: columns.iter().cloned().map(Ok).collect(),
        columns,
        time: rel.time.clone(),
    }])
}

fn side_name(sides: &[Side]) -> String {
    let names: Vec<&String> = sides
        .iter()
        .filter_map(|s| s.qualifiers.last().map(|q| &q.value))
        .collect();
    if names.is_empty() {
        "the sub-query".into()
    } else {
        names
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" JOIN ")
    }
}

/// The side and own column a plain column reference names, if it is one that resolves
/// (`None` otherwise: the conjunct is then not part of the join's condition).
fn lookup(sides: &[Side], e: &Expr) -> Option<(usize, String)> {
    let parts = match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => idents(e),
        Expr::Nested(inner) => return lookup(sides, inner),
        _ => return None,
    };
    let (qualifier, id) = match parts.as_slice() {
        [id] => (None, id),
        [.., q, id] => (Some(q), id),
        [] => return None,
    };
    let mut hits = Vec::new();
    for (i, side) in sides.iter().enumerate() {
        if let Some(q) = qualifier {
            if !side
                .qualifiers
                .iter()
                .any(|k| super::names(q, &k.value) || super::names(k, &q.value))
            {
                continue;
            }
        }
        if let Ok(Some(c)) = match_column(id, &side.columns, &side.folded) {
            hits.push((i, c));
        } else if is_rowtime(id) {
            if let Some(t) = &side.time {
                hits.push((i, t.clone()));
            }
        }
    }
    match hits.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// A time operand: `col`, `col + INTERVAL ...`, `col - INTERVAL ...` (or an integer).
fn operand(sides: &[Side], e: &Expr) -> Res<Option<Operand>> {
    match e {
        Expr::Nested(inner) => operand(sides, inner),
        Expr::BinaryOp { left, op, right }
            if matches!(op, BinaryOperator::Plus | BinaryOperator::Minus) =>
        {
            let Some((side, column)) = lookup(sides, left) else {
                return Ok(None);
            };
            let d = duration(right)?;
            let offset = if *op == BinaryOperator::Minus {
                negate(&d)
            } else {
                d
            };
            Ok(Some(Operand {
                side,
                column,
                offset,
            }))
        }
        _ => Ok(lookup(sides, e).map(|(side, column)| Operand {
            side,
            column,
            offset: Duration::Count(0),
        })),
    }
}

/// What a conjunct is to a join of `sides` (the first `left` of them on the left).
enum Part {
    Key(usize, String, usize, String),
    Bounds(Vec<Bound>),
    /// A strict comparison of the two sides' times (`<`, `>`): a filter of an inner join's
    /// rows when another conjunct is the time bound, an error where it would be the bound.
    Strict(Vec<Bound>, SqlError),
    Other,
}

fn part(sides: &[Side], left: usize, e: &Expr) -> Res<Part> {
    let is_left = |side: usize| side < left;
    // `a op b` of operands on opposite sides, as bounds on right.time - left.time.
    let compare = |a: &Operand, b: &Operand, at_most: bool, span: Span| -> Bound {
        // a <= b (at_most) or a >= b.
        let (lo, hi) = if at_most { (a, b) } else { (b, a) };
        // lo.col + lo.off <= hi.col + hi.off
        if is_left(lo.side) {
            // left + x <= right + y: right - left >= x - y.
            Bound {
                lower: true,
                value: minus(&lo.offset, &hi.offset),
                columns: ((lo.side, lo.column.clone()), (hi.side, hi.column.clone())),
                span,
            }
        } else {
            // right + x <= left + y: right - left <= y - x.
            Bound {
                lower: false,
                value: minus(&hi.offset, &lo.offset),
                columns: ((hi.side, hi.column.clone()), (lo.side, lo.column.clone())),
                span,
            }
        }
    };
    match e {
        Expr::Nested(inner) => part(sides, left, inner),
        Expr::BinaryOp {
            left: a,
            op: BinaryOperator::Eq,
            right: b,
        } => match (lookup(sides, a), lookup(sides, b)) {
            (Some((sa, ca)), Some((sb, cb))) if is_left(sa) != is_left(sb) => Ok(if is_left(sa) {
                Part::Key(sa, ca, sb, cb)
            } else {
                Part::Key(sb, cb, sa, ca)
            }),
            _ => Ok(Part::Other),
        },
        Expr::BinaryOp {
            left: a,
            op,
            right: b,
        } if matches!(
            op,
            BinaryOperator::LtEq | BinaryOperator::GtEq | BinaryOperator::Lt | BinaryOperator::Gt
        ) =>
        {
            let (Some(x), Some(y)) = (operand(sides, a)?, operand(sides, b)?) else {
                return Ok(Part::Other);
            };
            if is_left(x.side) == is_left(y.side) {
                return Ok(Part::Other);
            }
            let at_most = matches!(op, BinaryOperator::LtEq | BinaryOperator::Lt);
            let found = vec![compare(&x, &y, at_most, e.span())];
            if matches!(op, BinaryOperator::Lt | BinaryOperator::Gt) {
                let err = SqlError::span(
                    format!(
                        "a join's time bound is closed: write {} instead of {op} (rillet's \
                         interval join keeps other.time - time in [lower, upper])",
                        if *op == BinaryOperator::Lt {
                            "<="
                        } else {
                            ">="
                        }
                    ),
                    e.span(),
                );
                return Ok(Part::Strict(found, err));
            }
            Ok(Part::Bounds(found))
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let (Some(x), Some(lo), Some(hi)) = (
                operand(sides, expr)?,
                operand(sides, low)?,
                operand(sides, high)?,
            ) else {
                return Ok(Part::Other);
            };
            if is_left(x.side) == is_left(lo.side) || is_left(x.side) == is_left(hi.side) {
                return Ok(Part::Other);
            }
            if *negated {
                return Err(SqlError::span(
                    "NOT BETWEEN of the two inputs' times has no end: bound the time from both \
                     sides with BETWEEN",
                    e.span(),
                ));
            }
            Ok(Part::Bounds(vec![
                compare(&lo, &x, true, e.span()),
                compare(&x, &hi, true, e.span()),
            ]))
        }
        _ => Ok(Part::Other),
    }
}

impl Env<'_> {
    /// `left JOIN right ON ...` (or `USING (...)`), as the relation the SELECT reads, and the
    /// conjuncts it leaves to the `WHERE` (none).
    pub(super) fn join_on(&self, left: Rel, j: &ast::Join, pool: &mut Vec<Expr>) -> Res<Rel> {
        let span = j.relation.span();
        let right = self.factor(&j.relation)?;
        let (op, constraint) = match &j.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => (Op::Inner, c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (Op::Left, c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (Op::Right, c),
            JoinOperator::FullOuter(_) => {
                return Err(SqlError::span(
                    "FULL OUTER JOIN is not supported: it would keep rows of both sides that \
                     never match, which a stream cannot know until it ends; use LEFT JOIN",
                    span,
                ))
            }
            JoinOperator::CrossJoin(_) => {
                return Err(SqlError::span(
                    "CROSS JOIN is not supported; join on keys: JOIN t ON s.k = t.k",
                    span,
                ))
            }
            other => {
                let text = other_name(other);
                return Err(unsupported(&text, span));
            }
        };
        let (conds, using) = match constraint {
            JoinConstraint::On(e) => {
                let mut parts = Vec::new();
                conjuncts(e, &mut parts);
                (parts, Vec::new())
            }
            JoinConstraint::Using(cols) => {
                let mut ids = Vec::new();
                for c in cols {
                    ids.push(super::object_name(c)?);
                }
                (Vec::new(), ids)
            }
            JoinConstraint::UsingAlias(..) => {
                return Err(unsupported("USING (...) AS alias", span));
            }
            JoinConstraint::Natural => return Err(SqlError::span(
                "NATURAL JOIN is not supported; name the keys: JOIN t USING (k) or ON s.k = t.k",
                span,
            )),
            JoinConstraint::None => {
                return Err(SqlError::span(
                    "a JOIN needs its keys: JOIN t ON s.k = t.k, or USING (k)",
                    span,
                ))
            }
        };
        // An inner join's WHERE is as good as its ON: keys and time bounds there count too.
        let extra = (op == Op::Inner).then_some(pool);
        let cond = Condition {
            on: conds,
            using,
            pool: extra,
        };
        let (rel, rest) = self.join(left, right, op, cond, span)?;
        if rest.is_empty() {
            return Ok(rel);
        }
        if op != Op::Inner {
            return Err(SqlError::span(
                format!(
                    "an outer join's ON holds only key equalities and the time bound; {} would \
                     have to keep the rows it fails, with nulls: filter in WHERE, or in a \
                     sub-query of the side it reads",
                    rest[0]
                ),
                rest[0].span(),
            ));
        }
        // The rest of an inner join's ON filters the joined rows.
        let mut rel = rel;
        let scope = Scope::of(&rel);
        for e in rest {
            rel.steps.push(Step::Filter(scope.scalar(&e)?));
        }
        Ok(rel)
    }

    /// `FROM left, right WHERE ...`: an inner join whose condition is in the `WHERE`;
    /// `pool` keeps the conjuncts that are not part of it.
    pub(super) fn join_comma(
        &self,
        left: Rel,
        right: Rel,
        pool: &mut Vec<Expr>,
        span: Span,
    ) -> Res<Rel> {
        let conds = std::mem::take(pool);
        let cond = Condition {
            on: conds,
            using: Vec::new(),
            pool: None,
        };
        let (rel, rest) = self.join(left, right, Op::Inner, cond, span)?;
        *pool = rest;
        Ok(rel)
    }

    #[allow(clippy::too_many_lines)]
    fn join(
        &self,
        mut left: Rel,
        mut right: Rel,
        mut op: Op,
        cond: Condition<'_>,
        span: Span,
    ) -> Res<(Rel, Vec<Expr>)> {
        let Condition {
            on: conds,
            using,
            pool: extra,
        } = cond;
        let using = using.as_slice();
        for rel in [&left, &right] {
            if let Some((_, _, _, s)) = &rel.tvf {
                return Err(SqlError::span(
                    "a window table function over one side of a join is not supported; window \
                     the join's output: TUMBLE(TABLE (SELECT ... FROM a JOIN b ON ...), ...)",
                    *s,
                ));
            }
        }
        if let Some(e) = &left.as_of {
            return Err(SqlError::span(
                "FOR SYSTEM_TIME AS OF belongs to the table joined, after JOIN: FROM s JOIN t \
                 FOR SYSTEM_TIME AS OF s.t ON ...",
                e.span(),
            ));
        }
        left.windowed = None;
        right.windowed = None;
        if let Some(q) = right.qualifiers.last() {
            if let Some(l) = left.qualifiers.iter().find(|l| l.value == q.value) {
                return Err(SqlError::span(
                    format!(
                        "the alias {} is given twice: give each input of the join its own (FROM a \
                         AS x JOIN b AS y ...)",
                        l.value
                    ),
                    q.span,
                ));
            }
        }
        let mut lsides = sides_of(&left)?;
        let mut rsides = sides_of(&right)?;
        // What the condition says.
        let mut keys: Vec<(String, String)> = Vec::new();
        let mut bounds: Vec<((String, String), Bound)> = Vec::new();
        let mut rest = Vec::new();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut extra = extra;
        {
            let all: Vec<Side> = lsides.iter().chain(&rsides).cloned().collect();
            let n = lsides.len();
            // A side's own column as the relation (the left or the right input) names it.
            let out_name = |i: usize, c: &str| -> String {
                let side = &all[i];
                let pos = side.columns.iter().position(|x| x == c);
                match pos.map(|p| &side.out[p]) {
                    Some(Ok(name)) => name.clone(),
                    _ => c.to_string(),
                }
            };
            for id in using {
                let l = lookup(&all[..n], &Expr::Identifier(id.clone()));
                let r = lookup(&all[n..], &Expr::Identifier(id.clone()));
                match (l, r) {
                    (Some((li, lc)), Some((ri, rc))) => {
                        keys.push((out_name(li, &lc), out_name(n + ri, &rc)))
                    }
                    _ => {
                        return Err(SqlError::span(
                            format!("USING ({}) names a column both inputs must have", id.value),
                            id.span,
                        ))
                    }
                }
            }
            // A key is the join's; a comparison of the two sides' times may be its time
            // bound (decided below); anything else is handed back.
            let mut absorb = |p: Part, e: &Expr, from_pool: bool| -> bool {
                let (found, strict) = match p {
                    Part::Key(li, lc, ri, rc) => {
                        keys.push((out_name(li, &lc), out_name(ri, &rc)));
                        return true;
                    }
                    Part::Bounds(found) => (found, None),
                    Part::Strict(found, err) => (found, Some(err)),
                    Part::Other => return false,
                };
                let named = found
                    .into_iter()
                    .map(|b| {
                        let ((li, lc), (ri, rc)) = &b.columns;
                        ((out_name(*li, lc), out_name(*ri, rc)), b)
                    })
                    .collect();
                candidates.push(Candidate {
                    expr: e.clone(),
                    from_pool,
                    bounds: named,
                    strict,
                });
                true
            };
            for e in conds {
                if !absorb(part(&all, n, &e)?, &e, false) {
                    rest.push(e);
                }
            }
            if let Some(pool) = extra.as_deref_mut() {
                // Not the join's: the WHERE keeps it (and reports its errors, as it does a
                // strict comparison's).
                pool.retain(|e| match part(&all, n, e) {
                    Ok(Part::Strict(..)) | Err(_) => true,
                    Ok(p) => !absorb(p, e, true),
                });
            }
        }
        // The time bound: the one pair of time columns bounded from below and above. Every
        // other comparison of the two sides' times filters an inner join's rows (from the ON,
        // or left in the WHERE); with no such pair, they are all read as the bound (and its
        // errors say what is missing).
        let chosen = time_pair(&candidates, &left, &right);
        let (mut lower_set, mut upper_set) = (false, false);
        for c in candidates {
            let Some(pair) = &chosen else {
                if let Some(err) = c.strict {
                    return Err(err);
                }
                bounds.extend(c.bounds);
                continue;
            };
            let on_pair = c.strict.is_none() && c.bounds.iter().all(|(named, _)| named == pair);
            let free = c
                .bounds
                .iter()
                .all(|(_, b)| !if b.lower { lower_set } else { upper_set });
            if on_pair && (free || op != Op::Inner) {
                for (_, b) in &c.bounds {
                    if b.lower {
                        lower_set = true;
                    } else {
                        upper_set = true;
                    }
                }
                bounds.extend(c.bounds);
            } else if op != Op::Inner && c.strict.is_some() {
                return Err(c.strict.expect("strict"));
            } else if c.from_pool {
                extra.as_deref_mut().expect("a WHERE").push(c.expr);
            } else {
                rest.push(c.expr);
            }
        }
        // Flink's window join: equal window bounds of two windowed queries (`l.window_end =
        // r.window_end`) are an interval of zero on their ends.
        // A bound's alias (`window_end AS endtime`) is that bound.
        let windowed = |r: &Rel| matches!(r.input, Input::Query(_)) && r.steps.is_empty();
        if bounds.is_empty() && right.as_of.is_none() && windowed(&left) && windowed(&right) {
            let (lends, rends) = (window_ends(&left), window_ends(&right));
            let end = |c: &String, ends: &[String]| {
                ends.contains(c) || c.eq_ignore_ascii_case("window_end")
            };
            if let Some(at) = keys
                .iter()
                .position(|(l, r)| end(l, &lends) && end(r, &rends))
            {
                let (l, r) = keys.remove(at);
                for lower in [true, false] {
                    bounds.push((
                        (l.clone(), r.clone()),
                        Bound {
                            lower,
                            value: Duration::Count(0),
                            columns: ((0, l.clone()), (0, r.clone())),
                            span,
                        },
                    ));
                }
            }
        }
        let what = if !bounds.is_empty() {
            "interval"
        } else if right.as_of.is_some() {
            "asof"
        } else {
            "table"
        };
        let mut swapped = false;
        match what {
            "table" => {
                let right_table = right.kind != Kind::Stream && left.kind != Kind::Reference;
                let left_table = !right_table && left.kind != Kind::Stream;
                if !right_table && !left_table {
                    check_names(&lsides, &rsides, &rest)?;
                    let not_bound = match rest.first() {
                        Some(e) => format!(
                            " ({e} is not one: a bound compares a time column of each side, \
                             and names columns they have)"
                        ),
                        None => String::new(),
                    };
                    return Err(SqlError::span(
                        format!(
                            "{} and {} are both streams, and a join of two streams needs a time \
                             bound (b.t BETWEEN a.t - INTERVAL '10' MINUTE AND a.t){not_bound} or \
                             FOR SYSTEM_TIME AS OF; to enrich with a table, pass it as a \
                             DataFrame or rl.reference(path)",
                            side_name(&lsides),
                            side_name(&rsides)
                        ),
                        span,
                    ));
                }
                if left_table {
                    if op == Op::Left {
                        return Err(SqlError::span(
                            format!(
                                "{t} LEFT JOIN {s} would keep the rows of the table {t} that no \
                                 event matches, which a stream cannot know until it ends; put \
                                 the stream first: FROM {s} LEFT JOIN {t}",
                                t = side_name(&lsides),
                                s = side_name(&rsides)
                            ),
                            span,
                        ));
                    }
                    swapped = true;
                } else if op == Op::Right {
                    return Err(SqlError::span(
                        format!(
                            "{s} RIGHT JOIN {t} would keep the rows of the table {t} that no \
                             event matches, which a stream cannot know until it ends; write \
                             FROM {s} LEFT JOIN {t}",
                            t = side_name(&rsides),
                            s = side_name(&lsides)
                        ),
                        span,
                    ));
                }
            }
            "interval" => {
                for (rel, sides) in [(&left, &lsides), (&right, &rsides)] {
                    if rel.kind == Kind::Reference {
                        return Err(SqlError::span(
                            format!(
                                "{} is a reference table, which has no event time; join it on \
                                 keys only, or give it as a stream",
                                side_name(sides)
                            ),
                            span,
                        ));
                    }
                }
                swapped = op == Op::Right;
            }
            _ => {
                if op == Op::Right {
                    return Err(SqlError::span(
                        "a temporal join (FOR SYSTEM_TIME AS OF) keeps the rows of the stream \
                         before JOIN: use JOIN or LEFT JOIN",
                        span,
                    ));
                }
            }
        }
        if swapped {
            std::mem::swap(&mut left, &mut right);
            std::mem::swap(&mut lsides, &mut rsides);
            keys = keys.into_iter().map(|(l, r)| (r, l)).collect();
            for (named, b) in &mut bounds {
                b.lower = !b.lower;
                b.value = negate(&b.value);
                *named = (named.1.clone(), named.0.clone());
            }
            if op == Op::Right {
                op = Op::Left;
            }
        }
        if keys.is_empty() {
            check_names(&lsides, &rsides, &rest)?;
            return Err(SqlError::span(
                format!(
                    "a join needs an equality of a column of each side: ON {}.k = {}.k",
                    lsides
                        .first()
                        .and_then(|s| s.qualifiers.last())
                        .map_or("a".into(), |q| q.value.clone()),
                    rsides
                        .first()
                        .and_then(|s| s.qualifiers.last())
                        .map_or("b".into(), |q| q.value.clone()),
                ),
                span,
            ));
        }
        // The two streams' times.
        let (mut lower, mut upper) = (None, None);
        match what {
            "interval" => {
                let (lc, rc) = bounds[0].0.clone();
                for (named, b) in &bounds {
                    if *named != (lc.clone(), rc.clone()) {
                        return Err(SqlError::span(
                            format!(
                                "the time bounds compare {} with {} and {} with {}; bound one \
                                 time column of each side",
                                lc, rc, named.0, named.1
                            ),
                            b.span,
                        ));
                    }
                    let slot = if b.lower { &mut lower } else { &mut upper };
                    if slot.is_some() {
                        return Err(SqlError::span(
                            format!(
                                "two {} bounds on {rc} - {lc}; give one of each (BETWEEN ... AND ...)",
                                if b.lower { "lower" } else { "upper" }
                            ),
                            b.span,
                        ));
                    }
                    *slot = Some(b.value.clone());
                }
                if lower.is_none() || upper.is_none() {
                    return Err(SqlError::span(
                        format!(
                            "the join bounds {rc} - {lc} only {}; an interval join needs both \
                             bounds, or its state would grow without end: {rc} BETWEEN {lc} - \
                             INTERVAL '10' MINUTE AND {lc}",
                            if lower.is_some() {
                                "from below"
                            } else {
                                "from above"
                            }
                        ),
                        bounds[0].1.span,
                    ));
                }
                let span0 = bounds[0].1.span;
                check_interval(
                    lower.as_ref().expect("checked"),
                    upper.as_ref().expect("checked"),
                    &lc,
                    &rc,
                    span0,
                )?;
                set_time(&mut left, &lc, span0)?;
                set_time(&mut right, &rc, span0)?;
            }
            "asof" => {
                let at = right.as_of.clone().expect("an as-of join");
                let all: Vec<Side> = lsides.clone();
                let Some((li, lc)) = lookup(&all, &at) else {
                    return Err(SqlError::span(
                        format!(
                            "FOR SYSTEM_TIME AS OF takes the time column of {}, found {at}",
                            side_name(&lsides)
                        ),
                        at.span(),
                    ));
                };
                let lc = match all[li].columns.iter().position(|c| *c == lc) {
                    Some(p) => all[li].out[p].clone().unwrap_or(lc),
                    None => lc,
                };
                set_time(&mut left, &lc, at.span())?;
                if right.time.is_none() {
                    return Err(SqlError::span(
                        format!(
                            "FOR SYSTEM_TIME AS OF needs the event time of {}: pass it as \
                             rl.stream(rows, time=\"column\")",
                            side_name(&rsides)
                        ),
                        at.span(),
                    ));
                }
                if right.kind == Kind::Reference {
                    return Err(SqlError::span(
                        "FOR SYSTEM_TIME AS OF a reference file is not supported; give the table \
                         as rl.stream(rows, time=...)",
                        at.span(),
                    ));
                }
            }
            _ => {}
        }
        if right.kind == Kind::Reference && !(right.steps.is_empty() && right.narrowed.is_none()) {
            return Err(SqlError::span(
                "a reference file is joined as it is: filter or compute its columns after \
                 the join, or load it as a DataFrame",
                span,
            ));
        }
        let mut lcols = left.columns.clone().unwrap_or_default();
        let mut rcols = right.columns.clone().unwrap_or_default();
        let mut rsteps = right.steps.clone();
        rsteps.extend(right.narrowed.clone());
        // A column in two key equalities (`e.user = t.user AND e.user = t.nick`): a copy of
        // it is the second key, as the join takes each key column once.
        let mut lcopies = Vec::new();
        let (mut seen_l, mut seen_r) = (Vec::new(), Vec::new());
        for (i, (l, r)) in keys.iter_mut().enumerate() {
            copy_repeated(i, l, &mut seen_l, &mut lcols, &mut lcopies);
            if right.kind == Kind::Reference && seen_r.contains(r) {
                return Err(SqlError::span(
                    format!("{r} of a reference file is in two key equalities; join it on one"),
                    span,
                ));
            }
            copy_repeated(i, r, &mut seen_r, &mut rcols, &mut rsteps);
        }
        if what == "table" && right.time.is_none() {
            // A table read through a sub-query has no arrival time: the sub-query's ROWTIME
            // is not one of its columns.
            drop_arrival_time(rsteps.iter_mut(), &mut rcols);
        }
        let suffix = (1..)
            .map(|i| {
                if i == 1 {
                    "_right".to_string()
                } else {
                    format!("_right{i}")
                }
            })
            .find(|sfx| {
                rcols.iter().all(|c| {
                    let named = format!("{c}{sfx}");
                    !lcols.contains(&named) && !rcols.contains(&named)
                })
            })
            .expect("some suffix is free");
        let mut columns = lcols.clone();
        let mut right_map: Vec<(String, Result<String, String>)> = Vec::new();
        let outer = op != Op::Inner || what == "asof";
        for c in &rcols {
            if let Some((l, _)) = keys.iter().find(|(_, r)| r == c) {
                let mapped =
                    if !outer {
                        Ok(l.clone())
                    } else if right.kind != Kind::Reference {
                        // An outer join's key of the other side is null where nothing matched:
                        // a copy of it travels through the join (the join keeps only this
                        // side's key), out of `SELECT *`.
                        let hidden = (0..)
                            .map(|i| format!("__rl_key{i}_{c}"))
                            .find(|h| !lcols.contains(h) && !rcols.contains(h))
                            .expect("a free name");
                        rsteps.push(Step::WithColumns(vec![(
                            hidden.clone(),
                            Scalar::Col(c.clone()),
                        )]));
                        Ok(hidden)
                    } else {
                        Err(format!(
                        "{c} is a join key of {r}, a reference file: in this {how} it would be \
                         null where no row of {r} matched, and the join keeps {l}, the other \
                         side's key; select that, or give {r} as a DataFrame",
                        r = side_name(&rsides),
                        how = if what == "asof" { "temporal join" } else { "LEFT JOIN" },
                    ))
                    };
                right_map.push((c.clone(), mapped));
                continue;
            }
            let name = if lcols.contains(c) {
                format!("{c}{suffix}")
            } else {
                c.clone()
            };
            columns.push(name.clone());
            right_map.push((c.clone(), Ok(name)));
        }
        // Sides, for names: the left's as they are, the right's through the join's names.
        let mut sides = lsides;
        for mut s in rsides {
            s.out = s
                .out
                .into_iter()
                .map(|o| {
                    o.and_then(|name| {
                        right_map.iter().find(|(c, _)| *c == name).map_or_else(
                            || Err(format!("{name} is not in the join")),
                            |(_, m)| m.clone(),
                        )
                    })
                })
                .collect();
            s.time = s.time.and_then(|t| {
                right_map
                    .iter()
                    .find(|(c, _)| *c == t)
                    .and_then(|(_, m)| m.clone().ok())
            });
            sides.push(s);
        }
        // The other side as a plan of its own. The join names its output by the exact
        // columns of both sides, so a sub-query's select that only keeps columns (not run
        // per batch when nothing else reads them) is run.

        let rtime = right.time.clone();
        let right_plan = QueryPlan {
            input: right.input,
            time: rtime.clone().map_or(Time::Rowtime, Time::Declared),
            watermark: right.watermark,
            steps: rsteps,
            window: None,
            by: Vec::new(),
            aggs: Vec::new(),
            post: Vec::new(),
            columns: rcols.clone(),
            rowtime: None,
            window_start: None,
            window_time: None,
            rows_window: None,
            text: String::new(),
        };
        let mut steps = left.steps.clone();
        steps.extend(left.narrowed.clone());
        steps.extend(lcopies);
        steps.push(Step::Join(Box::new(JoinPlan {
            right: right_plan,
            kind: what.to_string(),
            how: if op == Op::Inner && what != "asof" {
                "inner"
            } else {
                "left"
            }
            .to_string(),
            left_on: keys.iter().map(|(l, _)| l.clone()).collect(),
            right_on: keys.iter().map(|(_, r)| r.clone()).collect(),
            suffix: suffix.clone(),
            lower,
            upper,
            line: span.start.line,
            column: span.start.column,
        })));
        if what == "asof" && op == Op::Inner {
            // A temporal inner join keeps the rows that found a version: those whose other
            // side's time (never null on a row read) is set.
            let t = rtime.expect("checked above");
            let name = right_map
                .iter()
                .find(|(c, _)| *c == t)
                .and_then(|(_, m)| m.clone().ok())
                .unwrap_or(t);
            steps.push(Step::Filter(Scalar::Sql {
                text: format!("{} IS NOT NULL", quote(&name)),
                line: span.start.line,
                column: span.start.column,
            }));
        }
        let mut qualifiers = left.qualifiers.clone();
        qualifiers.extend(right.qualifiers.iter().cloned());
        let mut folded = left.folded.clone();
        folded.extend(right.folded.iter().cloned());
        let rel = Rel {
            input: left.input,
            time: left.time,
            watermark: left.watermark,
            steps,
            columns: Some(columns),
            qualifiers,
            folded,
            tvf: None,
            windowed: None,
            window_time: left.window_time,
            kind: Kind::Stream,
            sides,
            as_of: None,
            narrowed: None,
        };
        Ok((rel, rest))
    }
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Every name of the condition's other parts is a column of one side (its error first,
/// before the join's own).
fn check_names(lsides: &[Side], rsides: &[Side], rest: &[Expr]) -> Res<()> {
    let sides: Vec<Side> = lsides
        .iter()
        .chain(rsides)
        .enumerate()
        .map(|(i, s)| Side {
            out: s.columns.iter().map(|c| Ok(format!("{i}.{c}"))).collect(),
            ..s.clone()
        })
        .collect();
    let scope = Scope {
        columns: Some(sides.iter().flat_map(|s| s.columns.clone()).collect()),
        qualifiers: sides.iter().flat_map(|s| s.qualifiers.clone()).collect(),
        folded: Vec::new(),
        rowtime: "ROWTIME".into(),
        tvf: false,
        sides,
    };
    for e in rest {
        for id in super::all_idents(e) {
            scope.column(&id, e.span())?;
        }
    }
    Ok(())
}

/// The interval `[lower, upper]` is not empty, and both bounds are of one kind (durations,
/// or integer counts for integer times).
fn check_interval(lower: &Duration, upper: &Duration, lc: &str, rc: &str, span: Span) -> Res<()> {
    let ns = |d: &Duration| -> Option<i128> {
        match d {
            Duration::Count(n) => Some(i128::from(*n)),
            Duration::Text(t) => {
                let (neg, t) = t
                    .strip_prefix('-')
                    .map_or((false, t.as_str()), |r| (true, r));
                let c = super::canonical(&Duration::Text(t.to_string()));
                let v: i128 = c.strip_suffix("ns")?.parse().ok()?;
                Some(if neg { -v } else { v })
            }
        }
    };
    let mixed = matches!(
        (lower, upper),
        (Duration::Count(a), Duration::Text(_)) | (Duration::Text(_), Duration::Count(a)) if *a != 0
    );
    if mixed {
        return Err(SqlError::span(
            format!(
                "the bounds on {rc} - {lc} mix an INTERVAL and a plain number; use INTERVAL for \
                 times, plain numbers for integer time columns"
            ),
            span,
        ));
    }
    if let (Some(lo), Some(hi)) = (ns(lower), ns(upper)) {
        if lo > hi {
            return Err(SqlError::span(
                format!(
                    "the time bound keeps {rc} - {lc} at least {} and at most {}: no pair fits; \
                     the lower bound comes first (BETWEEN low AND high)",
                    super::join_text(lower),
                    super::join_text(upper)
                ),
                span,
            ));
        }
    }
    Ok(())
}

/// A stream's time is the column the join bounds: its declared one, or this one when it
/// declared none.
fn set_time(rel: &mut Rel, column: &str, span: Span) -> Res<()> {
    match &rel.time {
        Some(t) if t == column => Ok(()),
        // A windowed query read as a stream: the bound names which of its bounds is the
        // time (the builder checks it is one).
        Some(_) if matches!(rel.input, Input::Query(_)) && rel.steps.is_empty() => {
            rel.time = Some(column.to_string());
            Ok(())
        }
        // A sub-query's name for its time column (`SELECT t AS at`): the same values.
        Some(t) if renames(rel, t, column) => Ok(()),
        Some(t) => Err(SqlError::span(
            format!(
                "the join bounds {column}, but {} has {t} as its event time; bound {t}, or \
                 declare time={column:?}",
                rel.qualifiers
                    .last()
                    .map_or("the input".into(), |q| q.value.clone())
            ),
            span,
        )),
        None => {
            if !rel.sides.is_empty() {
                return Err(SqlError::span(
                    format!(
                        "the joined input has no event time to bound by {column}; join it \
                         within a time bound first"
                    ),
                    span,
                ));
            }
            // The bound's column is the time: no arrival time is stamped, so a sub-query's
            // ROWTIME (the arrival time it would have had) goes.
            let mut none = Vec::new();
            let cols = rel.columns.as_mut().unwrap_or(&mut none);
            drop_arrival_time(rel.steps.iter_mut().chain(rel.narrowed.iter_mut()), cols);
            rel.time = Some(column.to_string());
            Ok(())
        }
    }
}

/// A side read by event time, or as a table: the `ROWTIME` a sub-query over it selected (the
/// arrival time it would otherwise be stamped with) is not one of its columns.
fn drop_arrival_time<'a>(steps: impl Iterator<Item = &'a mut Step>, columns: &mut Vec<String>) {
    for step in steps {
        if let Step::Select(items) = step {
            items.retain(|(n, v)| !(n == "ROWTIME" && *v == Scalar::Col("ROWTIME".into())));
        }
    }
    columns.retain(|c| c != "ROWTIME");
}

/// A key column an earlier equality already uses is joined through a copy of it (the join
/// takes each key column once): the copy is added to `columns`, and made by `steps`.
fn copy_repeated(
    i: usize,
    key: &mut String,
    seen: &mut Vec<String>,
    columns: &mut Vec<String>,
    steps: &mut Vec<Step>,
) {
    if seen.contains(key) {
        let copy = format!("__rl_dup{i}_{key}");
        steps.push(Step::WithColumns(vec![(
            copy.clone(),
            Scalar::Col(key.clone()),
        )]));
        columns.push(copy.clone());
        *key = copy;
    }
    seen.push(key.clone());
}

/// The output columns of a windowed query read as an input that are its windows' ends:
/// `window_end` as the window emits it, carried through the selects after it under its
/// own name or an alias (`window_end AS endtime`).
fn window_ends(rel: &Rel) -> Vec<String> {
    let Input::Query(plan) = &rel.input else {
        return Vec::new();
    };
    match &plan.window {
        Some(w) if w.kind != "sliding" => {}
        _ => return Vec::new(),
    }
    super::traced(&plan.post, "window_end")
}

/// Whether a sub-query's last select names its time column `t` also `column`.
fn renames(rel: &Rel, t: &str, column: &str) -> bool {
    rel.narrowed
        .iter()
        .chain(rel.steps.iter().rev())
        .find_map(|s| match s {
            Step::Select(items) => Some(items),
            _ => None,
        })
        .is_some_and(|items| {
            items
                .iter()
                .any(|(n, v)| n == column && *v == Scalar::Col(t.to_string()))
        })
}

fn other_name(op: &JoinOperator) -> String {
    let text = format!("{op:?}");
    let name = text.split('(').next().unwrap_or("this").to_string();
    format!("{name} joins")
}

#[cfg(test)]
mod tests {
    use crate::sql::{plan_query, Duration, InputInfo, Inputs, QueryPlan, Step};
    use std::collections::BTreeMap;

    /// An input: name, columns, declared time, kind.
    type Given<'a> = (&'a str, &'a [&'a str], Option<&'a str>, Option<&'a str>);

    fn inputs(list: &[Given<'_>]) -> Inputs {
        Inputs(
            list.iter()
                .map(|(name, cols, time, kind)| {
                    (
                        name.to_string(),
                        InputInfo {
                            columns: Some(cols.iter().map(|c| c.to_string()).collect()),
                            time: time.map(str::to_string),
                            window_time: None,
                            kind: kind.map(str::to_string),
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn the_join(plan: &QueryPlan) -> &crate::sql::JoinPlan {
        plan.steps
            .iter()
            .find_map(|s| match s {
                Step::Join(j) => Some(j.as_ref()),
                _ => None,
            })
            .expect("a join step")
    }

    fn streams() -> Inputs {
        inputs(&[
            ("a", &["ta", "k", "x"], None, Some("frame")),
            ("b", &["tb", "k", "x"], None, Some("frame")),
        ])
    }

    fn bounds(sql: &str) -> (Duration, Duration, String) {
        let plan = plan_query(sql, &streams()).expect("plans");
        let j = the_join(&plan);
        (
            j.lower.clone().expect("lower"),
            j.upper.clone().expect("upper"),
            j.how.clone(),
        )
    }

    #[test]
    fn interval_bounds_in_every_spelling_are_other_time_less_this_time() {
        let t = |s: &str| Duration::Text(s.into());
        let c = Duration::Count;
        for (cond, lower, upper) in [
            (
                "b.tb BETWEEN a.ta - INTERVAL '1' MINUTE AND a.ta + INTERVAL '2' MINUTE",
                t("-1m"),
                t("2m"),
            ),
            (
                "a.ta BETWEEN b.tb - INTERVAL '1' MINUTE AND b.tb",
                c(0),
                t("1m"),
            ),
            (
                "b.tb >= a.ta AND b.tb <= a.ta + INTERVAL '10' SECOND",
                c(0),
                t("10s"),
            ),
            (
                "a.ta <= b.tb AND a.ta + INTERVAL '10' SECOND >= b.tb",
                c(0),
                t("10s"),
            ),
            (
                "a.ta >= b.tb - INTERVAL '3' SECOND AND a.ta <= b.tb + INTERVAL '4' SECOND",
                t("-4s"),
                t("3s"),
            ),
        ] {
            let sql = format!("SELECT a.k, b.x FROM a JOIN b ON a.k = b.k AND {cond}");
            let (lo, hi, how) = bounds(&sql);
            assert_eq!(
                (lo, hi, how.as_str()),
                (lower.clone(), upper.clone(), "inner"),
                "{cond}"
            );
            // The same condition in WHERE of a comma join.
            let sql = format!("SELECT a.k, b.x FROM a, b WHERE a.k = b.k AND {cond}");
            let (lo, hi, _) = bounds(&sql);
            assert_eq!((lo, hi), (lower, upper), "{cond}");
        }
        // RIGHT JOIN keeps b's rows: b is the stream that comes first, the bounds turn over.
        let (lo, hi, how) = bounds(
            "SELECT b.k FROM a RIGHT JOIN b ON a.k = b.k AND b.tb BETWEEN a.ta - INTERVAL '1' \
             MINUTE AND a.ta + INTERVAL '2' MINUTE",
        );
        assert_eq!((lo, hi, how.as_str()), (t("-2m"), t("1m"), "left"));
    }

    #[test]
    fn the_table_side_comes_second_whichever_order_from_names_them() {
        let ins = inputs(&[
            ("e", &["ts", "user", "api"], Some("ts"), None),
            ("t", &["user", "team", "api"], None, Some("frame")),
        ]);
        for sql in [
            "SELECT * FROM e JOIN t ON e.user = t.user",
            "SELECT * FROM t JOIN e ON e.user = t.user",
            "SELECT * FROM t RIGHT JOIN e USING (user)",
        ] {
            let plan = plan_query(sql, &ins).expect("plans");
            let j = the_join(&plan);
            assert_eq!(j.kind, "table", "{sql}");
            assert_eq!(
                plan.columns,
                ["ts", "user", "api", "team", "api_right"],
                "{sql}"
            );
            assert_eq!(
                (j.left_on.as_slice(), j.right_on.as_slice()),
                (&["user".to_string()][..], &["user".to_string()][..])
            );
        }
        let err = plan_query("SELECT * FROM t LEFT JOIN e ON e.user = t.user", &ins).unwrap_err();
        assert!(err.to_string().contains("put the stream first"), "{}", err);
        let err = plan_query("SELECT api FROM e JOIN t ON e.user = t.user", &ins).unwrap_err();
        assert!(err.to_string().contains("qualify it"), "{}", err);
        // A left join's table key is null where nothing matched: a copy of it is joined.
        let plan = plan_query(
            "SELECT t.user AS tu FROM e LEFT JOIN t ON e.user = t.user",
            &ins,
        )
        .expect("plans");
        let j = the_join(&plan);
        assert!(j
            .right
            .steps
            .iter()
            .any(|s| matches!(s, Step::WithColumns(_))));
        let refs = inputs(&[
            ("e", &["ts", "user", "api"], Some("ts"), None),
            ("t", &["user", "team"], None, Some("reference")),
        ]);
        let err =
            plan_query("SELECT t.user FROM e LEFT JOIN t ON e.user = t.user", &refs).unwrap_err();
        assert!(err.to_string().contains("join key"), "{}", err);
    }

    #[test]
    fn two_streams_without_a_bound_and_half_bounds_are_refused() {
        let ins = inputs(&[
            ("a", &["ta", "k"], Some("ta"), None),
            ("b", &["tb", "k"], Some("tb"), None),
        ]);
        for (sql, what) in [
            ("SELECT * FROM a JOIN b ON a.k = b.k", "needs a time bound"),
            (
                "SELECT * FROM a JOIN b ON a.k = b.k AND b.tb >= a.ta",
                "only from below",
            ),
            (
                "SELECT * FROM a JOIN b ON a.k = b.k AND b.tb > a.ta",
                "closed",
            ),
            (
                "SELECT * FROM a FULL OUTER JOIN b ON a.k = b.k",
                "FULL OUTER JOIN",
            ),
            (
                "SELECT * FROM a JOIN b ON a.k = b.k AND b.ta BETWEEN a.k AND a.k",
                "column ta not found",
            ),
        ] {
            let err = plan_query(sql, &ins).unwrap_err();
            assert!(err.to_string().contains(what), "{sql}: {}", err);
        }
    }

    fn auctions_and_bids() -> Inputs {
        inputs(&[
            (
                "auctions",
                &["id", "category", "date_time", "expires"],
                Some("date_time"),
                None,
            ),
            (
                "bids",
                &["auction", "price", "date_time"],
                Some("date_time"),
                None,
            ),
        ])
    }

    fn filters(plan: &QueryPlan) -> Vec<String> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::Filter(crate::sql::Scalar::Sql { text, .. }) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_interval_join_takes_other_time_comparisons_as_filters_of_the_joined_rows() {
        let bound = "B.date_time BETWEEN A.date_time AND A.date_time + INTERVAL '1' MINUTE";
        let from = "FROM auctions A JOIN bids B ON A.id = B.auction";
        for sql in [
            format!("SELECT A.id, B.price {from} AND {bound} WHERE B.date_time <= A.expires"),
            format!("SELECT A.id, B.price {from} AND {bound} AND B.date_time <= A.expires"),
            format!("SELECT A.id, B.price {from} AND B.date_time <= A.expires AND {bound}"),
            format!("SELECT A.id, B.price {from} AND A.expires >= B.date_time WHERE {bound}"),
            format!(
                "SELECT A.id, B.price FROM auctions A, bids B WHERE A.id = B.auction \
                 AND B.date_time <= A.expires AND {bound}"
            ),
            // A second bound on the two times is a filter too.
            format!(
                "SELECT A.id, B.price {from} AND {bound} \
                 AND B.date_time <= A.date_time + INTERVAL '30' SECOND"
            ),
        ] {
            let plan = plan_query(&sql, &auctions_and_bids()).expect(&sql);
            let j = the_join(&plan);
            assert_eq!(j.kind, "interval", "{sql}");
            assert_eq!(
                (j.lower.clone(), j.upper.clone()),
                (Some(Duration::Count(0)), Some(Duration::Text("1m".into()))),
                "{sql}"
            );
            assert_eq!(j.how, "inner");
            let f = filters(&plan);
            assert_eq!(f.len(), 1, "{sql}: {f:?}");
            assert!(
                f[0].contains("\"date_time_right\"")
                    && (f[0].contains("\"expires\"") || f[0].contains("\"date_time\" +")),
                "{sql}: {f:?}"
            );
        }
        // An outer join's ON keeps the rows its other conditions fail: refused there, a
        // filter in WHERE.
        let err = plan_query(
            &format!(
                "SELECT A.id, B.price FROM auctions A LEFT JOIN bids B ON A.id = B.auction \
                 AND {bound} AND B.date_time <= A.expires"
            ),
            &auctions_and_bids(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("outer join's ON"), "{err}");
        let plan = plan_query(
            &format!(
                "SELECT A.id, B.price FROM auctions A LEFT JOIN bids B ON A.id = B.auction \
                 AND {bound} WHERE B.date_time <= A.expires"
            ),
            &auctions_and_bids(),
        )
        .expect("a left join filtered in WHERE");
        assert_eq!(the_join(&plan).how, "left");
        assert_eq!(filters(&plan).len(), 1);
        // Two comparisons, neither a whole bound: still refused.
        let err = plan_query(
            &format!(
                "SELECT A.id {from} AND B.date_time >= A.date_time AND B.date_time <= A.expires"
            ),
            &auctions_and_bids(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("time bounds compare"), "{err}");
    }

    fn per_window(input: &str, key: &str, start: &str, end: &str) -> String {
        format!(
            "(SELECT {key}, window_start AS {start}, window_end AS {end} \
             FROM TABLE(TUMBLE(TABLE {input}, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) \
             GROUP BY {key}, window_start, window_end)"
        )
    }

    #[test]
    fn a_window_join_on_renamed_bounds_is_a_window_join() {
        let ins = inputs(&[
            (
                "people",
                &["id", "name", "date_time"],
                Some("date_time"),
                None,
            ),
            (
                "auctions",
                &["seller", "date_time"],
                Some("date_time"),
                None,
            ),
        ]);
        for (start, end) in [
            ("starttime", "endtime"),
            ("window_start", "window_end"),
            ("ws", "window_end"),
        ] {
            let sql = format!(
                "SELECT P.id, P.name, P.{start} FROM {} P JOIN {} A \
                 ON P.id = A.seller AND P.{start} = A.{start} AND P.{end} = A.{end}",
                per_window("people", "id, name", start, end),
                per_window("auctions", "seller", start, end),
            );
            let plan = plan_query(&sql, &ins).expect(&sql);
            let j = the_join(&plan);
            assert_eq!(j.kind, "interval", "{sql}");
            assert_eq!(
                (j.lower.clone(), j.upper.clone()),
                (Some(Duration::Count(0)), Some(Duration::Count(0)))
            );
            assert_eq!(j.left_on, ["id", start], "{sql}");
            assert_eq!(j.right.time, crate::sql::Time::Declared(end.into()));
            assert_eq!(plan.columns, ["id", "name", start]);
        }
    }
}
