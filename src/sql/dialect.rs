//! The dialect sqlparser reads rillet's SQL in: the generic dialect's identifiers and
//! literals, plus what the streaming constructs need once the token pre-pass has run
//! (`CURSOR(SELECT ...)` as a function argument, `FILTER (WHERE ...)` on aggregates, named
//! windows, `=>` named arguments of the window TVFs).

use sqlparser::dialect::Dialect;

/// Kinesis Data Analytics and Flink streaming SQL, after the pre-pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamingDialect;

impl Dialect for StreamingDialect {
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '"' || ch == '`'
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch.is_ascii_digit() || ch == '_' || ch == '$'
    }

    fn supports_subquery_as_function_arg(&self) -> bool {
        true
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    fn supports_window_clause_named_window_reference(&self) -> bool {
        true
    }

    fn supports_named_fn_args_with_rarrow_operator(&self) -> bool {
        true
    }

    fn supports_group_by_expr(&self) -> bool {
        true
    }

    /// Flink's temporal join: `JOIN rates FOR SYSTEM_TIME AS OF o.t`.
    fn supports_table_versioning(&self) -> bool {
        true
    }
}
