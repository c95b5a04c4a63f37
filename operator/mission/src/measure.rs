//! What a flow's receiver measured, tick by tick, with the model's prediction beside it.
//! Datagrams are counted in the tick they were sent in: the state that tick applied is
//! the one they crossed, so each tick's measurement sits beside that tick's model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Width of a delay histogram's bins: one-way delays are kept to 10 µs.
pub const BIN_NS: u64 = 10_000;

/// Gaps in delivery at least this long are kept one by one (with their times), so that an
/// outage is clipped to a window exactly; shorter ones only as each tick's longest.
pub const LONG_GAP_S: f64 = 0.1;

/// One-way delays in bins of `BIN_NS`, sparse: a tick's delays sit in a few bins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin (delay / BIN_NS) -> datagrams.
    bins: BTreeMap<u32, u64>,
}

impl Histogram {
    pub fn record_ns(&mut self, delay_ns: u64) {
        let bin = u32::try_from(delay_ns / BIN_NS).unwrap_or(u32::MAX);
        *self.bins.entry(bin).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (&bin, &n) in &other.bins {
            *self.bins.entry(bin).or_default() += n;
        }
    }

    pub fn count(&self) -> u64 {
        self.bins.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bins.is_empty()
    }

    /// The `percentile` (0-100, nearest rank) in ms, at the middle of its bin (100: the
    /// largest); `None` when empty.
    pub fn percentile_ms(&self, percentile: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((percentile.clamp(0.0, 100.0) / 100.0 * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (&bin, &n) in &self.bins {
            seen += n;
            if seen >= rank {
                return Some(bin_ms(bin));
            }
        }
        unreachable!("rank <= total")
    }

    pub fn min_ms(&self) -> Option<f64> {
        self.bins.keys().next().map(|&b| bin_ms(b))
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.bins.keys().next_back().map(|&b| bin_ms(b))
    }
}

fn bin_ms(bin: u32) -> f64 {
    (f64::from(bin) + 0.5) * BIN_NS as f64 / 1e6
}

/// What the model says of a flow at one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelTick {
    /// A path from the flow's source to its destination exists.
    pub path: bool,
    /// Its one-way delay.
    pub delay_ms: Option<f64>,
    /// Links on it.
    pub hops: usize,
    /// The share of datagrams its links' loss lets through (0 without a path).
    pub delivery: f64,
    /// Its links' jitter, as the IPDV it should show (uniform jitter of j on a link gives
    /// a mean |difference| of 2j/3; on a path, of the root of the sum of squares).
    pub jitter_ms: f64,
}

/// One flow over one tick: the datagrams sent in it and what became of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowTick {
    pub k: i64,
    /// Emulation time of the tick, s.
    pub t: f64,
    pub sent: u64,
    /// Distinct datagrams delivered.
    pub received: u64,
    pub duplicates: u64,
    /// Delivered after a later-sent datagram.
    pub reordered: u64,
    /// One-way delays of the datagrams delivered.
    pub delay: Histogram,
    /// Sum and count of |difference of one-way delay| between datagrams of consecutive
    /// sequence numbers both delivered (RFC 3393's IPDV), ns.
    pub ipdv_sum_ns: u64,
    pub ipdv_count: u64,
    /// The longest gap between the send times of consecutive delivered datagrams that ended
    /// with a datagram sent in this tick, s.
    pub max_gap: f64,
    pub model: ModelTick,
}

impl FlowTick {
    pub fn new(k: i64, t: f64) -> Self {
        Self { k, t, ..Self::default() }
    }

    /// Adds what another end counted of the same tick (the sender's sent, the receiver's
    /// deliveries); its model, if it has one, stands.
    pub fn merge(&mut self, o: &FlowTick) {
        self.sent += o.sent;
        self.received += o.received;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.delay.merge(&o.delay);
        self.ipdv_sum_ns += o.ipdv_sum_ns;
        self.ipdv_count += o.ipdv_count;
        self.max_gap = self.max_gap.max(o.max_gap);
        if o.model != ModelTick::default() {
            self.model = o.model;
        }
    }
}

