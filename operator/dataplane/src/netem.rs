//! netem over netlink. netlink-packet-route has no netem type, so its TCA_OPTIONS are
//! encoded here: a `struct tc_netem_qopt` followed by TCA_NETEM_* attributes
//! (include/uapi/linux/pkt_sched.h), and decoded back from what the kernel dumps.
//!
//! Kernel facts the encoding relies on (net/sched/sch_netem.c, netem_change / netem_dump):
//! - qopt.latency and qopt.jitter are in 64 ns "ticks"; TCA_NETEM_LATENCY64 and
//!   TCA_NETEM_JITTER64 (ns, s64) override them, so delays far beyond 4.29 s fit.
//! - loss is a probability scaled to u32 (u32::MAX = 100 %).
//! - rate is bytes/s: TCA_NETEM_RATE's u32, or TCA_NETEM_RATE64 at or above 2^32 B/s
//!   (34.36 Gbit/s), with RATE's u32 then set to u32::MAX.
//! - a change keeps the old rate unless TCA_NETEM_RATE is sent: every request here sends
//!   the full set, rate 0 (unlimited) included.
//! - jitter is capped at i32::MAX ns (2.147 s).

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, Nla};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcHeader, TcMessage, TcOption};
use orbitnet_model::LinkState;

use crate::netlink::{Conn, NlError, Request};

const TCA_OPTIONS: u16 = 2;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
const QOPT_LEN: usize = 24;
const TC_NETEM_RATE_LEN: usize = 16;
/// PSCHED_SHIFT: a psched tick is 2^6 ns.
const PSCHED_SHIFT: u32 = 6;
const MAX_JITTER_NS: u64 = i32::MAX as u64;
const MAX_DELAY_NS: u64 = i64::MAX as u64;

/// The smallest queue a netem gets (the kernel's own default).
pub const MIN_LIMIT_PACKETS: u32 = 1000;
/// Queue sizing assumes full-size Ethernet frames.
const SIZING_PACKET_BYTES: u64 = 1500;
/// Rate assumed for sizing when the link has no rate limit.
const UNLIMITED_SIZING_BYTES_PER_S: u64 = 10_000_000_000 / 8;
const MAX_LIMIT_PACKETS: u64 = 1 << 20;

/// What one netem qdisc does to the packets leaving one interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Netem {
    pub delay_ns: u64,
    pub jitter_ns: u64,
    /// Loss probability as the kernel stores it: u32::MAX is 100 %.
    pub loss: u32,
    /// Bytes per second; 0 is unlimited.
    pub rate_bytes_per_s: u64,
    pub limit_packets: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetemError {
    #[error("jitter {jitter_ns} ns is above the kernel's limit of {MAX_JITTER_NS} ns (2.147 s)")]
    JitterTooLarge { jitter_ns: u64 },
    #[error("delay {delay_ns} ns does not fit netem's signed 64-bit nanoseconds")]
    DelayTooLarge { delay_ns: u64 },
    #[error("netem options are {len} bytes, shorter than tc_netem_qopt ({QOPT_LEN})")]
    Truncated { len: usize },
}

/// Queue length for a link: twice its bandwidth-delay product in full-size packets, at
/// least the kernel's default 1000, at most 2^20. At 10 Gbit/s x 20 ms that is 33,334:
/// the default 1000 would drop most of a window.
pub fn sized_limit(rate_bytes_per_s: u64, delay_ns: u64, jitter_ns: u64) -> u32 {
    let rate = if rate_bytes_per_s == 0 { UNLIMITED_SIZING_BYTES_PER_S } else { rate_bytes_per_s };
    let in_flight_bytes = u128::from(rate) * u128::from(delay_ns.saturating_add(jitter_ns)) / 1_000_000_000;
    let packets = (2 * in_flight_bytes).div_ceil(u128::from(SIZING_PACKET_BYTES));
    // Clamped to 1000..=2^20, so it fits a u32.
    packets.clamp(u128::from(MIN_LIMIT_PACKETS), u128::from(MAX_LIMIT_PACKETS)) as u32
}

/// A loss percentage as the kernel's scaled u32.
pub fn loss_from_pct(pct: f64) -> u32 {
    (pct.clamp(0.0, 100.0) / 100.0 * f64::from(u32::MAX)).round() as u32
}

impl Netem {
    /// The netem for one direction of a model link (both directions are the same).
    pub fn for_link(link: &LinkState) -> Self {
        let rate_bytes_per_s = link.rate_bps / 8;
        Self {
            delay_ns: link.delay_ns,
            jitter_ns: link.jitter_ns,
            loss: loss_from_pct(link.loss_pct),
            rate_bytes_per_s,
            limit_packets: sized_limit(rate_bytes_per_s, link.delay_ns, link.jitter_ns),
        }
    }

