//! The query plan: what a front end (the Python builder today, SQL next) produces, checked
//! and typed here, once.
//!
//! A [`Plan`] is plain data (serde): the source as a description, the row-wise steps before
//! the window, the time column and watermark, the window with its durations as written, the
//! keys, the emission and late-row modes, and the aggregates. [`Plan::check`] validates what
//! needs no data; [`Plan::bind`] types it against the input's columns (the first batch's
//! schema): it picks the time unit, resolves the window's durations into that unit, decides
//! each aggregate's engine input type and the type its result is given back in, and yields
//! the [`OperatorConfig`] the operator runs. [`Plan::explain`] prints it.
//!
//! ```
//! use _core::plan::Plan;
//! let plan = Plan::from_json(r#"{
//!     "source": "DataFrame", "time": "t", "watermark": {"span": {"count": 0}},
//!     "window": {"kind": "tumbling", "every": {"count": 10}},
//!     "by": ["k"], "emit": "final", "late": "collect",
//!     "aggs": [{"kind": "count", "name": "count"}]
//! }"#).unwrap();
//! assert!(plan.explain(None).contains("tumbling"));
//! ```

use crate::aggregate::{AggKind, AggOptions, AggSpec};
use crate::error::{Error, Result};
use crate::operator::{EmitMode, LateMode, OperatorConfig, Revise, Windowing};
use crate::time::{Duration, TimeUnit};
use crate::window::{Calendar, CalendarLength, Cumulative, WindowSpec};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit as ArrowUnit};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::Arc;

/// The version of the plan format; a plan says which one it was written in.
pub const PLAN_VERSION: u32 = 1;

const NS_PER_DAY: i64 = 86_400_000_000_000;
/// 1970-01-01 was a Thursday; weeks start on Monday, four days later.
const WEEK_ALIGN_NS: i64 = 4 * NS_PER_DAY;

/// A duration as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Span {
    /// A polars duration string: `"5m"`, `"1h30m"`, `"1mo"`, `"10i"`.
    Text(String),
    /// An integer: units of an integer time column (0 fits any column).
    Count(i64),
    /// A `datetime.timedelta` (or an `INTERVAL`), in microseconds.
    Micros(i64),
}

impl Default for Span {
    fn default() -> Self {
        Span::Count(0)
    }
}

impl Span {
    /// This span as a count of `unit`s; `what` names it in errors.
    pub fn to_units(&self, unit: TimeUnit, what: &str) -> Result<i64> {
        match self {
            Span::Count(v) => {
                if unit != TimeUnit::Integer && *v != 0 {
                    return Err(Error::Config(format!(
                        "{what}: the integer {v} is only a duration for an integer time column; \
                         this time column holds datetimes, so give a string such as '{v}s' or a \
                         datetime.timedelta"
                    )));
                }
                Ok(*v)
            }
            Span::Micros(us) => {
                if unit == TimeUnit::Integer {
                    return Err(Error::Config(format!(
                        "{what}: the time column is an integer column, so durations must be \
                         integers (e.g. 10 or '10i'), not a timedelta"
                    )));
                }
                let n = parse(&format!("{}us", us.unsigned_abs()), what)?.to_fixed(unit, what)?;
                Ok(if *us < 0 { -n } else { n })
            }
            Span::Text(t) => parse(t, what)?.to_fixed(unit, what),
        }
    }

    /// The span as the Python builder shows it (`'5m'`, `10`, `datetime.timedelta(...)`).
    pub fn describe(&self) -> String {
        match self {
            Span::Text(t) => format!("'{t}'"),
            Span::Count(v) => v.to_string(),
            Span::Micros(us) => {
                // As Python's repr: days may be negative, seconds and microseconds are not.
                let days = us.div_euclid(86_400_000_000);
                let rest = us.rem_euclid(86_400_000_000);
                let (secs, micros) = (rest / 1_000_000, rest % 1_000_000);
                let parts: Vec<String> =
                    [("days", days), ("seconds", secs), ("microseconds", micros)]
                        .into_iter()
                        .filter(|(_, v)| *v != 0)
                        .map(|(n, v)| format!("{n}={v}"))
                        .collect();
                if parts.is_empty() {
                    "datetime.timedelta(0)".into()
                } else {
                    format!("datetime.timedelta({})", parts.join(", "))
                }
            }
        }
    }

    fn text(&self) -> Option<Duration> {
        match self {
            Span::Text(t) => Duration::parse(t).ok(),
            _ => None,
        }
    }
}

/// A duration string parsed, its errors prefixed with `what`.
fn parse(text: &str, what: &str) -> Result<Duration> {
    Duration::parse(text).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{what}: {m}")),
        other => other,
    })
}

/// How the watermark of a query's input moves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delay {
    /// The largest event time seen, less this bounded out-of-orderness.
    Span(Span),
    /// Carried from the upstream query whose output this input is, less this delay: the
    /// watermark moves only when the upstream says its later rows cannot be earlier.
    Carried(Span),
}

/// A window layout as written: durations unresolved until the time unit is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowPlan {
    /// `[start, start + every)`, back to back.
    Tumbling {
        /// The length and the step.
        every: Span,
        /// Alignment shift from the epoch.
        #[serde(default)]
        offset: Option<Span>,
        /// The zone whose wall clock calendar windows follow.
        #[serde(default)]
        tz: Option<String>,
    },
    /// `[start, start + period)` starting every `every`.
    Hopping {
        /// The length.
        period: Span,
        /// The step.
        every: Span,
        /// Alignment shift from the epoch.
        #[serde(default)]
        offset: Option<Span>,
        /// The zone whose wall clock calendar windows follow.
        #[serde(default)]
        tz: Option<String>,
    },
    /// `[start, start + k * step)` for k = 1 .. period / step.
    Cumulative {
        /// The longest window.
        period: Span,
        /// The growth step.
        step: Span,
        /// Alignment shift from the epoch.
        #[serde(default)]
        offset: Option<Span>,
    },
    /// Per-key sessions closed by a gap.
    Session {
        /// The gap that closes a session.
        gap: Span,
        /// The longest a session may span.
        #[serde(default)]
        max_duration: Option<Span>,
    },
    /// No aggregates: rows pass through as they arrive (a row-by-row SQL query), or each
    /// window's rows come out when it closes (a window table function read row by row).
    Rows {
        /// The windows that list the rows (tumbling, hopping, cumulative), if any.
        #[serde(default)]
        window: Option<Box<WindowPlan>>,
    },
    /// Per-key windows of a fixed length from their first row (Kinesis' stagger windows).
    Stagger {
        /// How long a window lasts from its first row.
        range: Span,
    },
    /// One row out per row in, over `(t - period, t]` (`closed="both"`: `[t - period, t]`),
    /// or over the row and the `rows` rows of its key before it.
    Sliding {
        /// The look-back in time (None with `rows`).
        #[serde(default)]
        period: Option<Span>,
        /// `"right"` (the default) or `"both"`.
        #[serde(default)]
        closed: Option<String>,
        /// The look-back in rows (SQL's `ROWS n PRECEDING`).
        #[serde(default)]
        rows: Option<u64>,
    },
}

