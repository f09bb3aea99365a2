//! Time: the unit of a time column, polars-style duration strings and timestamp parsing.
//!
//! The engine works on `i64` instants in the unit of the query's time column (nanoseconds,
//! microseconds or milliseconds since the Unix epoch, or plain integers for an integer column).
//! Durations are converted into that unit once, when a query is built.

use crate::error::{Error, Result};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// The unit of the time column, and so of every instant and duration inside a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Nanoseconds since the epoch.
    Nanosecond,
    /// Microseconds since the epoch.
    Microsecond,
    /// Milliseconds since the epoch.
    Millisecond,
    /// Seconds since the epoch.
    Second,
    /// A plain integer column: durations must be integers (`"10i"`).
    Integer,
}

impl TimeUnit {
    /// How many of this unit make one nanosecond-based span, as a divisor of nanoseconds.
    pub fn nanos_per_unit(self) -> Option<i64> {
        match self {
            TimeUnit::Nanosecond => Some(1),
            TimeUnit::Microsecond => Some(1_000),
            TimeUnit::Millisecond => Some(1_000_000),
            TimeUnit::Second => Some(1_000_000_000),
            TimeUnit::Integer => None,
        }
    }

    /// The unit's name as polars spells it.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Nanosecond => "ns",
            TimeUnit::Microsecond => "us",
            TimeUnit::Millisecond => "ms",
            TimeUnit::Second => "s",
            TimeUnit::Integer => "integer",
        }
    }
}

/// A parsed polars duration string such as `"1h30m"`, `"500ms"`, `"1mo"` or `"10i"`.
///
/// ```
/// use _core::time::{Duration, TimeUnit};
/// let d = Duration::parse("1h30m").unwrap();
/// assert_eq!(d.to_fixed(TimeUnit::Millisecond, "every").unwrap(), 5_400_000);
/// assert!(Duration::parse("1 hour").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Duration {
    /// Calendar months (`mo`, `q` = 3, `y` = 12).
    pub months: i64,
    /// Weeks (`w`).
    pub weeks: i64,
    /// Days (`d`).
    pub days: i64,
    /// The fixed part below a day, in nanoseconds.
    pub nanos: i64,
    /// Index units (`i`), for integer time columns.
    pub index: i64,
    /// Whether the duration had a leading minus sign.
    pub negative: bool,
}

const NS_PER_DAY: i64 = 86_400_000_000_000;

impl Duration {
    /// Parses a polars duration string.
    pub fn parse(text: &str) -> Result<Duration> {
        let bad = |why: &str| {
            Error::Config(format!(
                "bad duration '{text}': {why}; expected a polars duration string such as \
                 '500ms', '30s', '1m', '1h30m', '1d', '1w', '1mo' or '10i'"
            ))
        };
        let s = text.trim();
        let (negative, mut rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        let mut d = Duration {
            negative,
            ..Duration::default()
        };
        let mut has_fixed = false;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad("each unit needs a number before it"));
            }
            let n: i64 = rest[..digits]
                .parse()
                .map_err(|_| bad("the number is too large"))?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let mul = |n: i64, m: i64| n.checked_mul(m).ok_or_else(|| bad("it overflows"));
            let add = |a: i64, b: i64| a.checked_add(b).ok_or_else(|| bad("it overflows"));
            match unit {
                "ns" => d.nanos = add(d.nanos, n)?,
                "us" | "µs" => d.nanos = add(d.nanos, mul(n, 1_000)?)?,
                "ms" => d.nanos = add(d.nanos, mul(n, 1_000_000)?)?,
                "s" => d.nanos = add(d.nanos, mul(n, 1_000_000_000)?)?,
                "m" => d.nanos = add(d.nanos, mul(n, 60_000_000_000)?)?,
                "h" => d.nanos = add(d.nanos, mul(n, 3_600_000_000_000)?)?,
                "d" => d.days = add(d.days, n)?,
                "w" => d.weeks = add(d.weeks, n)?,
                "mo" => d.months = add(d.months, n)?,
                "q" => d.months = add(d.months, mul(n, 3)?)?,
                "y" => d.months = add(d.months, mul(n, 12)?)?,
                "i" => d.index = add(d.index, n)?,
                "" => return Err(bad("a number has no unit")),
                other => return Err(bad(&format!("unknown unit '{other}'"))),
            }
            if unit != "i" {
                has_fixed = true;
            }
        }
        if has_fixed && d.index != 0 {
            return Err(bad("index units ('i') cannot be mixed with time units"));
        }
        Ok(d)
    }

    /// True when the duration has calendar parts (months, quarters, years).
    pub fn is_calendar(&self) -> bool {
        self.months != 0
    }

    /// True when the duration is made of whole weeks only (windows then start on Monday).
    pub fn is_whole_weeks(&self) -> bool {
        self.weeks != 0 && self.days == 0 && self.nanos == 0 && self.months == 0
    }

    /// Converts to a fixed number of `unit`s. `what` names the option in error messages.
    pub fn to_fixed(&self, unit: TimeUnit, what: &str) -> Result<i64> {
        let sign = if self.negative { -1 } else { 1 };
        if unit == TimeUnit::Integer {
            if self.months != 0 || self.weeks != 0 || self.days != 0 || self.nanos != 0 {
                return Err(Error::Config(format!(
                    "{what}: the time column is an integer column, so durations must be \
                     integers in the same unit (e.g. 10 or '10i'), not time spans"
                )));
            }
            return Ok(sign * self.index);
        }
        if self.index != 0 {
            return Err(Error::Config(format!(
                "{what}: '{}i' is an index duration, but the time column holds datetimes or \
                 timestamps; use a time span such as '30s' or a datetime.timedelta",
                self.index
            )));
        }
        if self.months != 0 {
            return Err(Error::Config(format!(
                "{what}: calendar durations (mo, q, y) have no fixed length; use a fixed \
                 duration such as '30d' here"
            )));
        }
        let per = unit.nanos_per_unit().expect("non-integer unit");
        let overflow = || Error::Config(format!("{what}: the duration overflows 64-bit time"));
        let total = (self.weeks.checked_mul(7).ok_or_else(overflow)?)
            .checked_add(self.days)
            .and_then(|d| d.checked_mul(NS_PER_DAY))
            .and_then(|n| n.checked_add(self.nanos))
            .ok_or_else(overflow)?;
        if total % per != 0 {
            return Err(Error::Config(format!(
                "{what}: the duration is finer than the time column's unit ({}); use a \
                 multiple of 1{}",
                unit.name(),
                unit.name()
            )));
        }
        Ok(sign * total / per)
    }
}