    /// Whether `self` is close enough to `other` that changing the qdisc would make no
    /// difference worth a kernel operation: the same rate, loss within 0.001 percentage
    /// points, delay and jitter within `delay_tolerance_ns` (the queue limit follows the
    /// delay and is not compared).
    pub fn close_to(&self, other: &Netem, delay_tolerance_ns: u64) -> bool {
        const LOSS_TOLERANCE: u32 = (u32::MAX as u64 / 100_000) as u32;
        self.rate_bytes_per_s == other.rate_bytes_per_s
            && self.loss.abs_diff(other.loss) <= LOSS_TOLERANCE
            && self.delay_ns.abs_diff(other.delay_ns) <= delay_tolerance_ns
            && self.jitter_ns.abs_diff(other.jitter_ns) <= delay_tolerance_ns
    }

    pub fn loss_pct(&self) -> f64 {
        f64::from(self.loss) / f64::from(u32::MAX) * 100.0
    }

    /// The TCA_OPTIONS payload: tc_netem_qopt, then LATENCY64, JITTER64, RATE (and RATE64).
    pub fn encode(&self) -> Result<Vec<u8>, NetemError> {
        if self.jitter_ns > MAX_JITTER_NS {
            return Err(NetemError::JitterTooLarge { jitter_ns: self.jitter_ns });
        }
        if self.delay_ns > MAX_DELAY_NS {
            return Err(NetemError::DelayTooLarge { delay_ns: self.delay_ns });
        }
        let ticks = |ns: u64| u32::try_from(ns >> PSCHED_SHIFT).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(QOPT_LEN + 12 + 12 + 20 + 12);
        for field in [ticks(self.delay_ns), self.limit_packets, self.loss, 0, 0, ticks(self.jitter_ns)] {
            out.extend(field.to_ne_bytes());
        }
        push_attr(&mut out, TCA_NETEM_LATENCY64, &self.delay_ns.to_ne_bytes());
        push_attr(&mut out, TCA_NETEM_JITTER64, &self.jitter_ns.to_ne_bytes());
        let rate32 = u32::try_from(self.rate_bytes_per_s).unwrap_or(u32::MAX);
        let mut rate = [0u8; TC_NETEM_RATE_LEN];
        rate[..4].copy_from_slice(&rate32.to_ne_bytes());
        push_attr(&mut out, TCA_NETEM_RATE, &rate);
        if self.rate_bytes_per_s >= 1 << 32 {
            push_attr(&mut out, TCA_NETEM_RATE64, &self.rate_bytes_per_s.to_ne_bytes());
        }
        Ok(out)
    }

    /// Reads back a TCA_OPTIONS payload the kernel dumped.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetemError> {
        if bytes.len() < QOPT_LEN {
            return Err(NetemError::Truncated { len: bytes.len() });
        }
        let word = |i: usize| {
            u32::from_ne_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]])
        };
        let mut netem = Netem {
            delay_ns: u64::from(word(0)) << PSCHED_SHIFT,
            limit_packets: word(1),
            loss: word(2),
            jitter_ns: u64::from(word(5)) << PSCHED_SHIFT,
            rate_bytes_per_s: 0,
        };
        let mut rate64 = None;
        let mut attrs = &bytes[QOPT_LEN..];
        while attrs.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
            let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
            if len < 4 || len > attrs.len() {
                break;
            }
            let value = &attrs[4..len];
            let u64_of = |v: &[u8]| v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes);
            match kind {
                TCA_NETEM_LATENCY64 => netem.delay_ns = u64_of(value).unwrap_or(netem.delay_ns),
                TCA_NETEM_JITTER64 => netem.jitter_ns = u64_of(value).unwrap_or(netem.jitter_ns),
                TCA_NETEM_RATE64 => rate64 = u64_of(value),
                TCA_NETEM_RATE if value.len() >= 4 => {
                    netem.rate_bytes_per_s =
                        u64::from(u32::from_ne_bytes([value[0], value[1], value[2], value[3]]));
                }
                _ => {}
            }
            attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
        }
        if let Some(r) = rate64 {
            netem.rate_bytes_per_s = netem.rate_bytes_per_s.max(r);
        }
        Ok(netem)
    }
}

fn push_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    // Values here are at most 16 bytes: the length fits a u16.
    out.extend(((4 + value.len()) as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

fn root_qdisc(ifindex: u32, attributes: Vec<TcAttribute>) -> TcMessage {
    let mut msg = TcMessage::default();
    msg.header = TcHeader { index: ifindex as i32, parent: TcHandle::ROOT, ..TcHeader::default() };
    msg.attributes = attributes;
    msg
}

fn netem_message(ifindex: u32, netem: &Netem) -> Result<TcMessage, NetemError> {
    let options = netem.encode()?;
    Ok(root_qdisc(
        ifindex,
        vec![TcAttribute::Kind("netem".into()), TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options))],
    ))
}

