//! One entry point over every window operator.

use crate::error::Result;
use crate::operator::{BatchResult, Metrics, OperatorConfig, WindowOperator, Windowing};
use crate::session::SessionOperator;
use crate::sliding::SlidingOperator;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

/// The operator a query needs: aligned windows or sessions.
pub enum Operator {
    /// Tumbling, hopping, cumulative and calendar windows.
    Window(Box<WindowOperator>),
    /// Session windows.
    Session(Box<SessionOperator>),
    /// Per-row sliding windows.
    Sliding(Box<SlidingOperator>),
}

macro_rules! each {
    ($self:expr, $op:ident => $body:expr) => {
        match $self {
            Operator::Window($op) => $body,
            Operator::Session($op) => $body,
            Operator::Sliding($op) => $body,
        }
    };
}

impl Operator {
    /// Validates the configuration and builds the operator for its windowing.
    pub fn new(config: OperatorConfig) -> Result<Self> {
        WindowOperator::validate(&config)?;
        Ok(match config.window {
            Windowing::Aligned(_) => Operator::Window(Box::new(WindowOperator::new(config))),
            Windowing::Session { .. } => Operator::Session(Box::new(SessionOperator::new(config)?)),
            Windowing::Sliding { .. } => Operator::Sliding(Box::new(SlidingOperator::new(config)?)),
        })
    }

    /// Processes one batch that arrived at wall-clock `now_ms`.
    pub fn process_at(&mut self, batch: &RecordBatch, now_ms: Option<i64>) -> Result<BatchResult> {
        each!(self, op => op.process_at(batch, now_ms))
    }

    /// End of input: emits every open window.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        each!(self, op => op.finish())
    }

    /// A heartbeat without rows (early firing).
    pub fn tick(&mut self, now_ms: i64) -> Result<RecordBatch> {
        each!(self, op => op.tick(now_ms))
    }

    /// Moves the watermark to at least `instant`.
    pub fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch> {
        each!(self, op => op.advance_watermark(instant))
    }

    /// Counters and gauges.
    pub fn metrics(&self) -> Metrics {
        each!(self, op => op.metrics())
    }

    /// The schema of emitted batches, once the first batch arrived.
    pub fn output_schema(&self) -> Option<SchemaRef> {
        each!(self, op => op.output_schema())
    }
}
