//! Time as the model sees it: spec durations (`"100ms"`, `"1m30s"`), the RFC 3339 epoch,
//! emulation time as nanoseconds after the epoch, and Earth rotation (GMST).
//!
//! UTC throughout; leap seconds and UT1 - UTC are ignored (DESIGN.md §2), which moves the
//! Earth under the satellites by at most 0.9 s x 465 m/s = ~420 m at the equator.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Units a spec duration may use, largest first (the order `Display` writes them in).
const UNITS: [(&str, u64); 7] = [
    ("d", 86_400 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(d|h|m|s|ms|us|ns))+$";

/// A non-negative span of time, written in a spec as numbers with units: `"100ms"`, `"1s"`,
/// `"5m"`, `"1h30m"`, `"1.5s"`. Stored as whole nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpecDuration {
    nanos: u64,
}

/// Why a duration string was refused; the message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid duration {input:?}: {reason}; write a number and a unit (d, h, m, s, ms, us, ns), \
     e.g. \"100ms\", \"30s\", \"1m30s\""
)]
pub struct DurationError {
    pub input: String,
    pub reason: &'static str,
}

impl SpecDuration {
    pub const ZERO: SpecDuration = SpecDuration { nanos: 0 };

    pub const fn from_nanos(nanos: u64) -> Self {
        Self { nanos }
    }

    pub const fn from_secs(secs: u64) -> Self {
        Self { nanos: secs * NANOS_PER_SEC }
    }

    pub const fn from_millis(millis: u64) -> Self {
        Self { nanos: millis * 1_000_000 }
    }

    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    pub fn as_secs_f64(self) -> f64 {
        self.nanos as f64 / NANOS_PER_SEC as f64
    }
}

impl FromStr for SpecDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| DurationError { input: input.to_owned(), reason };
        if input.is_empty() {
            return Err(fail("it is empty"));
        }
        if input.starts_with('-') {
            return Err(fail("durations cannot be negative"));
        }
        let mut rest = input;
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let number_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| fail("the last number has no unit"))?;
            if number_len == 0 {
                return Err(fail("expected a number"));
            }
            let (number, tail) = rest.split_at(number_len);
            let unit_len = tail.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let &(_, unit_nanos) =
                UNITS.iter().find(|(name, _)| *name == unit).ok_or_else(|| fail("unknown unit"))?;
            total = total
                .checked_add(
                    scaled_nanos(number, unit_nanos).ok_or_else(|| fail("malformed or too large number"))?,
                )
                .ok_or_else(|| fail("too large"))?;
            rest = tail;
        }
        Ok(Self { nanos: total })
    }
}

/// `number` (digits, optionally one `.` and more digits) times `unit_nanos`, exactly, or
/// `None` if malformed, overflowing, or finer than a nanosecond.
fn scaled_nanos(number: &str, unit_nanos: u64) -> Option<u64> {
    let (whole, frac) = match number.split_once('.') {
        Some((whole, frac)) if !whole.is_empty() && !frac.is_empty() => (whole, frac),
        Some(_) => return None,
        None => (number, ""),
    };
    let whole: u64 = whole.parse().ok()?;
    let mut nanos = whole.checked_mul(unit_nanos)?;
    let mut place = unit_nanos;
    for digit in frac.bytes() {
        if !digit.is_ascii_digit() {
            return None;
        }
        let d = u64::from(digit - b'0');
        if !place.is_multiple_of(10) {
            // Below one nanosecond: only zeros may follow.
            if d != 0 {
                return None;
            }
            continue;
        }
        place /= 10;
        nanos = nanos.checked_add(d * place)?;
    }
    Some(nanos)
}

impl fmt::Display for SpecDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.nanos;
        for (name, unit) in UNITS {
            if rest >= unit {
                write!(f, "{}{name}", rest / unit)?;
                rest %= unit;
            }
        }
        Ok(())
    }
}