/// A time without delivery: from the send time of a delivered datagram to that of the next
/// delivered one, in emulation seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub from: f64,
    pub to: f64,
}

/// Everything measured of one flow.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowSeries {
    /// By tick.
    pub ticks: BTreeMap<i64, FlowTick>,
    /// Gaps of at least `LONG_GAP_S`.
    pub gaps: Vec<Gap>,
    /// Send times of the first and last datagrams sent, s.
    pub first_sent: Option<f64>,
    pub last_sent: Option<f64>,
    /// Send times of the first and last datagrams delivered, s.
    pub first_delivered: Option<f64>,
    pub last_delivered: Option<f64>,
    /// The sequence number each tick's datagrams began with, as delivered datagrams say:
    /// a receiver without the sender's counts works out from them what was sent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tick_starts: BTreeMap<i64, u64>,
}

impl FlowSeries {
    pub fn tick(&mut self, k: i64, t: f64) -> &mut FlowTick {
        self.ticks.entry(k).or_insert_with(|| FlowTick::new(k, t))
    }

    /// A datagram sent at emulation time `t` in tick `k`.
    pub fn sent(&mut self, k: i64, t: f64, tick_t: f64) {
        self.tick(k, tick_t).sent += 1;
        self.first_sent.get_or_insert(t);
        self.last_sent = Some(self.last_sent.map_or(t, |l| l.max(t)));
    }

    /// Merges what another process measured of the same flow (a sender's counts with a
    /// receiver's deliveries, or two reports' summaries).
    pub fn merge(&mut self, other: &FlowSeries) {
        for (&k, o) in &other.ticks {
            self.tick(k, o.t).merge(o);
        }
        self.gaps.extend_from_slice(&other.gaps);
        self.gaps.sort_by(|a, b| a.from.total_cmp(&b.from));
        let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.first_sent = min(self.first_sent, other.first_sent);
        self.last_sent = max(self.last_sent, other.last_sent);
        self.first_delivered = min(self.first_delivered, other.first_delivered);
        self.last_delivered = max(self.last_delivered, other.last_delivered);
        self.tick_starts.extend(other.tick_starts.iter().map(|(&k, &s)| (k, s)));
    }

    /// Whether the sender's counts are here (its end runs in this process).
    pub fn has_sender_counts(&self) -> bool {
        self.ticks.values().any(|t| t.sent > 0)
    }

    /// Fills in what was sent in each of `ticks` ((tick, its time), the ticks the flow sent
    /// in, in order), for a receiver without the sender's counts: between two ticks whose
    /// first sequence numbers are known, their difference; elsewhere (no datagram of the
    /// tick or the next delivered) `per_tick`, the flow's rate times the tick, never fewer
    /// than were delivered. The send span becomes these ticks' span (`tick_s` long each).
    pub fn sent_from_sequence(&mut self, ticks: &[(i64, f64)], per_tick: f64, tick_s: f64) {
        for &(k, t) in ticks {
            let counted = match (self.tick_starts.get(&k), self.tick_starts.get(&(k + 1))) {
                (Some(&a), Some(&b)) if b >= a => b - a,
                _ => per_tick.round() as u64,
            };
            let tick = self.tick(k, t);
            tick.sent = counted.max(tick.received);
        }
        if let (Some(&(_, first)), Some(&(_, last))) = (ticks.first(), ticks.last()) {
            self.first_sent = Some(first);
            self.last_sent = Some(last + tick_s);
        }
    }
}

/// The receiving end of a flow: each datagram's sequence number, send time and tick.
#[derive(Clone, Debug, Default)]
pub struct Receiver {
    /// Highest sequence number delivered, with its one-way delay (ns) and send time (s).
    highest: Option<(u64, i64, f64)>,
    /// Sequence numbers delivered, the last `SEEN_WINDOW` of them.
    seen: SeenWindow,
}

