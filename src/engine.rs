//! One entry point over every window operator.

use crate::error::Result;
use crate::operator::{self, BatchResult, OperatorConfig};
use arrow_array::RecordBatch;
use std::ops::{Deref, DerefMut};

/// The operator a query needs (aligned windows, sessions or sliding windows), behind the
/// [`operator::Operator`] contract: every method of the trait is callable on it.
pub struct Operator(Box<dyn operator::Operator>);

impl Operator {
    /// Validates the configuration and builds the operator for its windowing.
    pub fn new(config: OperatorConfig) -> Result<Self> {
        operator::build(config).map(Operator)
    }

    /// Processes one batch that arrived at wall-clock `now_ms` ([`operator::Operator::process`]).
    pub fn process_at(&mut self, batch: &RecordBatch, now_ms: Option<i64>) -> Result<BatchResult> {
        self.0.process(batch, now_ms)
    }

    /// End of input: emits every open window ([`operator::Operator::flush`]).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.0.flush()
    }
}

impl Deref for Operator {
    type Target = dyn operator::Operator;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl DerefMut for Operator {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut *self.0
    }
}