impl WindowPlan {
    fn kind(&self) -> &'static str {
        match self {
            WindowPlan::Tumbling { .. } => "tumbling",
            WindowPlan::Hopping { .. } => "hopping",
            WindowPlan::Cumulative { .. } => "cumulative",
            WindowPlan::Session { .. } => "session",
            WindowPlan::Stagger { .. } => "stagger",
            WindowPlan::Rows { .. } => "rows",
            WindowPlan::Sliding { .. } => "sliding",
        }
    }

    /// (period, every) of an aligned layout; a tumbling window's period is its `every`.
    fn lengths(&self) -> Option<(&Span, &Span)> {
        match self {
            WindowPlan::Tumbling { every, .. } => Some((every, every)),
            WindowPlan::Hopping { period, every, .. } => Some((period, every)),
            WindowPlan::Cumulative { period, step, .. } => Some((period, step)),
            _ => None,
        }
    }

    fn offset(&self) -> Option<&Span> {
        match self {
            WindowPlan::Tumbling { offset, .. }
            | WindowPlan::Hopping { offset, .. }
            | WindowPlan::Cumulative { offset, .. } => offset.as_ref(),
            _ => None,
        }
    }

    fn tz(&self) -> Option<&str> {
        match self {
            WindowPlan::Tumbling { tz, .. } | WindowPlan::Hopping { tz, .. } => tz.as_deref(),
            _ => None,
        }
    }

    /// The durations that set the layout, with the names the errors give them.
    fn durations(&self) -> Vec<(&'static str, &Span)> {
        match self.lengths() {
            Some((_, every)) if matches!(self, WindowPlan::Tumbling { .. }) => {
                vec![("every", every)]
            }
            Some((period, every)) => vec![("period", period), ("every", every)],
            None => Vec::new(),
        }
    }

    fn what(&self, name: &str) -> String {
        let label = if matches!(self, WindowPlan::Cumulative { .. }) && name == "every" {
            "step"
        } else {
            name
        };
        format!("{} window {label}", self.kind())
    }

    /// The layout in the units of a time column of `unit` whose zone is `column_tz`.
    pub fn resolve(&self, unit: TimeUnit, column_tz: Option<&str>) -> Result<Windowing> {
        self.layout(unit, column_tz)?.windowing(unit)
    }

    /// The layout's numbers in the units of a time column of `unit` whose zone is
    /// `column_tz`, checked.
    pub fn layout(&self, unit: TimeUnit, column_tz: Option<&str>) -> Result<Layout> {
        match self {
            WindowPlan::Sliding {
                period: None,
                rows: Some(n),
                closed,
            } => {
                if closed.as_deref().is_some_and(|c| c != "right") {
                    return Err(Error::Config(
                        "closed= is for a sliding window over a period; a window of rows holds \
                         the row and the rows before it"
                            .into(),
                    ));
                }
                Ok(Layout::SlidingRows { preceding: *n })
            }
            WindowPlan::Sliding {
                period: Some(period),
                closed,
                rows: None,
            } => {
                let p = period.to_units(unit, "sliding window period")?;
                // Times are whole units: [t - p, t] is (t - p - 1, t].
                let p = match closed.as_deref() {
                    None | Some("right") => p,
                    Some("both") => p.saturating_add(1),
                    Some(other) => {
                        return Err(Error::Config(format!(
                            "a sliding window is closed 'right' ((t - period, t], as polars' \
                             rolling) or 'both' ([t - period, t], as SQL's RANGE ... PRECEDING), \
                             not '{other}'"
                        )))
                    }
                };
                if p <= 0 {
                    return Err(Error::Config(format!(
                        "sliding window period must be positive, got {}",
                        period.describe()
                    )));
                }
                Ok(Layout::Sliding { period: p })
            }
            WindowPlan::Sliding { .. } => Err(Error::Config(
                "a sliding window looks back over a period (rl.sliding('5m')) or a number of \
                 rows (rl.sliding(rows=10)): give exactly one"
                    .into(),
            )),
            WindowPlan::Rows { window: None } => Ok(Layout::Rows(None)),
            WindowPlan::Rows { window: Some(w) } => {
                if matches!(
                    **w,
                    WindowPlan::Session { .. }
                        | WindowPlan::Sliding { .. }
                        | WindowPlan::Stagger { .. }
                        | WindowPlan::Rows { .. }
                ) {
                    return Err(Error::Config(format!(
                        "rows are listed by tumbling, hopping or cumulative windows, not {}",
                        w.kind()
                    )));
                }
                Ok(Layout::Rows(Some(Box::new(w.layout(unit, column_tz)?))))
            }
            WindowPlan::Stagger { range } => {
                let r = range.to_units(unit, "stagger range")?;
                if r <= 0 {
                    return Err(Error::Config(format!(
                        "a stagger window's range must be a positive duration, got {}",
                        range.describe()
                    )));
                }
                Ok(Layout::Stagger { range: r })
            }
            WindowPlan::Session { gap, max_duration } => {
                let g = gap.to_units(unit, "session gap")?;
                if g <= 0 {
                    return Err(Error::Config(format!(
                        "session gap must be a positive duration, got {}",
                        gap.describe()
                    )));
                }
                let max = match max_duration {
                    None => None,
                    Some(m) => {
                        let v = m.to_units(unit, "session max_duration")?;
                        if v < g {
                            return Err(Error::Config(format!(
                                "session max_duration ({}) must be at least the gap ({})",
                                m.describe(),
                                gap.describe()
                            )));
                        }
                        Some(v)
                    }
                };
                Ok(Layout::Session {
                    gap: g,
                    max_duration: max,
                })
            }
            _ if unit == TimeUnit::Integer => {
                if let Some(tz) = self.tz() {
                    return Err(Error::Config(format!(
                        "tz='{tz}' needs a Datetime time column, not an integer one"
                    )));
                }
                self.fixed(unit)
            }
            _ => {
                let tz = self.tz().or(column_tz);
                if self.is_calendar(tz) {
                    self.calendar(unit, tz.unwrap_or("UTC"))
                } else {
                    self.fixed(unit)
                }
            }
        }
    }

    fn is_calendar(&self, tz: Option<&str>) -> bool {
        let local = !matches!(tz, None | Some("UTC"));
        for (_, span) in self.durations() {
            if let Some(d) = span.text() {
                if d.months != 0 || ((d.weeks != 0 || d.days != 0) && local) {
                    return true;
                }
            }
        }
        // An explicit zone aligns even sub-day windows on its wall clock.
        !matches!(self.tz(), None | Some("UTC"))
    }

    fn week_offset(&self, unit: TimeUnit) -> i64 {
        let whole_weeks = self
            .lengths()
            .and_then(|(_, every)| every.text())
            .is_some_and(|d| d.is_whole_weeks());
        match unit.nanos_per_unit() {
            Some(per) if whole_weeks => WEEK_ALIGN_NS / per,
            _ => 0,
        }
    }

    fn offset_units(&self, unit: TimeUnit) -> Result<i64> {
        let offset = match self.offset() {
            Some(o) => o.to_units(unit, &self.what("offset"))?,
            None => 0,
        };
        let week = self.week_offset(unit);
        if let Some(v) = offset.checked_add(week) {
            return Ok(v);
        }
        // Whole-week windows repeat every `every`: an offset that far out aligns them as its
        // remainder does.
        let (_, every) = self.lengths().expect("an aligned layout");
        let every = every.to_units(unit, &self.what("every"))?;
        offset
            .rem_euclid(every.max(1))
            .checked_add(week)
            .ok_or_else(|| {
                Error::Config(format!(
                    "{}: the offset overflows 64-bit time; use an offset shorter than the window",
                    self.what("offset")
                ))
            })
    }

    fn fixed(&self, unit: TimeUnit) -> Result<Layout> {
        let (period_span, every_span) = self.lengths().expect("an aligned layout");
        let every = every_span.to_units(unit, &self.what("every"))?;
        let period = if matches!(self, WindowPlan::Tumbling { .. }) {
            every
        } else {
            period_span.to_units(unit, &self.what("period"))?
        };
        if period <= 0 || every <= 0 {
            return Err(Error::Config(format!(
                "{} window durations must be positive, got period={}, every={}",
                self.kind(),
                period_span.describe(),
                every_span.describe()
            )));
        }
        let offset = self.offset_units(unit)?;
        if let WindowPlan::Cumulative { .. } = self {
            if period % every != 0 {
                return Err(Error::Config(format!(
                    "a cumulative window's period ({}) must be a whole multiple of its step ({}), \
                     e.g. rl.cumulative('1h', '10m')",
                    period_span.describe(),
                    every_span.describe()
                )));
            }
            return Ok(Layout::Cumulative {
                period,
                step: every,
                offset,
            });
        }
        Ok(Layout::Fixed {
            period,
            every,
            offset,
        })
    }

    fn calendar(&self, unit: TimeUnit, tz: &str) -> Result<Layout> {
        if let WindowPlan::Cumulative { .. } = self {
            return Err(Error::Config(
                "cumulative windows take fixed durations ('1h', '10m', ...) aligned in UTC; \
                 calendar units and tz= are not supported for them"
                    .into(),
            ));
        }
        let (period_span, every_span) = self.lengths().expect("an aligned layout");
        let (every_m, every) = wall_length(every_span, unit, &self.what("every"))?;
        let (period_m, period) = if matches!(self, WindowPlan::Tumbling { .. }) {
            (every_m, every)
        } else {
            wall_length(period_span, unit, &self.what("period"))?
        };
        if (every_m > 0) != (period_m > 0) {
            return Err(Error::Config(format!(
                "{} window: period {} and every {} must both be calendar months (mo, q, y) or \
                 both fixed spans",
                self.kind(),
                period_span.describe(),
                every_span.describe()
            )));
        }
        Ok(Layout::Calendar {
            tz: tz.to_string(),
            period_months: period_m,
            period,
            every_months: every_m,
            every,
            offset: self.offset_units(unit)?,
        })
    }

    fn describe(&self) -> String {
        let mut s = match self {
            WindowPlan::Tumbling { every, .. } => format!("tumbling({})", every.describe()),
            WindowPlan::Hopping { period, every, .. } => format!(
                "hopping(period={}, every={})",
                period.describe(),
                every.describe()
            ),
            WindowPlan::Cumulative { period, step, .. } => format!(
                "cumulative(period={}, step={})",
                period.describe(),
                step.describe()
            ),
            WindowPlan::Session { gap, max_duration } => match max_duration {
                Some(m) => format!("session({}, max_duration={})", gap.describe(), m.describe()),
                None => format!("session({})", gap.describe()),
            },
            WindowPlan::Sliding {
                period: Some(period),
                closed,
                ..
            } => match closed.as_deref() {
                Some("both") => format!("sliding({}, closed='both')", period.describe()),
                _ => format!("sliding({})", period.describe()),
            },
            WindowPlan::Sliding { rows, .. } => format!("sliding(rows={})", rows.unwrap_or(0)),
            WindowPlan::Stagger { range } => format!("stagger({})", range.describe()),
            WindowPlan::Rows { window: None } => {
                "none: rows pass through as they arrive".to_string()
            }
            WindowPlan::Rows { window: Some(w) } => {
                format!("the rows of each {} window, when it closes", w.describe())
            }
        };
        if let Some(o) = self.offset() {
            let _ = write!(s, " offset {}", o.describe());
        }
        if let Some(tz) = self.tz() {
            let _ = write!(s, " in {tz}");
        }
        s
    }
}