/// Parses an ISO 8601 / RFC 3339 timestamp into an instant in `unit` since the epoch.
///
/// A timestamp without an offset is taken as UTC; a date alone is midnight UTC. None when the
/// text is not a timestamp or when `unit` cannot hold it (see [`read_timestamp`] for which).
/// ```
/// use _core::time::{parse_timestamp, TimeUnit};
/// assert_eq!(parse_timestamp("1970-01-01T00:00:01Z", TimeUnit::Millisecond), Some(1000));
/// assert_eq!(parse_timestamp("1970-01-01 01:00:00+01:00", TimeUnit::Second), Some(0));
/// assert_eq!(parse_timestamp("yesterday", TimeUnit::Second), None);
/// // Any year a calendar date can have, as far as the unit reaches (nanoseconds: 1677-2262).
/// assert_eq!(parse_timestamp("9999-12-31T23:59:59Z", TimeUnit::Microsecond), Some(253_402_300_799_000_000));
/// assert_eq!(parse_timestamp("9999-12-31T23:59:59Z", TimeUnit::Nanosecond), None);
/// ```
pub fn parse_timestamp(text: &str, unit: TimeUnit) -> Option<i64> {
    read_timestamp(text, unit).ok()
}

/// Why a text is not an instant in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    /// The text is not an ISO 8601 / RFC 3339 timestamp.
    Unparseable,
    /// A valid timestamp that a 64-bit count of the unit cannot hold.
    OutOfRange,
}

/// Parses an ISO 8601 / RFC 3339 timestamp into an instant in `unit` since the epoch, telling
/// a text that is no timestamp apart from one the unit cannot hold.
pub fn read_timestamp(text: &str, unit: TimeUnit) -> std::result::Result<i64, TimestampError> {
    let per = unit.nanos_per_unit().ok_or(TimestampError::Unparseable)?;
    let (seconds, nanos) = match common_timestamp(text.as_bytes()) {
        Some(parts) => parts,
        None => {
            let utc = any_timestamp(text)?;
            (utc.timestamp(), utc.timestamp_subsec_nanos())
        }
    };
    // Seconds and the fraction apart, so that years beyond 1677-2262 (the reach of 64-bit
    // nanoseconds) are read in coarser units; in 128 bits, as the whole seconds of an instant
    // in the first second of 64-bit time are beyond it on their own.
    let per_second = 1_000_000_000 / per;
    let part = i64::from(nanos) / per;
    if let Some(v) = seconds
        .checked_mul(per_second)
        .and_then(|v| v.checked_add(part))
    {
        return Ok(v); // the common case, without 128-bit arithmetic
    }
    let v = i128::from(seconds) * i128::from(per_second) + i128::from(part);
    i64::try_from(v).map_err(|_| TimestampError::OutOfRange)
}