/// Sets the root qdisc of `ifindex` to this netem: creates it, or changes the existing netem
/// in place (NLM_F_REPLACE: no delete-and-add, queued packets stay queued).
pub fn replace(what: impl Into<String>, ifindex: u32, netem: &Netem) -> Result<Request, NetemError> {
    let msg = netem_message(ifindex, netem)?;
    Ok(Request::new(what, RouteNetlinkMessage::NewQueueDiscipline(msg), NLM_F_CREATE | NLM_F_REPLACE))
}

/// Adds this netem as the root qdisc of `ifindex`; fails if a root qdisc was set already.
pub fn create(what: impl Into<String>, ifindex: u32, netem: &Netem) -> Result<Request, NetemError> {
    let msg = netem_message(ifindex, netem)?;
    Ok(Request::new(what, RouteNetlinkMessage::NewQueueDiscipline(msg), NLM_F_CREATE | NLM_F_EXCL))
}

/// Removes the root qdisc of `ifindex` (back to the default).
pub fn delete(what: impl Into<String>, ifindex: u32) -> Request {
    Request::new(what, RouteNetlinkMessage::DelQueueDiscipline(root_qdisc(ifindex, Vec::new())), 0)
}

/// Every root netem in the connection's namespace, by interface index.
pub fn list(conn: &mut Conn) -> Result<Vec<(u32, Netem)>, NlError> {
    let dump = RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default());
    let mut out = Vec::new();
    for msg in conn.query("listing qdiscs", dump, true)? {
        let RouteNetlinkMessage::NewQueueDiscipline(tc) = msg else { continue };
        if tc.header.parent != TcHandle::ROOT {
            continue;
        }
        let is_netem = tc.attributes.iter().any(|a| matches!(a, TcAttribute::Kind(k) if k == "netem"));
        let options = tc.attributes.iter().find_map(|a| match a {
            TcAttribute::Options(opts) => opts.iter().find_map(|o| match o {
                TcOption::Other(nla) => Some(nla_value(nla)),
                _ => None,
            }),
            TcAttribute::Other(nla) if nla.kind() == TCA_OPTIONS => Some(nla_value(nla)),
            _ => None,
        });
        if let (true, Some(bytes)) = (is_netem, options) {
            let netem = Netem::decode(&bytes).map_err(|e| NlError::Decode {
                what: format!("netem of interface {}", tc.header.index),
                netns: conn.netns().to_owned(),
                message: e.to_string(),
            })?;
            out.push((tc.header.index as u32, netem));
        }
    }
    Ok(out)
}

/// The root netem of one interface, if it has one.
pub fn get(conn: &mut Conn, ifindex: u32) -> Result<Option<Netem>, NlError> {
    Ok(list(conn)?.into_iter().find(|(i, _)| *i == ifindex).map(|(_, n)| n))
}