/// A window layout in the units of the time column: what [`WindowPlan::layout`] checked and
/// the operator's window assigner is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Tumbling and hopping windows of fixed length.
    Fixed {
        /// Window length.
        period: i64,
        /// Step between starts.
        every: i64,
        /// Alignment shift.
        offset: i64,
    },
    /// Windows growing by `step` from each `period`'s start.
    Cumulative {
        /// The longest window.
        period: i64,
        /// The growth step.
        step: i64,
        /// Alignment shift.
        offset: i64,
    },
    /// Windows on a zone's wall clock; a length is whole months when its months are not 0.
    Calendar {
        /// The zone.
        tz: String,
        /// Length in months (0: a fixed wall-clock span).
        period_months: i64,
        /// Length as a wall-clock span.
        period: i64,
        /// Step in months (0: a fixed wall-clock span).
        every_months: i64,
        /// Step as a wall-clock span.
        every: i64,
        /// Alignment shift.
        offset: i64,
    },
    /// Sessions.
    Session {
        /// The gap that closes a session.
        gap: i64,
        /// The longest a session may span.
        max_duration: Option<i64>,
    },
    /// Per-row windows over `(t - period, t]`.
    Sliding {
        /// The look-back.
        period: i64,
    },
    /// Per-row windows over the row and the `preceding` rows of its key before it.
    SlidingRows {
        /// How many earlier rows each window holds.
        preceding: u64,
    },
    /// Per-key windows `[first, first + range)`.
    Stagger {
        /// A window's length.
        range: i64,
    },
    /// No aggregates; rows listed by these windows, if any.
    Rows(Option<Box<Layout>>),
}