/// A delivered datagram as the receiver reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arrival {
    pub seq: u64,
    /// The sequence number the datagram's tick began with.
    pub tick_first_seq: u64,
    /// The tick it was sent in, and that tick's time (s).
    pub k: i64,
    pub tick_t: f64,
    /// Its send time in emulation seconds.
    pub sent_t: f64,
    /// Receive time minus send time, ns (negative if the clocks disagree).
    pub delay_ns: i64,
}

/// Sequence numbers remembered for duplicate detection: a datagram older than this many
/// behind the newest counts as a duplicate.
const SEEN_WINDOW: u64 = 1 << 16;

/// A bitmap of the sequence numbers seen in `[floor, floor + SEEN_WINDOW)`: 8 KiB a flow,
/// whatever its rate.
#[derive(Clone, Debug)]
struct SeenWindow {
    bits: Vec<u64>,
    floor: u64,
}

impl Default for SeenWindow {
    fn default() -> Self {
        Self { bits: vec![0; (SEEN_WINDOW / 64) as usize], floor: 0 }
    }
}

impl SeenWindow {
    /// Marks `seq`; false if it was seen before or is older than the window.
    fn insert(&mut self, seq: u64) -> bool {
        if seq < self.floor {
            return false;
        }
        if seq >= self.floor + SEEN_WINDOW {
            // Slide: forget what falls out below the new floor.
            let floor = seq + 1 - SEEN_WINDOW;
            if floor - self.floor >= SEEN_WINDOW {
                self.bits.fill(0);
            } else {
                for old in self.floor..floor {
                    self.clear(old);
                }
            }
            self.floor = floor;
        }
        let (word, bit) = ((seq % SEEN_WINDOW / 64) as usize, seq % 64);
        let was = self.bits[word] >> bit & 1 == 1;
        self.bits[word] |= 1 << bit;
        !was
    }

    fn clear(&mut self, seq: u64) {
        let (word, bit) = ((seq % SEEN_WINDOW / 64) as usize, seq % 64);
        self.bits[word] &= !(1 << bit);
    }
}

