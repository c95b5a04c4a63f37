//! What can be wrong with a spec. Every problem names the field (a path such as
//! `spec.groundStations[0].latDeg`) and the offending value.

use std::fmt;

use thiserror::Error;

/// A spec that cannot become a model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpecError {
    /// The document is not YAML of the right shape (wrong type, unknown field, bad duration).
    #[error("{}", syntax_message(.path, .message, .location))]
    Syntax { path: String, message: String, location: Option<(usize, usize)> },
    /// The document parsed, but some values are wrong; all of them are listed.
    #[error("{}", Problems(.0))]
    Invalid(Vec<Invalid>),
}

fn syntax_message(path: &str, message: &str, location: &Option<(usize, usize)>) -> String {
    let at = location.map(|(l, c)| format!(" (line {l}, column {c})")).unwrap_or_default();
    if path.is_empty() || path == "." {
        format!("invalid document{at}: {message}")
    } else {
        format!("{path}{at}: {message}")
    }
}

struct Problems<'a>(&'a [Invalid]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} problems:", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl SpecError {
    /// The individual problems (one for a syntax error).
    pub fn problems(&self) -> Vec<String> {
        match self {
            SpecError::Syntax { .. } => vec![self.to_string()],
            SpecError::Invalid(list) => list.iter().map(ToString::to_string).collect(),
        }
    }
}

/// One wrong value, at one field.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{path}: {problem}")]
pub struct Invalid {
    pub path: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    #[error("{value} is outside {min}..{max}")]
    OutOfRange { value: f64, min: f64, max: f64 },
    #[error("{value} must be greater than 0")]
    NotPositive { value: f64 },
    #[error("{value} must not be negative")]
    Negative { value: f64 },
    #[error("{value} is not a number")]
    NotFinite { value: f64 },
    #[error("is required {0}")]
    Required(&'static str),
    #[error("is not used {0}")]
    NotUsed(&'static str),
    #[error(
        "{name:?} is not a valid name: {reason} (names must be DNS labels once lower-cased: a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)"
    )]
    BadName { name: String, reason: &'static str },
    #[error("name {name:?} is already used by {first}")]
    Duplicate { name: String, first: String },
    #[error("no node named {name:?}{}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownNode { name: String, suggestion: Option<String> },
    #[error("{node:?} is a {actual}, {wanted}")]
    WrongNodeKind { node: String, actual: &'static str, wanted: &'static str },
    #[error("{a:?} and {b:?} are never linked: {reason}")]
    NotLinked { a: String, b: String, reason: &'static str },
    #[error("TLE {name:?}: {message}")]
    Tle { name: String, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the constellation is empty: {0}")]
    Empty(&'static str),
    #[error("{found:?} is not supported here, expected {expected:?}")]
    Unsupported { found: String, expected: &'static str },
}