impl Layout {
    /// The operator's windowing for this layout.
    pub fn windowing(&self, unit: TimeUnit) -> Result<Windowing> {
        let len = |months: i64, wall: i64| {
            if months > 0 {
                CalendarLength::Months(months)
            } else {
                CalendarLength::Wall(wall)
            }
        };
        Ok(match self {
            Layout::Sliding { period } => Windowing::Sliding { period: *period },
            Layout::SlidingRows { preceding } => Windowing::SlidingRows {
                preceding: *preceding,
            },
            Layout::Stagger { range } => Windowing::Stagger { range: *range },
            Layout::Rows(None) => Windowing::Rows { windows: None },
            Layout::Rows(Some(inner)) => match inner.windowing(unit)? {
                Windowing::Aligned(spec) => Windowing::Rows {
                    windows: Some(spec),
                },
                _ => {
                    return Err(Error::Config(
                        "rows are listed by tumbling, hopping or cumulative windows".into(),
                    ))
                }
            },
            Layout::Session { gap, max_duration } => Windowing::Session {
                gap: *gap,
                max_duration: *max_duration,
            },
            Layout::Fixed {
                period,
                every,
                offset,
            } => Windowing::Aligned(WindowSpec::hopping(*period, *every, *offset)?),
            Layout::Cumulative {
                period,
                step,
                offset,
            } => Windowing::Aligned(WindowSpec::Cumulative(Cumulative::new(
                *period, *step, *offset,
            )?)),
            Layout::Calendar {
                tz,
                period_months,
                period,
                every_months,
                every,
                offset,
            } => {
                let per_second = match unit.nanos_per_unit() {
                    Some(per) => 1_000_000_000 / per,
                    None => {
                        return Err(Error::Config(
                            "calendar windows need a Datetime time column, not an integer one"
                                .into(),
                        ))
                    }
                };
                Windowing::Aligned(WindowSpec::Calendar(Calendar::new(
                    tz,
                    per_second,
                    len(*every_months, *every),
                    len(*period_months, *period),
                    *offset,
                )?))
            }
        })
    }
}

/// (calendar months, fixed wall-clock span in `unit`) of a window length.
fn wall_length(span: &Span, unit: TimeUnit, what: &str) -> Result<(i64, i64)> {
    let Span::Text(text) = span else {
        return Ok((0, span.to_units(unit, what)?));
    };
    let d = parse(text, what)?;
    if d.index != 0 {
        return Err(Error::Config(format!(
            "{what}: index durations ('{}i') need an integer time column",
            d.index
        )));
    }
    if d.negative {
        return Err(Error::Config(format!(
            "{what}: window durations must be positive, got '{text}'"
        )));
    }
    let overflow = || Error::Config(format!("{what}: the duration overflows 64-bit time"));
    let fixed = d
        .weeks
        .checked_mul(7)
        .and_then(|w| w.checked_add(d.days))
        .and_then(|days| days.checked_mul(NS_PER_DAY))
        .and_then(|n| n.checked_add(d.nanos))
        .ok_or_else(overflow)?;
    if d.months != 0 && fixed != 0 {
        return Err(Error::Config(format!(
            "{what}: '{text}' mixes calendar months with a fixed span; use one or the other"
        )));
    }
    let per = unit.nanos_per_unit().unwrap_or(1);
    if fixed % per != 0 {
        return Err(Error::Config(format!(
            "{what}: '{text}' is finer than the time column's unit ({})",
            unit.name()
        )));
    }
    Ok((d.months, fixed / per))
}

/// Parameters an aggregate may take; absent ones keep their defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionsPlan {
    /// var/std: delta degrees of freedom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ddof: Option<u32>,
    /// quantile/approx_quantile: the quantile in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<f64>,
    /// top_k: how many items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// top_k(approx=True): Space-Saving counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<usize>,
    /// top_k: approximate instead of exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approx: Option<bool>,
    /// approx_count_distinct: HyperLogLog precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<u8>,
    /// approx_quantile: relative accuracy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_error: Option<f64>,
    /// quantile: `nearest` (the default), `lower`, `higher`, `midpoint`, `linear` or
    /// `equiprobable`, as polars names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpolation: Option<String>,
}

/// One aggregate as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggPlan {
    /// The function (`count`, `sum`, ..., `top_k`).
    pub kind: String,
    /// The output column.
    pub name: String,
    /// The input column or expression, as text (None: `count()` of rows).
    #[serde(default)]
    pub input: Option<String>,
    /// The row filter, as text.
    #[serde(default, rename = "where")]
    pub filter: Option<String>,
    /// top_k's weight column or expression, as text.
    #[serde(default)]
    pub weight: Option<String>,
    /// Parameters.
    #[serde(default)]
    pub options: OptionsPlan,
}

impl AggPlan {
    /// The engine column that carries input `i` (`v`: value, `w`: filter, `x`: weight).
    pub fn column(role: char, i: usize) -> String {
        format!("__rl_{role}{i}")
    }

    fn describe(&self) -> String {
        let mut args: Vec<String> = self.input.iter().map(|i| format!("'{i}'")).collect();
        let o = &self.options;
        let mut opt = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                args.push(format!("{name}={v}"));
            }
        };
        opt("ddof", o.ddof.map(|v| v.to_string()));
        opt("q", o.q.map(|v| v.to_string()));
        opt("k", o.k.map(|v| v.to_string()));
        opt("capacity", o.capacity.map(|v| v.to_string()));
        opt("approx", o.approx.filter(|a| *a).map(|_| "True".into()));
        opt("precision", o.precision.map(|v| v.to_string()));
        opt("relative_error", o.relative_error.map(|v| v.to_string()));
        opt(
            "interpolation",
            o.interpolation.as_ref().map(|v| format!("'{v}'")),
        );
        if let Some(w) = &self.weight {
            args.push(format!("weight='{w}'"));
        }
        if let Some(f) = &self.filter {
            args.push(format!("where={f}"));
        }
        format!("{}({})", self.kind, args.join(", "))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "EmitMode", rename_all = "snake_case")]
enum EmitModeDef {
    Final,
    Amend,
    Changelog,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "LateMode", rename_all = "snake_case")]
enum LateModeDef {
    Collect,
    Drop,
    Raise,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Revise", rename_all = "snake_case")]
enum ReviseDef {
    Row,
    Watermark,
}

fn yes() -> bool {
    true
}

/// A windowed query, as a front end describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The plan format version ([`PLAN_VERSION`]).
    #[serde(default = "current_version")]
    pub version: u32,
    /// What the rows come from, for people (a file, a DataFrame, an upstream query).
    pub source: String,
    /// Row-wise steps applied to each micro-batch before the window, for people.
    #[serde(default)]
    pub steps: Vec<String>,
    /// The event-time column.
    pub time: String,
    /// Event time is the wall clock when a row is read (a column the runtime adds).
    #[serde(default)]
    pub processing_time: bool,
    /// How the watermark moves.
    pub watermark: Delay,
    /// After this much wall-clock time without rows, event time follows the wall clock.
    #[serde(default)]
    pub idle_timeout_ms: Option<i64>,
    /// Emit every open window at the end of the input.
    #[serde(default = "yes")]
    pub flush: bool,
    /// The window layout.
    pub window: WindowPlan,
    /// Key columns.
    #[serde(default)]
    pub by: Vec<String>,
    /// How long a window stays open after the watermark passes its end.
    #[serde(default)]
    pub lateness: Span,
    /// When rows come out.
    #[serde(with = "EmitModeDef")]
    pub emit: EmitMode,
    /// What happens to late rows.
    #[serde(with = "LateModeDef")]
    pub late: LateMode,
    /// When late rows' changes come out (amend and changelog).
    #[serde(default, with = "ReviseDef")]
    pub revise: Revise,
    /// Wall-clock period of early firings (amend and changelog).
    #[serde(default)]
    pub early_ms: Option<i64>,
    /// The aggregates.
    pub aggs: Vec<AggPlan>,
}

fn current_version() -> u32 {
    PLAN_VERSION
}