impl Serialize for SpecDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpecDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SpecDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"100ms\", \"30s\" or \"5m\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SpecDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SpecDuration, E> {
                Err(bare_number(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SpecDuration, E> {
                Err(bare_number(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SpecDuration, E> {
                Err(bare_number(v))
            }
        }
        fn bare_number<E: serde::de::Error>(v: impl fmt::Display) -> E {
            E::custom(format!("a bare number ({v}) has no unit: write a duration string such as \"{v}s\""))
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl JsonSchema for SpecDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: numbers with units d, h, m, s, ms, us, ns, e.g. \"100ms\", \"1m30s\"."
        })
    }
}

/// The instant emulation time 0 stands for: an RFC 3339 UTC timestamp in a spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub DateTime<Utc>);

/// Why an epoch string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid epoch {input:?}: {reason}; write an RFC 3339 timestamp such as \"2026-11-24T00:00:00Z\"")]
pub struct EpochError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Epoch {
    type Err = EpochError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        DateTime::parse_from_rfc3339(input)
            .map(|t| Epoch(t.with_timezone(&Utc)))
            .map_err(|e| EpochError { input: input.to_owned(), reason: e.to_string() })
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl Serialize for Epoch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Epoch {
    fn schema_name() -> Cow<'static, str> {
        "Epoch".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 UTC timestamp that emulation time 0 stands for."
        })
    }
}

impl Epoch {
    /// The wall-clock instant of emulation time `t`, or `None` past chrono's range.
    pub fn at(self, t: SimTime) -> Option<DateTime<Utc>> {
        self.0.checked_add_signed(chrono::Duration::nanoseconds(t.as_nanos()))
    }

    /// Julian years since J2000 (2000-01-01T12:00:00 UTC) at emulation time `t`.
    pub fn julian_years_since_j2000(self, t: SimTime) -> f64 {
        const SECONDS_PER_JULIAN_YEAR: f64 = 365.25 * 86_400.0;
        sgp4::julian_years_since_j2000(&self.0.naive_utc()) + t.as_secs_f64() / SECONDS_PER_JULIAN_YEAR
    }
}

/// Emulation time: signed nanoseconds after the spec's epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(i64);

/// Why a time argument (`--at`, `--from`, ...) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid time {input:?}: give seconds after the epoch (\"600\", \"0.5\"), a duration \
     after the epoch (\"10m\"), or an RFC 3339 timestamp (\"2026-11-24T00:10:00Z\")"
)]
pub struct TimeError {
    pub input: String,
}

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Seconds to the nearest nanosecond; `None` if not finite or beyond +/-292 years.
    pub fn from_secs_f64(secs: f64) -> Option<Self> {
        let nanos = (secs * NANOS_PER_SEC as f64).round();
        // i64::MAX as f64 rounds up to 2^63, so compare strictly.
        (nanos.is_finite() && nanos.abs() < i64::MAX as f64).then_some(Self(nanos as i64))
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    pub fn checked_add(self, d: SpecDuration) -> Option<Self> {
        i64::try_from(d.as_nanos()).ok().and_then(|d| self.0.checked_add(d)).map(Self)
    }

    /// Parses a time given on a command line: seconds after the epoch, a duration after the
    /// epoch, or an RFC 3339 timestamp (converted with `epoch`).
    pub fn parse(input: &str, epoch: Epoch) -> Result<Self, TimeError> {
        let fail = || TimeError { input: input.to_owned() };
        if let Ok(secs) = input.parse::<f64>() {
            return Self::from_secs_f64(secs).ok_or_else(fail);
        }
        if let Ok(d) = input.parse::<SpecDuration>() {
            return i64::try_from(d.as_nanos()).map(Self).map_err(|_| fail());
        }
        let at = DateTime::parse_from_rfc3339(input).map_err(|_| fail())?;
        (at.with_timezone(&Utc) - epoch.0).num_nanoseconds().map(Self).ok_or_else(fail)
    }
}