fn nla_value(nla: &DefaultNla) -> Vec<u8> {
    let mut value = vec![0; nla.value_len()];
    nla.emit_value(&mut value);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netem(delay_ms: u64, jitter_ms: u64, loss_pct: f64, rate_bps: u64) -> Netem {
        let rate = rate_bps / 8;
        Netem {
            delay_ns: delay_ms * 1_000_000,
            jitter_ns: jitter_ms * 1_000_000,
            loss: loss_from_pct(loss_pct),
            rate_bytes_per_s: rate,
            limit_packets: sized_limit(rate, delay_ms * 1_000_000, jitter_ms * 1_000_000),
        }
    }

    /// The exact bytes for delay 20 ms, jitter 5 ms, 1 % loss, 10 Gbit/s, worked by hand
    /// from pkt_sched.h: qopt {latency 312500 ticks, limit, loss, gap 0, duplicate 0,
    /// jitter 78125 ticks}, LATENCY64 (type 10, 8 bytes), JITTER64 (11), RATE (6, 16 bytes).
    #[test]
    fn encoding_matches_the_uapi_layout() {
        let n = netem(20, 5, 1.0, 10_000_000_000);
        let b = n.encode().unwrap();
        let u32_at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap());
        let u16_at = |i: usize| u16::from_ne_bytes(b[i..i + 2].try_into().unwrap());
        let u64_at = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap());
        assert_eq!(u32_at(0), 20_000_000 >> 6);
        assert_eq!(u32_at(4), n.limit_packets);
        assert_eq!(u32_at(8), 42_949_673, "1 % of 2^32 - 1, rounded");
        assert_eq!((u32_at(12), u32_at(16)), (0, 0));
        assert_eq!(u32_at(20), 5_000_000 >> 6);
        assert_eq!((u16_at(24), u16_at(26), u64_at(28)), (12, TCA_NETEM_LATENCY64, 20_000_000));
        assert_eq!((u16_at(36), u16_at(38), u64_at(40)), (12, TCA_NETEM_JITTER64, 5_000_000));
        assert_eq!((u16_at(48), u16_at(50), u32_at(52)), (20, TCA_NETEM_RATE, 1_250_000_000));
        assert_eq!(b.len(), 68, "no RATE64 below 2^32 bytes/s");
    }

    #[test]
    fn rates_at_or_above_2_pow_32_bytes_use_rate64() {
        let n = netem(1, 0, 0.0, 100_000_000_000);
        let b = n.encode().unwrap();
        assert_eq!(u32::from_ne_bytes(b[52..56].try_into().unwrap()), u32::MAX);
        assert_eq!(u16::from_ne_bytes(b[70..72].try_into().unwrap()), TCA_NETEM_RATE64);
        assert_eq!(Netem::decode(&b).unwrap(), n);
        // 34.36 Gbit/s is the edge: 2^32 - 1 bytes/s still fits RATE.
        let edge = Netem { rate_bytes_per_s: (1 << 32) - 1, ..n };
        assert_eq!(edge.encode().unwrap().len(), 68);
    }

    #[test]
    fn decode_inverts_encode() {
        for n in [
            netem(0, 0, 0.0, 0),
            netem(20, 5, 1.0, 10_000_000_000),
            netem(5_000, 0, 60.0, 1_000_000),
            netem(300_000, 2_000, 100.0, 50_000_000_000),
        ] {
            assert_eq!(Netem::decode(&n.encode().unwrap()).unwrap(), n);
        }
    }

    /// Delays above 4.29 s (u32 nanoseconds) and above the 274 s the qopt's u32 ticks hold
    /// travel in LATENCY64; jitter above the kernel's i32::MAX ns is refused.
    #[test]
    fn long_delays_fit_and_huge_jitter_is_refused() {
        let n = netem(300_000, 0, 0.0, 0);
        let b = n.encode().unwrap();
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), u32::MAX, "the tick field saturates");
        assert_eq!(Netem::decode(&b).unwrap().delay_ns, 300_000_000_000);
        let jitter = Netem { jitter_ns: 3_000_000_000, ..n };
        assert_eq!(jitter.encode(), Err(NetemError::JitterTooLarge { jitter_ns: 3_000_000_000 }));
    }

    #[test]
    fn queue_limits_follow_the_bandwidth_delay_product() {
        // 10 Gbit/s x 20 ms = 25 MB = 16,667 frames, doubled.
        assert_eq!(sized_limit(1_250_000_000, 20_000_000, 0), 33_334);
        assert_eq!(sized_limit(1_250_000, 1_000_000, 0), MIN_LIMIT_PACKETS);
        assert_eq!(sized_limit(u64::MAX, u64::MAX, u64::MAX), 1 << 20);
        // Unlimited links are sized as if 10 Gbit/s.
        assert_eq!(sized_limit(0, 20_000_000, 0), 33_334);
    }

    #[test]
    fn closeness_tolerates_small_delay_and_loss_drift_only() {
        let n = netem(20, 0, 0.1, 1_000_000_000);
        let drifted = Netem { delay_ns: n.delay_ns + 9_000, loss: n.loss + 1000, ..n };
        assert!(n.close_to(&drifted, 10_000));
        assert!(!n.close_to(&drifted, 5_000));
        assert!(!n.close_to(&Netem { rate_bytes_per_s: 1, ..n }, u64::MAX));
        assert!(!n.close_to(&Netem { loss: loss_from_pct(0.2), ..n }, 10_000));
        assert!(n.close_to(&n, 0), "exact when the tolerance is 0");
    }

    #[test]
    fn loss_percentages_scale_to_u32() {
        assert_eq!(loss_from_pct(0.0), 0);
        assert_eq!(loss_from_pct(100.0), u32::MAX);
        assert_eq!(loss_from_pct(250.0), u32::MAX);
        assert!((netem(0, 0, 60.0, 0).loss_pct() - 60.0).abs() < 1e-6);
    }

    #[test]
    fn truncated_options_are_an_error_not_a_panic() {
        assert_eq!(Netem::decode(&[0; 10]), Err(NetemError::Truncated { len: 10 }));
        let mut b = netem(1, 0, 0.0, 0).encode().unwrap();
        b[24] = 0xff;
        assert!(Netem::decode(&b).is_ok());
    }
}