/// A plan typed against its input: the operator's configuration and the casts around it.
#[derive(Debug, Clone)]
pub struct BoundPlan {
    /// The time unit of the query (from the time column's type).
    pub unit: TimeUnit,
    /// The input columns to cast before the operator: (column, engine type).
    pub input_casts: Vec<Field>,
    /// The output columns to give back in another type: (column, type).
    pub output_casts: Vec<Field>,
    /// The declared watermark delay in the time unit (for a carried watermark, what is taken
    /// off the upstream's).
    pub delay: i64,
    /// What the operator runs.
    pub config: OperatorConfig,
}

impl BoundPlan {
    /// The schema of the batch the operator reads: `input` with the input casts applied.
    pub fn prepared(&self, input: &Schema) -> SchemaRef {
        Arc::new(Schema::new(
            input
                .fields()
                .iter()
                .map(
                    |f| match self.input_casts.iter().find(|c| c.name() == f.name()) {
                        Some(c) => Arc::new(Field::new(f.name(), c.data_type().clone(), true)),
                        None => f.clone(),
                    },
                )
                .collect::<Vec<_>>(),
        ))
    }

    /// The schema of the rows the query emits, in the types they are given back in.
    pub fn output_schema(&self, input: &Schema) -> Result<SchemaRef> {
        let prepared = self.prepared(input);
        let (bound, _, _) = crate::operator::bind_schema(&self.config, &prepared)?;
        // Without a window, the rows go out as they came in.
        let schema = match self.config.window {
            Windowing::Rows { windows: None } => prepared,
            // The rows, then their window's bounds.
            Windowing::Rows { windows: Some(_) } => Arc::new(Schema::new(
                prepared
                    .fields()
                    .iter()
                    .chain(bound.output_schema.fields().iter())
                    .cloned()
                    .collect::<Vec<_>>(),
            )),
            _ => bound.output_schema,
        };
        Ok(Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(
                    |f| match self.output_casts.iter().find(|c| c.name() == f.name()) {
                        Some(c) => {
                            Arc::new(Field::new(f.name(), c.data_type().clone(), f.is_nullable()))
                        }
                        None => f.clone(),
                    },
                )
                .collect::<Vec<_>>(),
        )))
    }
}