impl Receiver {
    /// Counts one delivered datagram into `series`.
    pub fn arrived(&mut self, series: &mut FlowSeries, a: Arrival) {
        series.tick_starts.entry(a.k).or_insert(a.tick_first_seq);
        if !self.seen.insert(a.seq) {
            series.tick(a.k, a.tick_t).duplicates += 1;
            return;
        }
        let tick = series.tick(a.k, a.tick_t);
        tick.received += 1;
        tick.delay.record_ns(a.delay_ns.max(0) as u64);
        match self.highest {
            Some((seq, _, _)) if a.seq < seq => {
                series.tick(a.k, a.tick_t).reordered += 1;
            }
            previous => {
                if let Some((seq, delay, sent_t)) = previous {
                    if a.seq == seq + 1 {
                        let tick = series.tick(a.k, a.tick_t);
                        tick.ipdv_sum_ns += a.delay_ns.abs_diff(delay);
                        tick.ipdv_count += 1;
                    }
                    let gap = a.sent_t - sent_t;
                    let tick = series.tick(a.k, a.tick_t);
                    tick.max_gap = tick.max_gap.max(gap);
                    if gap >= LONG_GAP_S {
                        series.gaps.push(Gap { from: sent_t, to: a.sent_t });
                    }
                }
                self.highest = Some((a.seq, a.delay_ns, a.sent_t));
                series.last_delivered = Some(a.sent_t);
            }
        }
        series.first_delivered = Some(series.first_delivered.map_or(a.sent_t, |f| f.min(a.sent_t)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(seq: u64, delay_ms: f64) -> Arrival {
        let sent_t = seq as f64 * 0.01;
        Arrival {
            seq,
            tick_first_seq: sent_t.floor() as u64 * 100,
            k: sent_t.floor() as i64,
            tick_t: sent_t.floor(),
            sent_t,
            delay_ns: (delay_ms * 1e6) as i64,
        }
    }

    #[test]
    fn percentiles_are_the_bins_nearest_rank() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record_ns(ms * 1_000_000);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile_ms(50.0), Some(50.005));
        assert_eq!(h.percentile_ms(99.0), Some(99.005));
        assert_eq!(h.percentile_ms(100.0), Some(100.005));
        assert_eq!(h.percentile_ms(0.0), Some(1.005));
        assert_eq!(h.min_ms(), Some(1.005));
        assert_eq!(Histogram::default().percentile_ms(50.0), None);
    }

    #[test]
    fn the_receiver_counts_losses_duplicates_reordering_and_gaps() {
        let mut s = FlowSeries::default();
        let mut r = Receiver::default();
        // 0..10 delivered, 10..60 lost (0.5 s), 60 and 61, 59 late, 61 twice.
        for seq in (0..10).chain([60, 61, 59, 61]) {
            r.arrived(&mut s, arrival(seq, 20.0 + (seq % 2) as f64));
        }
        let total = |f: fn(&FlowTick) -> u64| s.ticks.values().map(f).sum::<u64>();
        assert_eq!(total(|t| t.received), 13);
        assert_eq!(total(|t| t.duplicates), 1);
        assert_eq!(total(|t| t.reordered), 1);
        // Consecutive pairs 0-1 .. 8-9 and 60-61: 10 differences of 1 ms.
        assert_eq!(total(|t| t.ipdv_count), 10);
        assert_eq!(total(|t| t.ipdv_sum_ns), 10_000_000);
        assert_eq!(s.gaps.len(), 1);
        assert!((s.gaps[0].from - 0.09).abs() < 1e-9 && (s.gaps[0].to - 0.6).abs() < 1e-9, "{:?}", s.gaps);
        assert_eq!(s.first_delivered, Some(0.0));
        assert!((s.last_delivered.unwrap() - 0.61).abs() < 1e-9);
    }

    #[test]
    fn a_receiver_alone_works_out_what_was_sent_from_sequence_numbers() {
        // 100 a second for 5 s; everything of second 2 lost, and half of second 4.
        let mut s = FlowSeries::default();
        let mut r = Receiver::default();
        for seq in (0..200).chain(300..450) {
            r.arrived(&mut s, arrival(seq, 5.0));
        }
        assert!(!s.has_sender_counts());
        let ticks: Vec<(i64, f64)> = (0..5).map(|k| (k, k as f64)).collect();
        s.sent_from_sequence(&ticks, 100.0, 1.0);
        let sent: Vec<u64> = s.ticks.values().map(|t| t.sent).collect();
        // Ticks 0, 1 and 3 from the next tick's first number; 2 and 4 from the rate.
        assert_eq!(sent, vec![100, 100, 100, 100, 100]);
        assert_eq!((s.first_sent, s.last_sent), (Some(0.0), Some(5.0)));
    }

    #[test]
    fn the_seen_window_slides_and_forgets_what_falls_out() {
        let mut w = SeenWindow::default();
        assert!(w.insert(5) && !w.insert(5));
        assert!(w.insert(SEEN_WINDOW + 5), "a jump slides the window");
        assert!(!w.insert(5), "older than the window: counted as seen");
        assert!(w.insert(SEEN_WINDOW + 6) && w.insert(6 + SEEN_WINDOW * 3));
        assert!(w.insert(6 + SEEN_WINDOW * 3 - 1), "inside the window, not seen yet");
        assert!(!w.insert(6 + SEEN_WINDOW * 3 - 1));
    }

    #[test]
    fn merging_adds_the_counts_of_both_ends() {
        let mut sender = FlowSeries::default();
        for seq in 0..10 {
            sender.sent(0, seq as f64 * 0.01, 0.0);
        }
        let mut receiver = FlowSeries::default();
        let mut r = Receiver::default();
        for seq in 0..7 {
            r.arrived(&mut receiver, arrival(seq, 5.0));
        }
        sender.merge(&receiver);
        assert_eq!(sender.ticks[&0].sent, 10);
        assert_eq!(sender.ticks[&0].received, 7);
        assert_eq!(sender.first_delivered, Some(0.0));
        assert_eq!(sender.last_sent, Some(0.09));
    }
}
