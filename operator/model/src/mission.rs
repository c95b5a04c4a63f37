//! The mission's flows and objectives, compiled: node names resolved to indices, rates to
//! datagrams per second, windows to emulation times. `compile` checks the spec's `traffic`
//! and `objectives` and builds these; what was measured against them is judged elsewhere
//! (the `orbitnet-mission` crate), against the model's paths here.

use std::fmt;

use crate::plan::NodeIdx;
use crate::spec::ObjectiveKind;
use crate::time::SimTime;

/// Bounded so that the CRD's rules over them stay within the API server's cost budget.
pub const MAX_FLOWS: u32 = 256;
pub const MAX_OBJECTIVES: u32 = 256;
pub const MAX_PACKETS_PER_SECOND: f64 = 100_000.0;
/// The smallest payload holds the measurement header (48 bytes); the largest fits a 1,500-byte MTU.
pub const MIN_SIZE_BYTES: u32 = 48;
pub const MAX_SIZE_BYTES: u32 = 1_472;
pub const MAX_DSCP: u32 = 63;
pub const MAX_LATENCY_MS: f64 = 3_600_000.0;
pub const MAX_OUTAGE_S: f64 = 3_600.0 * 24.0 * 365.0;
pub const MAX_STRETCH: f64 = 1_000.0;
/// Flow i is received on UDP port `FLOW_PORT_BASE + i` of its destination node.
pub const FLOW_PORT_BASE: u16 = 47_000;
/// What verdicts name as the flow of the routing objectives (`convergence`, `stretch`).
pub const ROUTING: &str = "routing";
/// The default percentile of a latency objective.
pub const DEFAULT_PERCENTILE: f64 = 99.0;

/// A flow with its nodes resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowDef {
    pub name: String,
    pub from: NodeIdx,
    pub to: NodeIdx,
    pub packets_per_second: f64,
    /// UDP payload bytes.
    pub size_bytes: u32,
    pub dscp: u8,
    pub start: SimTime,
    /// Exclusive; `None` = until the end of the run.
    pub end: Option<SimTime>,
}

impl FlowDef {
    /// The flow sends at `t`.
    pub fn active_at(&self, t: SimTime) -> bool {
        t >= self.start && self.end.is_none_or(|end| t < end)
    }

    /// Mbit/s of UDP payload.
    pub fn rate_mbps(&self) -> f64 {
        self.packets_per_second * f64::from(self.size_bytes) * 8.0 / 1e6
    }
}

/// What an objective bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Requirement {
    /// The `percentile` of one-way delay is at most `max_ms`.
    Latency { percentile: f64, max_ms: f64 },
    /// At least `min_pct` of the datagrams sent arrive.
    Delivery { min_pct: f64 },
    /// No time without delivery longer than `max_s`.
    Outage { max_s: f64 },
    /// Mean |difference of consecutive one-way delays| at most `max_ms`.
    Jitter { max_ms: f64 },
    /// Every ground pair forwarded again within `max_s` after each change of the graph.
    Convergence { max_s: f64 },
    /// Settled forwarding no slower than `max` times the model's path, for every pair.
    Stretch { max: f64 },
}

impl Requirement {
    pub fn kind(&self) -> ObjectiveKind {
        match self {
            Requirement::Latency { .. } => ObjectiveKind::Latency,
            Requirement::Delivery { .. } => ObjectiveKind::Delivery,
            Requirement::Outage { .. } => ObjectiveKind::Outage,
            Requirement::Jitter { .. } => ObjectiveKind::Jitter,
            Requirement::Convergence { .. } => ObjectiveKind::Convergence,
            Requirement::Stretch { .. } => ObjectiveKind::Stretch,
        }
    }

    /// `value` meets the bound.
    pub fn holds(&self, value: f64) -> bool {
        match *self {
            Requirement::Latency { max_ms, .. } | Requirement::Jitter { max_ms } => value <= max_ms,
            Requirement::Delivery { min_pct } => value >= min_pct,
            Requirement::Outage { max_s } | Requirement::Convergence { max_s } => value <= max_s,
            Requirement::Stretch { max } => value <= max,
        }
    }

    /// The measured quantity, e.g. "p99 one-way delay".
    pub fn quantity(&self) -> String {
        match *self {
            Requirement::Latency { percentile, .. } if percentile >= 100.0 => "max one-way delay".into(),
            Requirement::Latency { percentile, .. } => format!("p{} one-way delay", trim(percentile)),
            Requirement::Delivery { .. } => "delivered".into(),
            Requirement::Outage { .. } => "longest outage".into(),
            Requirement::Jitter { .. } => "jitter (IPDV)".into(),
            Requirement::Convergence { .. } => "time to forward every ground pair again".into(),
            Requirement::Stretch { .. } => "stretch".into(),
        }
    }

    /// The unit values are given in.
    pub fn unit(&self) -> &'static str {
        match self {
            Requirement::Latency { .. } | Requirement::Jitter { .. } => "ms",
            Requirement::Delivery { .. } => "%",
            Requirement::Outage { .. } | Requirement::Convergence { .. } => "s",
            Requirement::Stretch { .. } => "x",
        }
    }

    /// A value with its unit, as verdicts print it.
    pub fn show(&self, value: f64) -> String {
        match self {
            Requirement::Latency { .. } | Requirement::Jitter { .. } => format!("{value:.2} ms"),
            Requirement::Delivery { .. } => format!("{value:.2} %"),
            Requirement::Outage { .. } => format!("{value:.2} s"),
            Requirement::Convergence { .. } => format!("{value:.3} s"),
            Requirement::Stretch { .. } => format!("{value:.3}x"),
        }
    }
}

impl fmt::Display for Requirement {
    /// The bound as a requirement, e.g. "p99 one-way delay <= 150 ms".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Requirement::Latency { max_ms, .. } | Requirement::Jitter { max_ms } => {
                write!(f, "{} <= {} ms", self.quantity(), trim(max_ms))
            }
            Requirement::Delivery { min_pct } => write!(f, "delivered >= {} %", trim(min_pct)),
            Requirement::Outage { max_s } => write!(f, "longest outage <= {} s", trim(max_s)),
            Requirement::Convergence { max_s } => {
                write!(f, "every ground pair forwarded again <= {} s after each change", trim(max_s))
            }
            Requirement::Stretch { max } => write!(f, "settled stretch <= {}x", trim(max)),
        }
    }
}

/// A number without trailing zeros: 99, 99.9, 0.5.
fn trim(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// An objective's window in emulation time: `[from, to)`, `to` = `None` for the run's end.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowDef {
    pub from: SimTime,
    pub to: Option<SimTime>,
    /// How the spec put it, e.g. "during fault 2 (jam-carrier)".
    pub describe: String,
}

impl WindowDef {
    pub fn contains(&self, t: SimTime) -> bool {
        t >= self.from && self.to.is_none_or(|to| t < to)
    }
}

/// An objective with its flow and window resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveDef {
    pub name: String,
    /// Index into `Plan::flows`; `None` for the routing objectives (`convergence`,
    /// `stretch`), which bound every ground pair.
    pub flow: Option<usize>,
    pub requirement: Requirement,
    pub window: WindowDef,
}