impl Plan {
    /// Reads a plan from JSON and checks it.
    pub fn from_json(text: &str) -> Result<Plan> {
        let plan: Plan = serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("not a valid query plan: {e}")))?;
        plan.check()?;
        Ok(plan)
    }

    /// The plan as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a plan serialises")
    }

    /// Checks what needs no data: versions, modes that go together, names that collide.
    pub fn check(&self) -> Result<()> {
        if self.version != PLAN_VERSION {
            return Err(Error::Config(format!(
                "this plan was written in format version {}, but this rillet reads version \
                 {PLAN_VERSION}",
                self.version
            )));
        }
        if self.time.is_empty() {
            return Err(Error::Config(
                "the time column name is empty; name the event-time column".into(),
            ));
        }
        if self.revise != Revise::Row && self.emit == EmitMode::Final {
            return Err(Error::Config(
                "revise= says when changes to emitted windows come out, so it needs \
                 emit='amend' or emit='changelog' (final mode emits each window once)"
                    .into(),
            ));
        }
        if let Some(ms) = self.early_ms {
            if self.emit == EmitMode::Final {
                return Err(Error::Config(
                    "early= emits speculative revisions of open windows, so it needs \
                     emit='amend' or emit='changelog'"
                        .into(),
                ));
            }
            if ms <= 0 {
                return Err(Error::Config(format!(
                    "early must be a positive duration such as '10s', got {ms} ms"
                )));
            }
        }
        if let WindowPlan::Sliding { rows: Some(_), .. } = self.window {
            crate::operator::sliding::rows_frame_emits_final(self.emit)?;
        }
        if let Some(ms) = self.idle_timeout_ms {
            if ms <= 0 {
                return Err(Error::Config(format!(
                    "idle_timeout must be positive, got {ms} ms"
                )));
            }
        }
        let mut keys = std::collections::HashSet::new();
        for k in &self.by {
            if !keys.insert(k.as_str()) {
                return Err(Error::Config(format!(
                    "by= names a column twice: {}",
                    py_list(&self.by)
                )));
            }
        }
        if self.aggs.is_empty() && !matches!(self.window, WindowPlan::Rows { .. }) {
            return Err(Error::Config(
                "agg() needs at least one aggregate, e.g. rl.count()".into(),
            ));
        }
        let generated = self.generated_columns();
        for k in &self.by {
            if generated.contains(k) {
                return Err(Error::Config(format!(
                    "key column '{k}' would appear twice in the output: the window adds a column \
                     of that name ({}); rename it first, e.g. \
                     .with_columns(pl.col('{k}').alias('{k}_key'))",
                    py_list(&generated)
                )));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for a in &self.aggs {
            if AggKind::parse(&a.kind)? == AggKind::Current
                && !matches!(self.window, WindowPlan::Sliding { .. })
            {
                return Err(Error::Config(format!(
                    "'{}' takes each row's own value, which only a sliding window has (one \
                     output row per input row)",
                    a.name
                )));
            }
            if keys.contains(a.name.as_str())
                || generated.contains(&a.name)
                || !seen.insert(&a.name)
            {
                return Err(Error::Config(format!(
                    "output column '{}' appears twice; rename one aggregate with .alias('...')",
                    a.name
                )));
            }
        }
        Ok(())
    }

    /// The columns the window adds to the output, sorted.
    fn generated_columns(&self) -> Vec<String> {
        let mut g: Vec<String> = if matches!(self.window, WindowPlan::Sliding { .. }) {
            vec![self.time.clone()]
        } else if matches!(self.window, WindowPlan::Rows { window: None }) {
            vec![]
        } else {
            vec!["window_start".into(), "window_end".into()]
        };
        match self.emit {
            EmitMode::Amend => g.push("revision".into()),
            EmitMode::Changelog => g.push("op".into()),
            EmitMode::Final => {}
        }
        g.sort();
        g
    }

    /// Types the plan against `input`, the schema of the columns the runtime prepared: the
    /// time column, the keys, and per aggregate `i` its value `__rl_v{i}`, filter `__rl_w{i}`
    /// and weight `__rl_x{i}` (as [`AggPlan::column`] names them), each as the user's
    /// expression gives it.
    pub fn bind(&self, input: &Schema) -> Result<BoundPlan> {
        let columns = || {
            let names: Vec<String> = input
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| !n.starts_with("__rl_"))
                .collect();
            py_list(&names)
        };
        let tcol = &self.time;
        let Ok(tfield) = input.field_with_name(tcol) else {
            return Err(Error::Schema(format!(
                "time column '{tcol}' not found; the stream has columns {}",
                columns()
            )));
        };
        let mut input_casts = Vec::new();
        let mut output_casts = Vec::new();
        let (unit, column_tz): (TimeUnit, Option<String>) = match tfield.data_type() {
            DataType::Timestamp(u, tz) => (from_arrow_unit(*u), tz.as_deref().map(String::from)),
            DataType::Date32 | DataType::Date64 => {
                input_casts.push(Field::new(
                    tcol,
                    DataType::Timestamp(ArrowUnit::Microsecond, None),
                    true,
                ));
                (TimeUnit::Microsecond, None)
            }
            t if t.is_integer() => {
                if t != &DataType::Int64 {
                    input_casts.push(Field::new(tcol, DataType::Int64, true));
                    if matches!(
                        self.window,
                        WindowPlan::Sliding { .. } | WindowPlan::Rows { window: None }
                    ) {
                        // Sliding output carries the row's own time: give it back in its type.
                        output_casts.push(Field::new(tcol, t.clone(), true));
                    }
                }
                (TimeUnit::Integer, None)
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                (TimeUnit::Microsecond, Some("UTC".into()))
            }
            other => {
                return Err(Error::Schema(format!(
                    "time column '{tcol}' has type {}; use a Datetime, Date, integer, or ISO 8601 \
                     string column",
                    type_name(other)
                )))
            }
        };
        for k in &self.by {
            if k == tcol {
                return Err(Error::Schema(format!(
                    "by= includes the time column '{tcol}'; windows already group by time. To \
                     group by the raw value too, copy it first: \
                     .with_columns(pl.col('{tcol}').alias('{tcol}_key'))"
                )));
            }
            let Ok(f) = input.field_with_name(k) else {
                return Err(Error::Schema(format!(
                    "key column '{k}' not found; the stream has columns {}",
                    columns()
                )));
            };
            match f.data_type() {
                DataType::Dictionary(_, _) => {
                    input_casts.push(Field::new(k, DataType::Utf8View, true))
                }
                t if t.is_nested() => {
                    return Err(Error::Schema(format!(
                        "cannot group by '{k}' of type {}; use string, integer, boolean, date or \
                         datetime keys",
                        type_name(t)
                    )))
                }
                _ => {}
            }
        }
        let mut aggs = Vec::with_capacity(self.aggs.len());
        for (i, a) in self.aggs.iter().enumerate() {
            let kind = AggKind::parse(&a.kind)?;
            let weight_type = match &a.weight {
                None => None,
                Some(_) => {
                    let col = AggPlan::column('x', i);
                    let t = input
                        .field_with_name(&col)
                        .map_err(|_| missing(&col))?
                        .data_type();
                    if !is_numeric(t) {
                        return Err(Error::Schema(format!(
                            "weight= of '{}' must be numeric, but it is {}",
                            a.name,
                            type_name(t)
                        )));
                    }
                    if t != &DataType::Float64 {
                        input_casts.push(Field::new(&col, DataType::Float64, true));
                    }
                    Some(t.clone())
                }
            };
            let column = match &a.input {
                None => None,
                Some(_) => {
                    let col = AggPlan::column('v', i);
                    let t = input
                        .field_with_name(&col)
                        .map_err(|_| missing(&col))?
                        .data_type();
                    let (engine, back) = engine_types(kind, a, t, weight_type.as_ref())?;
                    if let Some(e) = engine {
                        if &e != t {
                            input_casts.push(Field::new(&col, e, true));
                        }
                    }
                    if let Some(b) = back {
                        output_casts.push(Field::new(&a.name, b, true));
                    }
                    Some(col)
                }
            };
            let filter = match &a.filter {
                None => None,
                Some(_) => {
                    let col = AggPlan::column('w', i);
                    let t = input
                        .field_with_name(&col)
                        .map_err(|_| missing(&col))?
                        .data_type();
                    if t != &DataType::Boolean {
                        return Err(Error::Schema(format!(
                            "where= of '{}' must be a boolean expression, but it gives {}",
                            a.name,
                            type_name(t)
                        )));
                    }
                    Some(col)
                }
            };
            let o = &a.options;
            let d = AggOptions::default();
            let options = AggOptions {
                ddof: o.ddof.unwrap_or(d.ddof),
                q: o.q.unwrap_or(d.q),
                k: o.k.unwrap_or(d.k),
                capacity: o.capacity.unwrap_or(d.capacity),
                approx: o.approx.unwrap_or(d.approx),
                weight: a.weight.as_ref().map(|_| AggPlan::column('x', i)),
                precision: o.precision.unwrap_or(d.precision),
                relative_error: o.relative_error.unwrap_or(d.relative_error),
                interpolation: match &o.interpolation {
                    Some(name) => crate::aggregate::Interpolation::parse(name)?,
                    None => d.interpolation,
                },
            };
            aggs.push(AggSpec {
                kind,
                column,
                filter,
                name: a.name.clone(),
                options,
            });
        }
        let window = self.window.resolve(unit, column_tz.as_deref())?;
        let (delay, carried) = match &self.watermark {
            Delay::Span(s) => (s, false),
            Delay::Carried(s) => (s, true),
        };
        let delay_units = delay.to_units(unit, "watermark")?;
        let lateness = self.lateness.to_units(unit, "lateness")?;
        for (what, value, given) in [
            ("watermark", delay_units, delay),
            ("lateness", lateness, &self.lateness),
        ] {
            if value < 0 {
                return Err(Error::Config(format!(
                    "{what}={} is negative; it must be a duration of zero or more, e.g. \
                     {what}='5s' (or 0)",
                    given.describe()
                )));
            }
        }
        if self.idle_timeout_ms.is_some() && unit == TimeUnit::Integer {
            return Err(Error::Config(
                "idle_timeout advances event time with the wall clock, so it needs a Datetime \
                 time column, not an integer one"
                    .into(),
            ));
        }
        let config = OperatorConfig {
            time_column: tcol.clone(),
            time_unit: unit,
            by: self.by.clone(),
            window,
            // A carried watermark moves only when the upstream advances it.
            delay: if carried { i64::MAX } else { delay_units },
            lateness,
            emit: self.emit,
            revise: self.revise,
            late: self.late,
            aggs,
            early_ms: self.early_ms,
        };
        Ok(BoundPlan {
            unit,
            input_casts,
            output_casts,
            delay: delay_units,
            config,
        })
    }

    /// The plan as text: the source, the steps, the operator with its parameters and, when
    /// `output` (the output schema) is known, the columns it emits.
    pub fn explain(&self, output: Option<&SchemaRef>) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "source      {}", self.source);
        for step in &self.steps {
            let _ = writeln!(s, "  -> {step}");
        }
        let time = if self.processing_time {
            format!(
                "{} (processing time: the wall clock when a row is read)",
                self.time
            )
        } else {
            self.time.clone()
        };
        let _ = writeln!(s, "event time  {time}");
        let watermark = match &self.watermark {
            Delay::Span(d) => format!("largest event time seen - {}", d.describe()),
            Delay::Carried(d) => format!("carried from the upstream query - {}", d.describe()),
        };
        let _ = writeln!(s, "watermark   {watermark}");
        if let Some(ms) = self.idle_timeout_ms {
            let _ = writeln!(
                s,
                "idle after  {ms} ms without rows: event time follows the wall clock"
            );
        }
        let _ = writeln!(s, "window      {}", self.window.describe());
        if !self.by.is_empty() {
            let _ = writeln!(s, "by          {}", self.by.join(", "));
        }
        let _ = write!(
            s,
            "emit        {} (late rows: {}, lateness {}",
            mode_name(self.emit),
            late_name(self.late),
            self.lateness.describe()
        );
        if self.revise != Revise::Row {
            let _ = write!(s, ", revise at the watermark");
        }
        if let Some(ms) = self.early_ms {
            let _ = write!(s, ", early every {ms} ms");
        }
        let _ = writeln!(
            s,
            "{})",
            if self.flush {
                ""
            } else {
                ", open windows kept at the end"
            }
        );
        let _ = writeln!(s, "aggregates");
        for a in &self.aggs {
            let _ = writeln!(s, "  {} = {}", a.name, a.describe());
        }
        match output {
            Some(schema) => {
                let _ = writeln!(s, "output");
                for f in schema.fields() {
                    let _ = writeln!(s, "  {}: {}", f.name(), type_name(f.data_type()));
                }
            }
            None => {
                let _ = writeln!(s, "output      known once the first batch is read");
            }
        }
        s
    }
}