/// Two ASCII digits as a number.
#[inline]
fn digits2(b: &[u8]) -> Option<u32> {
    let (h, l) = (b[0].wrapping_sub(b'0'), b[1].wrapping_sub(b'0'));
    (h < 10 && l < 10).then_some(u32::from(h) * 10 + u32::from(l))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The common shape of a timestamp read without chrono: `YYYY-MM-DD`, `T` or a space,
/// `HH:MM:SS`, an optional fraction of 1 to 9 digits, then nothing (UTC), `Z` or `+HH:MM` /
/// `-HH:MM`. Returns the seconds since the epoch (UTC) and the nanoseconds, exactly as the
/// general reader would; None for anything else (which the general reader then judges),
/// including a leap second and surrounding spaces.
fn common_timestamp(b: &[u8]) -> Option<(i64, u32)> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits2(&b[0..2])? * 100 + digits2(&b[2..4])?;
    let (month, day) = (digits2(&b[5..7])?, digits2(&b[8..10])?);
    let (hour, minute, second) = (
        digits2(&b[11..13])?,
        digits2(&b[14..16])?,
        digits2(&b[17..19])?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for &d in &b[start..i] {
            nanos = nanos * 10 + u32::from(d - b'0');
        }
        nanos *= 10u32.pow((9 - n) as u32);
    }
    let offset = match &b[i..] {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits2(&[*h1, *h2])?, digits2(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    Some((seconds, nanos))
}

/// Any timestamp chrono reads: RFC 3339, ISO 8601 with or without an offset, a date.
fn any_timestamp(text: &str) -> std::result::Result<DateTime<chrono::Utc>, TimestampError> {
    let s = text.trim();
    let utc = if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        dt.to_utc()
    } else if let Some(n) = parse_naive(s) {
        n.and_utc()
    } else if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        dt.to_utc()
    } else if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z") {
        dt.to_utc()
    } else {
        return Err(TimestampError::Unparseable);
    };
    Ok(utc)
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_in_the_first_second_of_64_bit_nanoseconds_is_read() {
        let ns = TimeUnit::Nanosecond;
        // i64::MIN nanoseconds is 1677-09-21T00:12:43.145224192Z: its whole seconds alone
        // (-9223372037 s) are beyond 64-bit nanoseconds, the instant itself is not.
        assert_eq!(
            read_timestamp("1677-09-21T00:12:43.145224192Z", ns),
            Ok(i64::MIN)
        );
        assert_eq!(
            read_timestamp("1677-09-21T00:12:43.5Z", ns),
            Ok(-9_223_372_036_500_000_000)
        );
        assert_eq!(
            read_timestamp("1677-09-21T00:12:43.145224191Z", ns),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(
            read_timestamp("2262-04-11T23:47:16.854775807Z", ns),
            Ok(i64::MAX)
        );
        assert_eq!(
            read_timestamp("2262-04-11T23:47:16.854775808Z", ns),
            Err(TimestampError::OutOfRange)
        );
    }

    /// The fast reader of the common shape agrees with chrono's on every text it accepts, and
    /// leaves to chrono the ones it does not: dates that do not exist, leap seconds, long
    /// fractions, odd offsets and separators.
    #[test]
    fn the_common_shape_is_read_as_chrono_reads_it() {
        let mut rng = crate::rng::Rng::new(11);
        let mut pick =
            |options: &[&str]| options[rng.below(options.len() as u64) as usize].to_string();
        let mut accepted = 0;
        for _ in 0..60_000 {
            let text = format!(
                "{}-{}-{}{}{}:{}:{}{}{}",
                pick(&[
                    "1970", "2024", "2023", "1900", "2000", "0001", "9999", "1600", "2100", "0000"
                ]),
                pick(&["01", "02", "03", "04", "06", "09", "11", "12", "00", "13", "1x"]),
                pick(&["01", "28", "29", "30", "31", "15", "00", "32"]),
                pick(&["T", " ", "t", "_"]),
                pick(&["00", "09", "12", "23", "24", "99"]),
                pick(&["00", "30", "59", "60"]),
                pick(&["00", "07", "59", "60", "61"]),
                pick(&[
                    "",
                    ".",
                    ".5",
                    ".123",
                    ".123456",
                    ".123456789",
                    ".1234567891",
                    ".12a"
                ]),
                pick(&[
                    "", "Z", "z", "+00:00", "-00:00", "+05:30", "-08:00", "+23:59", "+24:00",
                    "-12:60", "+0530", "+05", " ", "Zx"
                ]),
            );
            let fast = common_timestamp(text.as_bytes());
            if let Some((secs, nanos)) = fast {
                accepted += 1;
                let slow = any_timestamp(&text)
                    .unwrap_or_else(|_| panic!("{text}: fast read, chrono did not"));
                assert_eq!(
                    (secs, nanos),
                    (slow.timestamp(), slow.timestamp_subsec_nanos()),
                    "{text}"
                );
            }
            for unit in [
                TimeUnit::Nanosecond,
                TimeUnit::Microsecond,
                TimeUnit::Millisecond,
                TimeUnit::Second,
            ] {
                let general = any_timestamp(&text).map(|t| {
                    let per = unit.nanos_per_unit().unwrap();
                    let v = i128::from(t.timestamp()) * i128::from(1_000_000_000 / per)
                        + i128::from(t.timestamp_subsec_nanos()) / i128::from(per);
                    i64::try_from(v).map_err(|_| TimestampError::OutOfRange)
                });
                let general = match general {
                    Ok(v) => v,
                    Err(e) => Err(e),
                };
                assert_eq!(read_timestamp(&text, unit), general, "{text}");
            }
        }
        assert!(accepted > 1_000, "{accepted}");
    }

    #[test]
    fn parses_compound_durations() {
        let d = Duration::parse("1h30m").unwrap();
        assert_eq!(d.to_fixed(TimeUnit::Second, "x").unwrap(), 5400);
        assert_eq!(
            Duration::parse("500ms")
                .unwrap()
                .to_fixed(TimeUnit::Microsecond, "x")
                .unwrap(),
            500_000
        );
        assert_eq!(
            Duration::parse("1d12h")
                .unwrap()
                .to_fixed(TimeUnit::Second, "x")
                .unwrap(),
            129_600
        );
        assert_eq!(
            Duration::parse("1w")
                .unwrap()
                .to_fixed(TimeUnit::Second, "x")
                .unwrap(),
            604_800
        );
        assert_eq!(
            Duration::parse("-5s")
                .unwrap()
                .to_fixed(TimeUnit::Millisecond, "x")
                .unwrap(),
            -5000
        );
        assert_eq!(
            Duration::parse("10i")
                .unwrap()
                .to_fixed(TimeUnit::Integer, "x")
                .unwrap(),
            10
        );
    }

    #[test]
    fn rejects_bad_durations_with_a_hint() {
        for bad in ["", "5", "m", "5 minutes", "5x", "1h5i"] {
            let e = Duration::parse(bad).unwrap_err();
            assert!(
                e.to_string().contains("expected a polars duration string"),
                "{bad}: {e}"
            );
        }
        let e = Duration::parse("5s")
            .unwrap()
            .to_fixed(TimeUnit::Integer, "every")
            .unwrap_err();
        assert!(e.to_string().contains("integer"));
        let e = Duration::parse("1ns")
            .unwrap()
            .to_fixed(TimeUnit::Millisecond, "every")
            .unwrap_err();
        assert!(e.to_string().contains("finer"));
    }

    #[test]
    fn parses_timestamps() {
        assert_eq!(
            parse_timestamp("2024-01-01T00:00:00Z", TimeUnit::Second),
            Some(1_704_067_200)
        );
        assert_eq!(
            parse_timestamp("2024-01-01T00:00:00.5", TimeUnit::Millisecond),
            Some(1_704_067_200_500)
        );
        assert_eq!(
            parse_timestamp("2024-01-01", TimeUnit::Second),
            Some(1_704_067_200)
        );
        assert_eq!(
            parse_timestamp("1969-12-31T23:59:59.999999999Z", TimeUnit::Microsecond),
            Some(-1)
        );
        assert_eq!(parse_timestamp("not a time", TimeUnit::Second), None);
    }

    #[test]
    fn iso_text_outside_1677_2262_is_read_in_microseconds() {
        let us = |s| read_timestamp(s, TimeUnit::Microsecond);
        assert_eq!(us("9999-12-31T23:59:59Z"), Ok(253_402_300_799_000_000));
        assert_eq!(us("0001-01-01T00:00:00Z"), Ok(-62_135_596_800_000_000));
        assert_eq!(
            us("1000-06-01T12:00:00.5+02:00"),
            Ok(-30_597_141_599_500_000)
        );
        assert_eq!(
            read_timestamp("9999-12-31T23:59:59Z", TimeUnit::Nanosecond),
            Err(TimestampError::OutOfRange)
        );
        assert_eq!(us("31/12/9999"), Err(TimestampError::Unparseable));
        // A fraction before the epoch floors, as everywhere else.
        assert_eq!(us("1969-12-31T23:59:59.9999995Z"), Ok(-1));
    }
}
