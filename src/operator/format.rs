//! Instants and spans of time as messages show them.

use crate::time::TimeUnit;

/// Renders an instant for messages (RFC 3339 in UTC; years past 9999 get a sign, as
/// `+10000-01-01T00:00:00+00:00`), for any instant of any unit.
pub fn fmt_instant(t: i64, unit: TimeUnit) -> String {
    let per_second: i64 = match unit {
        TimeUnit::Integer => return t.to_string(),
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let secs = t.div_euclid(per_second);
    let nanos = t.rem_euclid(per_second) * (1_000_000_000 / per_second);
    match u32::try_from(nanos)
        .ok()
        .and_then(|n| chrono::DateTime::from_timestamp(secs, n))
    {
        Some(d) => d.to_rfc3339(),
        // Beyond the calendar's years (-262143 to 262142): the count itself.
        None => format!("{t} {} since 1970", unit.name()),
    }
}

/// Renders a span of time for messages, e.g. `2m5s` or `1.5s`.
pub fn fmt_span(span: i64, unit: TimeUnit) -> String {
    let per_second: i64 = match unit {
        TimeUnit::Integer => return span.to_string(),
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let (secs, frac) = (span.div_euclid(per_second), span.rem_euclid(per_second));
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac > 0 {
        let digits = format!("{:0width$}", frac, width = per_second.ilog10() as usize);
        out.push_str(&format!("{s}.{}s", digits.trim_end_matches('0')));
    } else if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_durations() {
        assert_eq!(fmt_span(8_000_000, TimeUnit::Microsecond), "8s");
        assert_eq!(fmt_span(125_500, TimeUnit::Millisecond), "2m5.5s");
        assert_eq!(
            fmt_span(3_600_000_000_001, TimeUnit::Nanosecond),
            "1h0.000000001s"
        );
        assert_eq!(fmt_span(0, TimeUnit::Second), "0s");
        assert_eq!(fmt_span(42, TimeUnit::Integer), "42");
    }
}