fn missing(col: &str) -> Error {
    Error::Internal(format!("the prepared input has no column '{col}'"))
}

fn from_arrow_unit(u: ArrowUnit) -> TimeUnit {
    match u {
        ArrowUnit::Second => TimeUnit::Second,
        ArrowUnit::Millisecond => TimeUnit::Millisecond,
        ArrowUnit::Microsecond => TimeUnit::Microsecond,
        ArrowUnit::Nanosecond => TimeUnit::Nanosecond,
    }
}

fn mode_name(e: EmitMode) -> &'static str {
    match e {
        EmitMode::Final => "final",
        EmitMode::Amend => "amend",
        EmitMode::Changelog => "changelog",
    }
}

fn late_name(l: LateMode) -> &'static str {
    match l {
        LateMode::Collect => "collect",
        LateMode::Drop => "drop",
        LateMode::Raise => "raise",
    }
}

/// A Python list of names: `['a', 'b']`.
fn py_list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn is_numeric(t: &DataType) -> bool {
    t.is_numeric()
}

fn is_temporal(t: &DataType) -> bool {
    t.is_temporal()
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A type as polars names it, for messages.
pub fn type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "Boolean".into(),
        DataType::Int8 => "Int8".into(),
        DataType::Int16 => "Int16".into(),
        DataType::Int32 => "Int32".into(),
        DataType::Int64 => "Int64".into(),
        DataType::UInt8 => "UInt8".into(),
        DataType::UInt16 => "UInt16".into(),
        DataType::UInt32 => "UInt32".into(),
        DataType::UInt64 => "UInt64".into(),
        DataType::Float16 | DataType::Float32 => "Float32".into(),
        DataType::Float64 => "Float64".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "String".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "Binary".into(),
        DataType::Date32 | DataType::Date64 => "Date".into(),
        DataType::Timestamp(u, tz) => {
            let u = from_arrow_unit(*u).name();
            match tz {
                Some(tz) => format!("Datetime(time_unit='{u}', time_zone='{tz}')"),
                None => format!("Datetime(time_unit='{u}', time_zone=None)"),
            }
        }
        DataType::Duration(u) => format!("Duration(time_unit='{}')", from_arrow_unit(*u).name()),
        DataType::Time32(_) | DataType::Time64(_) => "Time".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            format!("Decimal(precision={p}, scale={s})")
        }
        DataType::Dictionary(_, _) => "Categorical (or Enum)".into(),
        DataType::Null => "Null".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => {
            format!("List({})", type_name(f.data_type()))
        }
        DataType::FixedSizeList(f, n) => {
            format!("Array({}, shape=({n},))", type_name(f.data_type()))
        }
        DataType::Struct(fields) => {
            let inner: Vec<String> = fields
                .iter()
                .map(|f| format!("'{}': {}", f.name(), type_name(f.data_type())))
                .collect();
            format!("Struct({{{}}})", inner.join(", "))
        }
        other => other.to_string(),
    }
}

const FLOATING: [AggKind; 4] = [
    AggKind::Var,
    AggKind::Std,
    AggKind::Quantile,
    AggKind::ApproxQuantile,
];
const VALUES: [AggKind; 6] = [
    AggKind::First,
    AggKind::Last,
    AggKind::Current,
    AggKind::CountDistinct,
    AggKind::ApproxCountDistinct,
    AggKind::TopK,
];

/// (the type the engine reads an aggregate's input in, the type its result is given back in)
/// for an input of type `t`; `weight` is the type of a top_k's weight.
fn engine_types(
    kind: AggKind,
    a: &AggPlan,
    t: &DataType,
    weight: Option<&DataType>,
) -> Result<(Option<DataType>, Option<DataType>)> {
    let name = a.input.as_deref().unwrap_or("");
    let f = &a.kind;
    let numeric_or_bool = is_numeric(t) || t == &DataType::Boolean;
    let integer_like = t.is_integer() || t == &DataType::Boolean;
    if kind == AggKind::Count {
        return Ok((None, None));
    }
    if kind == AggKind::Quantile
        && t.is_integer()
        && a.options
            .interpolation
            .as_deref()
            .is_some_and(|m| m == "equiprobable")
    {
        // Always one of the values (SQL's PERCENTILE_DISC): given back in their type.
        return Ok((Some(DataType::Float64), Some(t.clone())));
    }
    if FLOATING.contains(&kind) {
        if numeric_or_bool {
            return Ok((Some(DataType::Float64), None));
        }
        return Err(Error::Schema(format!(
            "rl.{f}('{name}') needs a numeric column, but '{name}' is {}; cast it with \
             .with_columns(pl.col(...).cast(pl.Float64)) first",
            type_name(t)
        )));
    }
    if VALUES.contains(&kind) {
        let (engine, out) = match t {
            DataType::Int64 | DataType::Float64 => (None, None),
            t if is_text(t) => (None, None),
            t if t.is_integer() || is_temporal(t) || t == &DataType::Boolean => {
                (Some(DataType::Int64), Some(t.clone()))
            }
            t if t.is_floating() => (Some(DataType::Float64), Some(t.clone())),
            DataType::Dictionary(_, _) => (Some(DataType::Utf8View), None),
            _ => {
                return Err(Error::Schema(format!(
                    "rl.{f}('{name}') takes integer, float, boolean, temporal or string values, \
                     but '{name}' is {}",
                    type_name(t)
                )))
            }
        };
        if kind == AggKind::TopK {
            let engine_value = engine.clone().unwrap_or_else(|| t.clone());
            return Ok((engine, top_k_output(a, out, engine_value, weight)));
        }
        if matches!(kind, AggKind::First | AggKind::Last | AggKind::Current) {
            return Ok((engine, out));
        }
        return Ok((engine, None));
    }
    if matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
        && matches!(
            kind,
            AggKind::Sum | AggKind::Mean | AggKind::Min | AggKind::Max
        )
    {
        // Float64 arithmetic: exact to about 15 significant digits (docs/aggregates.md).
        return Ok((Some(DataType::Float64), None));
    }
    if matches!(kind, AggKind::Sum | AggKind::Mean) {
        if integer_like {
            let e = if kind == AggKind::Sum {
                DataType::Int64
            } else {
                DataType::Float64
            };
            return Ok((Some(e), None));
        }
        if t.is_floating() {
            return Ok((Some(DataType::Float64), None));
        }
        if kind == AggKind::Mean && is_temporal(t) {
            return Err(Error::Schema(format!(
                "rl.mean('{name}'): mean of a {} column is not supported; cast it to a number \
                 first",
                type_name(t)
            )));
        }
    }
    if matches!(kind, AggKind::Min | AggKind::Max) {
        if integer_like {
            return Ok((
                Some(DataType::Int64),
                (t != &DataType::Int64).then(|| t.clone()),
            ));
        }
        if t.is_floating() {
            return Ok((
                Some(DataType::Float64),
                (t != &DataType::Float64).then(|| t.clone()),
            ));
        }
        if is_temporal(t) {
            return Ok((Some(DataType::Int64), Some(t.clone())));
        }
        if is_text(t) {
            return Err(Error::Schema(format!(
                "rl.{f}('{name}') needs a numeric or temporal column, but '{name}' is text \
                 (String). If it holds times, parse them first, e.g. \
                 .with_columns(pl.col('{name}').str.to_datetime(time_zone='UTC')) (rl.{f} of a \
                 Datetime is a Datetime); if it holds numbers, cast them: \
                 pl.col('{name}').cast(pl.Float64)"
            )));
        }
    }
    Err(Error::Schema(format!(
        "rl.{f}('{name}') needs a numeric column, but '{name}' is {}; cast it with \
         .with_columns(pl.col(...).cast(pl.Float64)) first",
        type_name(t)
    )))
}

