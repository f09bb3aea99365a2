//! One error type for the whole engine. The Python layer maps each variant to one exception
//! class (`rillet.SchemaError`, ...), so a message written here is what the user reads.

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A column is missing or has a type the operation cannot use.
    #[error("{0}")]
    Schema(String),
    /// An option is malformed or out of range (bad duration, negative lateness, ...).
    #[error("{0}")]
    Config(String),
    /// An input could not be read.
    #[error("{0}")]
    Source(String),
    /// An output could not be written.
    #[error("{0}")]
    Sink(String),
    /// A row arrived after all its windows closed and the query was told to raise.
    #[error("{0}")]
    LateData(String),
    /// A SQL text that cannot be read or planned; the message shows the line with a caret.
    #[error("{message}")]
    Sql {
        /// What is wrong, with the line and a caret under the column.
        message: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
    },
    /// A broken invariant: a bug in rillet, please report it.
    #[error("internal error (a bug in rillet, please report it): {0}")]
    Internal(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<arrow_schema::ArrowError> for Error {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Error::Internal(format!("arrow: {e}"))
    }
}