impl fmt::Display for SimTime {
    /// Seconds after the epoch, with as many decimals as needed (at most 9).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (secs, nanos) = (abs / NANOS_PER_SEC, abs % NANOS_PER_SEC);
        if nanos == 0 {
            write!(f, "{sign}{secs}")
        } else {
            let frac = format!("{nanos:09}");
            write!(f, "{sign}{secs}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// Greenwich mean sidereal time in radians, 0..2pi, at `years_since_j2000` (UT1 ~ UTC): the
/// IAU-82 expression (Vallado, *Fundamentals of Astrodynamics and Applications*, 4th ed.,
/// eq. 3-45), as implemented by the `sgp4` crate.
pub fn gmst_rad(years_since_j2000: f64) -> f64 {
    sgp4::iau_epoch_to_sidereal_time(years_since_j2000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> SpecDuration {
        s.parse().unwrap()
    }

    #[test]
    fn durations_parse_the_documented_forms() {
        assert_eq!(d("100ms"), SpecDuration::from_millis(100));
        assert_eq!(d("1s"), SpecDuration::from_secs(1));
        assert_eq!(d("5m"), SpecDuration::from_secs(300));
        assert_eq!(d("2h"), SpecDuration::from_secs(7200));
        assert_eq!(d("1d"), SpecDuration::from_secs(86_400));
        assert_eq!(d("1m30s"), SpecDuration::from_secs(90));
        assert_eq!(d("1.5s"), SpecDuration::from_millis(1500));
        assert_eq!(d("0.1s"), SpecDuration::from_millis(100));
        assert_eq!(d("250us"), SpecDuration::from_nanos(250_000));
        assert_eq!(d("7ns"), SpecDuration::from_nanos(7));
        assert_eq!(d("0s"), SpecDuration::ZERO);
    }

    #[test]
    fn durations_refuse_malformed_input_naming_it() {
        for bad in
            ["", "5", "5 m", "m", "-5s", "5min", "1.s", ".5s", "1.2.3s", "0.5ns", "99999999999999999999s"]
        {
            let err = bad.parse::<SpecDuration>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn durations_round_trip_through_display() {
        for s in ["100ms", "1s", "5m", "1m30s", "1d2h3m4s5ms6us7ns", "0s"] {
            assert_eq!(d(s).to_string(), s);
        }
        assert_eq!(d("90s").to_string(), "1m30s");
    }

    #[test]
    fn bare_numbers_are_refused_with_a_hint() {
        let err = serde_yaml::from_str::<SpecDuration>("300").unwrap_err().to_string();
        assert!(err.contains("\"300s\""), "{err}");
    }

    #[test]
    fn sim_time_parses_seconds_durations_and_timestamps() {
        let epoch: Epoch = "2026-11-24T00:00:00Z".parse().unwrap();
        let secs = |s: &str| SimTime::parse(s, epoch).unwrap().as_secs_f64();
        assert_eq!(secs("600"), 600.0);
        assert_eq!(secs("0.1"), 0.1);
        assert_eq!(secs("10m"), 600.0);
        assert_eq!(secs("2026-11-24T00:10:00Z"), 600.0);
        assert_eq!(secs("2026-11-23T23:59:00Z"), -60.0);
        assert!(SimTime::parse("soon", epoch).is_err());
        assert!(SimTime::parse("1e300", epoch).is_err());
        assert!(SimTime::parse("NaN", epoch).is_err());
    }

    #[test]
    fn sim_time_displays_as_seconds() {
        assert_eq!(SimTime::from_nanos(600_000_000_000).to_string(), "600");
        assert_eq!(SimTime::from_nanos(100_000_000).to_string(), "0.1");
        assert_eq!(SimTime::from_nanos(-1_500_000_000).to_string(), "-1.5");
    }

    /// Vallado, *Fundamentals of Astrodynamics and Applications*, 4th ed., Example 3-5:
    /// GMST on 1992-08-20 12:14:00 UT1 is 152.578787886 deg.
    #[test]
    fn gmst_matches_vallado_example_3_5() {
        let epoch: Epoch = "1992-08-20T12:14:00Z".parse().unwrap();
        let gmst_deg = gmst_rad(epoch.julian_years_since_j2000(SimTime::ZERO)).to_degrees();
        assert!((gmst_deg - 152.578787886).abs() < 1e-6, "{gmst_deg}");
    }
}