/// The type a top_k list is given back in, or None when the engine's is right. The engine
/// carries values as Int64, Float64 or String and sums weights as Float64: integer weights
/// come back as Int64, as `rl.sum` of an integer column does (exact up to 2**53).
fn top_k_output(
    a: &AggPlan,
    value: Option<DataType>,
    engine_value: DataType,
    weight: Option<&DataType>,
) -> Option<DataType> {
    let integer_weight = a.weight.is_some() && weight.is_some_and(|w| w.is_integer());
    if value.is_none() && !integer_weight {
        return None;
    }
    let (measure, measure_type) = if a.weight.is_none() {
        ("count", DataType::Int64)
    } else if integer_weight {
        ("weight", DataType::Int64)
    } else {
        ("weight", DataType::Float64)
    };
    let mut fields = vec![
        Field::new("value", value.unwrap_or(engine_value), true),
        Field::new(measure, measure_type.clone(), true),
    ];
    if a.options.approx == Some(true) {
        fields.push(Field::new("error", measure_type, true));
    }
    Some(DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(fields.into()),
        true,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(window: &str, extra: &str) -> Plan {
        Plan::from_json(&format!(
            r#"{{"source": "test", "time": "t", "watermark": {{"span": {{"count": 0}}}},
                "window": {window}, "by": ["k"], "emit": "final", "late": "collect",
                "aggs": [{{"kind": "count", "name": "n"}}] {extra}}}"#
        ))
        .unwrap()
    }

    fn schema(time: DataType) -> Schema {
        Schema::new(vec![
            Field::new("t", time, true),
            Field::new("k", DataType::Utf8View, true),
        ])
    }

    #[test]
    fn a_session_keeps_its_gap_and_max_duration_in_their_places() {
        let p = plan(
            r#"{"kind": "session", "gap": {"text": "30s"}, "max_duration": {"text": "5m"}}"#,
            "",
        );
        let b = p
            .bind(&schema(DataType::Timestamp(ArrowUnit::Millisecond, None)))
            .unwrap();
        match b.config.window {
            Windowing::Session { gap, max_duration } => {
                assert_eq!((gap, max_duration), (30_000, Some(300_000)));
            }
            _ => panic!("not a session"),
        }
    }

    #[test]
    fn durations_resolve_in_the_time_columns_unit() {
        let p = plan(r#"{"kind": "tumbling", "every": {"micros": 90000000}}"#, "");
        for (unit, every) in [
            (ArrowUnit::Second, 90),
            (ArrowUnit::Millisecond, 90_000),
            (ArrowUnit::Nanosecond, 90_000_000_000),
        ] {
            let b = p.bind(&schema(DataType::Timestamp(unit, None))).unwrap();
            let Windowing::Aligned(spec) = b.config.window else {
                panic!()
            };
            let (_, w) = spec.indices(0);
            assert_eq!(spec.end(w) - spec.start(w), every);
        }
        let err = p.bind(&schema(DataType::Int64)).unwrap_err().to_string();
        assert!(err.contains("integer column"), "{err}");
    }

    #[test]
    fn a_plan_round_trips_through_json_and_refuses_unknown_fields() {
        let p = plan(
            r#"{"kind": "hopping", "period": {"text": "5m"}, "every": {"text": "1m"}}"#,
            "",
        );
        assert_eq!(Plan::from_json(&p.to_json()).unwrap(), p);
        let bad = p.to_json().replacen("\"by\"", "\"group\"", 1);
        let err = Plan::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn checks_name_what_collides() {
        let err = Plan::from_json(
            r#"{"source": "s", "time": "t", "watermark": {"span": {"count": 0}},
                "window": {"kind": "tumbling", "every": {"count": 10}}, "by": ["window_start"],
                "emit": "final", "late": "collect", "aggs": [{"kind": "count", "name": "n"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("would appear twice"), "{err}");
    }

    #[test]
    fn aggregates_are_typed_once_with_their_casts() {
        let p = Plan::from_json(
            r#"{"source": "s", "time": "t", "watermark": {"span": {"count": 0}},
                "window": {"kind": "tumbling", "every": {"count": 10}}, "emit": "final",
                "late": "collect", "aggs": [
                  {"kind": "min", "name": "lo", "input": "x"},
                  {"kind": "sum", "name": "s", "input": "y"},
                  {"kind": "top_k", "name": "top", "input": "z", "weight": "w"}]}"#,
        )
        .unwrap();
        let input = Schema::new(vec![
            Field::new("t", DataType::Int32, true),
            Field::new("__rl_v0", DataType::Int16, true),
            Field::new("__rl_v1", DataType::Boolean, true),
            Field::new("__rl_v2", DataType::Utf8View, true),
            Field::new("__rl_x2", DataType::Int32, true),
        ]);
        let b = p.bind(&input).unwrap();
        let casts: Vec<(String, DataType)> = b
            .input_casts
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert!(casts.contains(&("t".into(), DataType::Int64)));
        assert!(casts.contains(&("__rl_v0".into(), DataType::Int64)));
        assert!(casts.contains(&("__rl_v1".into(), DataType::Int64)));
        assert!(casts.contains(&("__rl_x2".into(), DataType::Float64)));
        let back: Vec<&String> = b.output_casts.iter().map(|f| f.name()).collect();
        assert_eq!(back, ["lo", "top"]);
        let err = p
            .bind(&Schema::new(vec![Field::new("t", DataType::Float64, true)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("time column 't' has type Float64"), "{err}");
    }
}
