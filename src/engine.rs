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
    ///
    /// A batch large enough to be split ([`crate::parallel::MIN_ROWS`] rows) is processed on
    /// one of the engine's threads when there are several: the operator's parallel steps (a
    /// few per window it closes) then hand half their work to the other thread, rather than
    /// each waking two threads from outside and waiting for both. Smaller batches stay on
    /// the calling thread, which spares them a hand-over.
    pub fn process_at(&mut self, batch: &RecordBatch, now_ms: Option<i64>) -> Result<BatchResult> {
        if batch.num_rows() >= crate::parallel::MIN_ROWS && crate::parallel::threads() > 1 {
            let op = &mut self.0;
            crate::parallel::pool().install(|| op.process(batch, now_ms))
        } else {
            self.0.process(batch, now_ms)
        }
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
