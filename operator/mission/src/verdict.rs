//! Objectives judged: against what was measured (`evaluate`) and against the model's paths
//! alone (`predict`), into verdicts a person reads as a table and CI reads as an exit
//! status and JUnit.

use std::fmt;

use orbitnet_model::Plan;
use orbitnet_model::mission::ROUTING;
use orbitnet_model::mission::{ObjectiveDef, Requirement};
use serde::{Deserialize, Serialize};

use crate::measure::{FlowSeries, LONG_GAP_S, ModelTick};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Inconclusive,
    Fail,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Inconclusive => "INCONCLUSIVE",
        })
    }
}

/// A value judged against a requirement, or why there is none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judged {
    pub value: Option<f64>,
    pub outcome: Outcome,
    /// The numbers behind the outcome, in a sentence.
    pub detail: String,
}

impl Judged {
    fn of(req: &Requirement, value: f64, detail: String) -> Self {
        let outcome = if req.holds(value) { Outcome::Pass } else { Outcome::Fail };
        Judged { value: Some(value), outcome, detail }
    }

    fn without(outcome: Outcome, detail: String) -> Self {
        Judged { value: None, outcome, detail }
    }
}

/// One objective's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub objective: String,
    pub flow: String,
    /// E.g. "p99 one-way delay <= 150 ms".
    pub requirement: String,
    pub window: String,
    /// What was measured; `None` for a prediction alone.
    pub measured: Option<Judged>,
    /// What the model's paths allow.
    pub predicted: Judged,
}

impl Verdict {
    /// The measured outcome, or the predicted one when nothing was measured.
    pub fn outcome(&self) -> Outcome {
        self.measured.as_ref().map_or(self.predicted.outcome, |m| m.outcome)
    }
}

/// The span of emulation time a run measured: `[from, to)`, s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub from: f64,
    pub to: f64,
}

/// `[from, to)` of an objective's window, s, the end of the run standing for an open end.
fn window_of(o: &ObjectiveDef, run: Span) -> (f64, f64) {
    (o.window.from.as_secs_f64(), o.window.to.map_or(run.to, |t| t.as_secs_f64()))
}

/// The flow an objective bounds, or "routing" for the routing objectives.
fn flow_name(plan: &Plan, o: &ObjectiveDef) -> String {
    o.flow.map_or_else(|| ROUTING.to_owned(), |f| plan.flows[f].name.clone())
}

/// One change of the graph as the convergence watch judged it: its emulation time and kind
/// (`start`, `faultBegan`, ...), when every ground pair was forwarded again (real s), how
/// long it was watched, and the stretch once settled (`None`: it did not settle).
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingEvent {
    pub t: f64,
    pub kind: String,
    pub forwarded_s: Option<f64>,
    pub watched_s: f64,
    pub settled_stretch: Option<f64>,
}

/// Judges a routing objective (`convergence`, `stretch`) on the changes of the graph in its
/// window; the start (daemons converging from nothing) is not a change. The model changes
/// its routes with the graph at once: it predicts 0 s and a stretch of 1.
pub fn evaluate_routing(plan: &Plan, o: &ObjectiveDef, events: &[RoutingEvent], run: Span) -> Verdict {
    let (from, to) = window_of(o, run);
    let req = &o.requirement;
    let measured = if from < run.from || to > run.to || from >= run.to {
        Judged::without(
            Outcome::Inconclusive,
            format!("the run covered {} .. {} s, not the window {from} .. {to} s", run.from, run.to),
        )
    } else {
        let inside: Vec<&RoutingEvent> =
            events.iter().filter(|e| e.kind != "start" && e.t >= from && e.t < to).collect();
        match *req {
            Requirement::Convergence { max_s } => {
                // A change left unforwarded for the bound fails; one whose watch ended sooner
                // (the next change came, or the run ended) shows nothing either way.
                let unforwarded = |e: &&&RoutingEvent| e.forwarded_s.is_none();
                if let Some(e) = inside.iter().filter(unforwarded).find(|e| e.watched_s >= max_s) {
                    Judged {
                        value: Some(e.watched_s),
                        outcome: Outcome::Fail,
                        detail: format!(
                            "the {} at t = {} s left a ground pair unforwarded for the {:.3} s it was watched",
                            e.kind, e.t, e.watched_s
                        ),
                    }
                } else if let Some(e) = inside.iter().find(unforwarded) {
                    Judged::without(
                        Outcome::Inconclusive,
                        format!(
                            "the {} at t = {} s was watched for {:.3} s, less than the bound, and left a ground pair unforwarded until its watch ended",
                            e.kind, e.t, e.watched_s
                        ),
                    )
                } else if let Some(worst) = inside
                    .iter()
                    .max_by(|a, b| a.forwarded_s.unwrap_or(0.0).total_cmp(&b.forwarded_s.unwrap_or(0.0)))
                {
                    let v = worst.forwarded_s.unwrap_or(0.0);
                    Judged::of(
                        req,
                        v,
                        format!(
                            "{} changes of the graph; the slowest, the {} at t = {} s",
                            inside.len(),
                            worst.kind,
                            worst.t
                        ),
                    )
                } else {
                    Judged::of(req, 0.0, "no change of the graph in the window".into())
                }
            }
            Requirement::Stretch { .. } => {
                let settled: Vec<(f64, &RoutingEvent)> =
                    inside.iter().filter_map(|e| Some((e.settled_stretch?, *e))).collect();
                match settled.iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
                    Some(&(v, e)) => Judged::of(
                        req,
                        v,
                        format!(
                            "{} of {} changes settled; the worst after the {} at t = {} s",
                            settled.len(),
                            inside.len(),
                            e.kind,
                            e.t
                        ),
                    ),
                    None => Judged::without(
                        Outcome::Inconclusive,
                        format!("none of the {} changes of the graph in the window settled", inside.len()),
                    ),
                }
            }
            _ => Judged::without(Outcome::Inconclusive, "not a routing objective".into()),
        }
    };
    Verdict {
        objective: o.name.clone(),
        flow: flow_name(plan, o),
        requirement: req.to_string(),
        window: o.window.describe.clone(),
        measured: Some(measured),
        predicted: judge_routing_model(req),
    }
}

/// The routing objectives judged on `events` over `run`, or all inconclusive for the
/// reason `Err` gives (the changes could not be watched).
pub fn judge_routing(plan: &Plan, events: Result<&[RoutingEvent], &str>, run: Span) -> Vec<Verdict> {
    plan.objectives
        .iter()
        .filter(|o| o.flow.is_none())
        .map(|o| match events {
            Ok(events) => evaluate_routing(plan, o, events, run),
            Err(why) => Verdict {
                objective: o.name.clone(),
                flow: flow_name(plan, o),
                requirement: o.requirement.to_string(),
                window: o.window.describe.clone(),
                measured: Some(Judged::without(Outcome::Inconclusive, why.to_owned())),
                predicted: judge_routing_model(&o.requirement),
            },
        })
        .collect()
}

/// The model's routes follow the graph at once.
fn judge_routing_model(req: &Requirement) -> Judged {
    let v = if matches!(req, Requirement::Stretch { .. }) { 1.0 } else { 0.0 };
    Judged::of(req, v, "the model's routes change with the graph at once".into())
}

/// Judges objective `o` on what was measured of its flow over `run`, beside the model's
/// prediction from the same ticks.
pub fn evaluate(plan: &Plan, o: &ObjectiveDef, series: &FlowSeries, run: Span) -> Verdict {
    let tick_s = plan.tick.as_secs_f64();
    let (from, to) = window_of(o, run);
    let model: Vec<(f64, ModelTick)> = series
        .ticks
        .values()
        .filter(|t| t.t >= from && t.t < to && t.sent > 0)
        .map(|t| (t.t, t.model))
        .collect();
    let predicted = judge_model(plan, o, &model, tick_s);
    let measured = judge_measured(o, series, run, from, to);
    Verdict {
        objective: o.name.clone(),
        flow: flow_name(plan, o),
        requirement: o.requirement.to_string(),
        window: o.window.describe.clone(),
        measured: Some(measured),
        predicted,
    }
}

fn judge_measured(o: &ObjectiveDef, series: &FlowSeries, run: Span, from: f64, to: f64) -> Judged {
    let req = &o.requirement;
    if from < run.from {
        return Judged::without(
            Outcome::Inconclusive,
            format!("the window begins at {from} s, before the run's first tick at {} s", run.from),
        );
    }
    if to > run.to || from >= run.to {
        return Judged::without(
            Outcome::Inconclusive,
            format!("the run ended at {} s, before the window's end at {to} s", run.to),
        );
    }
    let ticks: Vec<_> = series.ticks.values().filter(|t| t.t >= from && t.t < to).collect();
    let sent: u64 = ticks.iter().map(|t| t.sent).sum();
    let received: u64 = ticks.iter().map(|t| t.received).sum();
    if sent == 0 {
        return Judged::without(
            Outcome::Inconclusive,
            "the flow sent nothing in the window (not started, or its endpoints never came up)".into(),
        );
    }
    match *req {
        Requirement::Convergence { .. } | Requirement::Stretch { .. } => {
            Judged::without(Outcome::Inconclusive, "a routing objective, judged on the routing".into())
        }
        Requirement::Latency { percentile, .. } => {
            let mut h = crate::measure::Histogram::default();
            for t in &ticks {
                h.merge(&t.delay);
            }
            match h.percentile_ms(percentile) {
                Some(v) => Judged::of(
                    req,
                    v,
                    format!("{} over {received} of {sent} datagrams delivered", req.show(v)),
                ),
                None => {
                    Judged::without(Outcome::Fail, format!("none of the {sent} datagrams sent was delivered"))
                }
            }
        }
        Requirement::Delivery { .. } => {
            let pct = received as f64 / sent as f64 * 100.0;
            Judged::of(req, pct, format!("{received} of {sent} datagrams delivered"))
        }
        Requirement::Jitter { .. } => {
            let (sum, n) = ticks.iter().fold((0u64, 0u64), |(s, n), t| (s + t.ipdv_sum_ns, n + t.ipdv_count));
            if n == 0 {
                return Judged::without(
                    Outcome::Inconclusive,
                    format!(
                        "no two consecutive datagrams of {sent} delivered: no delay variation to measure"
                    ),
                );
            }
            let v = sum as f64 / n as f64 / 1e6;
            Judged::of(req, v, format!("{} over {n} pairs of consecutive datagrams", req.show(v)))
        }
        Requirement::Outage { .. } => {
            let (v, at) = longest_outage(series, &ticks, from, to);
            Judged::of(req, v, format!("{} from {at:.1} s; {received} of {sent} delivered", req.show(v)))
        }
    }
}

/// The longest time within `[from, to)` (and within the flow's sending) without a delivered
/// datagram, s, and when it began.
fn longest_outage(
    series: &FlowSeries,
    ticks: &[&crate::measure::FlowTick],
    from: f64,
    to: f64,
) -> (f64, f64) {
    let a = series.first_sent.map_or(from, |f| f.max(from));
    let b = series.last_sent.map_or(to, |l| l.min(to));
    if b <= a {
        return (0.0, a);
    }
    let mut best = (0.0, a);
    let mut consider = |start: f64, end: f64| {
        let (s, e) = (start.max(a), end.min(b));
        if e - s > best.0 {
            best = (e - s, s);
        }
    };
    for g in &series.gaps {
        consider(g.from, g.to);
    }
    match (series.first_delivered, series.last_delivered) {
        (Some(first), Some(last)) => {
            consider(a, first);
            consider(last, b);
        }
        _ => consider(a, b),
    }
    for t in ticks {
        if t.max_gap < LONG_GAP_S && t.max_gap > best.0 {
            best = (t.max_gap, t.t);
        }
    }
    best
}

/// What the model's paths allow over `ticks` (time, prediction) of the window.
fn judge_model(plan: &Plan, o: &ObjectiveDef, ticks: &[(f64, ModelTick)], tick_s: f64) -> Judged {
    let req = &o.requirement;
    let Some(flow) = o.flow.map(|f| &plan.flows[f]) else { return judge_routing_model(req) };
    let (a, b) = (&plan.node(flow.from).name, &plan.node(flow.to).name);
    if ticks.is_empty() {
        return Judged::without(Outcome::Inconclusive, "the flow does not send in the window".into());
    }
    match *req {
        Requirement::Latency { percentile, .. } => {
            let mut delays: Vec<f64> = ticks.iter().filter_map(|(_, m)| m.delay_ms).collect();
            if delays.is_empty() {
                return Judged::without(
                    Outcome::Fail,
                    format!("no path from {a} to {b} at any tick of the window"),
                );
            }
            delays.sort_by(f64::total_cmp);
            let rank =
                ((percentile / 100.0 * delays.len() as f64).ceil() as usize).clamp(1, delays.len()) - 1;
            let v = delays[rank];
            Judged::of(
                req,
                v,
                format!(
                    "the model's path delay is {} at that percentile of the ticks with a path",
                    req.show(v)
                ),
            )
        }
        Requirement::Delivery { .. } => {
            let v = ticks.iter().map(|(_, m)| m.delivery).sum::<f64>() / ticks.len() as f64 * 100.0;
            let without = ticks.iter().filter(|(_, m)| !m.path).count();
            Judged::of(
                req,
                v,
                format!(
                    "no path at {without} of {} ticks; the links' loss lets {} through",
                    ticks.len(),
                    req.show(v)
                ),
            )
        }
        Requirement::Jitter { .. } => {
            let v = ticks.iter().map(|(_, m)| m.jitter_ms).sum::<f64>() / ticks.len() as f64;
            Judged::of(req, v, format!("the path's links' jitter gives about {}", req.show(v)))
        }
        Requirement::Outage { max_s } => {
            let mut best = (0usize, 0.0);
            let mut run = (0usize, 0.0);
            for &(t, m) in ticks {
                if m.path {
                    run = (0, 0.0);
                } else {
                    run = if run.0 == 0 { (1, t) } else { (run.0 + 1, run.1) };
                    if run.0 > best.0 {
                        best = run;
                    }
                }
            }
            let v = best.0 as f64 * tick_s;
            let detail = if best.0 == 0 {
                format!("a path from {a} to {b} at every tick of the window")
            } else if v > max_s {
                format!(
                    "no path from {a} to {b} for {v} s inside the window (from {} s): maxS {max_s} cannot hold",
                    best.1
                )
            } else {
                format!("no path from {a} to {b} for {v} s at most (from {} s)", best.1)
            };
            Judged::of(req, v, detail)
        }
        Requirement::Convergence { .. } | Requirement::Stretch { .. } => judge_routing_model(req),
    }
}

/// What the model's paths allow for `o` over the window, before anything runs; `run_to` is
/// where the run ends (s), for a window left open.
pub fn predict(plan: &Plan, o: &ObjectiveDef, ticks: &[(f64, ModelTick)], run_to: f64) -> Verdict {
    let (from, to) = window_of(o, Span { from: 0.0, to: run_to });
    let flow = o.flow.map(|f| &plan.flows[f]);
    let inside: Vec<(f64, ModelTick)> = ticks
        .iter()
        .copied()
        .filter(|&(t, _)| t >= from && t < to)
        .filter(|&(t, _)| {
            flow.is_none_or(|flow| {
                orbitnet_model::SimTime::from_secs_f64(t).is_some_and(|t| flow.active_at(t))
            })
        })
        .collect();
    Verdict {
        objective: o.name.clone(),
        flow: flow_name(plan, o),
        requirement: o.requirement.to_string(),
        window: o.window.describe.clone(),
        measured: None,
        predicted: judge_model(plan, o, &inside, plan.tick.as_secs_f64()),
    }
}

/// The verdicts of the objectives whose flows end at a node `here` holds, on what arrived
/// by emulation time `to` of a run that began at 0. A flow whose sender runs in another
/// process gets its sent counts from the sequence numbers that arrived
/// (`FlowSeries::sent_from_sequence`), from the first tick a datagram came from.
pub fn judge_received(
    plan: &Plan,
    series: &[FlowSeries],
    here: &dyn Fn(orbitnet_model::NodeIdx) -> bool,
    to: f64,
) -> Vec<Verdict> {
    let tick_s = plan.tick.as_secs_f64();
    plan.objectives
        .iter()
        .filter_map(|o| Some((o, o.flow?)))
        .filter(|&(_, f)| here(plan.flows[f].to))
        .map(|(o, f)| {
            let flow = &plan.flows[f];
            let mut s = series.get(f).cloned().unwrap_or_default();
            if !s.has_sender_counts()
                && let Some(&first) = s.tick_starts.keys().next()
            {
                let ticks: Vec<(i64, f64)> = (first..)
                    .map(|k| (k, plan.tick_time(k)))
                    .take_while(|(_, t)| t.as_secs_f64() < to)
                    .filter(|(_, t)| flow.active_at(*t))
                    .map(|(k, t)| (k, t.as_secs_f64()))
                    .collect();
                s.sent_from_sequence(&ticks, flow.packets_per_second * tick_s, tick_s);
            }
            evaluate(plan, o, &s, Span { from: 0.0, to })
        })
        .collect()
}

/// 0 when every objective passed, 1 when one failed, 2 when none failed but one could not
/// be judged.
pub fn exit_status(verdicts: &[Verdict]) -> i32 {
    match verdicts.iter().map(Verdict::outcome).max() {
        None | Some(Outcome::Pass) => 0,
        Some(Outcome::Fail) => 1,
        Some(Outcome::Inconclusive) => 2,
    }
}

/// The verdicts as a table for a terminal.
pub fn table(verdicts: &[Verdict]) -> String {
    let show = |j: &Judged, req: &str| match j.value {
        Some(v) => format_value(req, v),
        None => "-".into(),
    };
    let mut rows =
        vec![["OBJECTIVE", "REQUIREMENT", "WINDOW", "MEASURED", "MODEL", "RESULT"].map(String::from)];
    for v in verdicts {
        rows.push([
            v.objective.clone(),
            v.requirement.clone(),
            v.window.clone(),
            v.measured.as_ref().map_or("-".into(), |m| show(m, &v.requirement)),
            format!("{} ({})", show(&v.predicted, &v.requirement), v.predicted.outcome),
            v.outcome().to_string(),
        ]);
    }
    let widths: Vec<usize> =
        (0..6).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for v in verdicts.iter().filter(|v| v.outcome() != Outcome::Pass) {
        let j = v.measured.as_ref().unwrap_or(&v.predicted);
        out.push_str(&format!("{} {}: {}\n", v.outcome(), v.objective, j.detail));
    }
    out
}

/// A value with the unit its requirement is stated in.
fn format_value(requirement: &str, v: f64) -> String {
    if requirement.ends_with(" ms") {
        format!("{v:.2} ms")
    } else if requirement.ends_with(" %") {
        format!("{v:.2} %")
    } else {
        format!("{v:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Arrival, Receiver};

    const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

    /// tiny.yaml with one 100-datagram/s flow, faults and the objectives given.
    fn plan(objectives: &str) -> Plan {
        let yaml = format!(
            "{TINY}  duration: 100s\n  faults:\n  - {{name: cut, kind: nodeDown, node: ring-0-0, at: 20s, duration: 10s}}\n  - {{kind: stationDown, node: bravo, at: 50s, duration: 5s}}\n  traffic:\n  - {{name: tracks, from: alpha, to: bravo, packetsPerSecond: 100}}\n  objectives:\n{objectives}"
        );
        orbitnet_model::compile_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    /// 100 datagrams a second for `secs`, delivered after `delay_ms(t)` unless `lost(t)`.
    fn series(secs: u32, delay_ms: impl Fn(f64) -> f64, lost: impl Fn(f64) -> bool) -> FlowSeries {
        let mut s = FlowSeries::default();
        let mut r = Receiver::default();
        for seq in 0..u64::from(secs) * 100 {
            let t = seq as f64 / 100.0;
            let k = t.floor() as i64;
            s.sent(k, t, k as f64);
            s.tick(k, k as f64).model =
                ModelTick { path: true, delay_ms: Some(40.0), hops: 3, delivery: 1.0, jitter_ms: 0.0 };
            if !lost(t) {
                let delay_ns = (delay_ms(t) * 1e6) as i64;
                r.arrived(
                    &mut s,
                    Arrival { seq, tick_first_seq: k as u64 * 100, k, tick_t: k as f64, sent_t: t, delay_ns },
                );
            }
        }
        s
    }

    const RUN: Span = Span { from: 0.0, to: 100.0 };

    fn verdict(objective: &str, s: &FlowSeries, run: Span) -> Verdict {
        let p = plan(&format!("  - {objective}\n"));
        evaluate(&p, &p.objectives[0], s, run)
    }

    fn measured(v: &Verdict) -> (Option<f64>, Outcome) {
        let m = v.measured.as_ref().unwrap();
        (m.value, m.outcome)
    }

    #[test]
    fn latency_percentiles_over_the_whole_run() {
        // 1 % of the datagrams at 90 ms, the rest at 40.
        let s = series(
            100,
            |t| if ((t * 100.0).round() as u64).is_multiple_of(100) { 90.0 } else { 40.0 },
            |_| false,
        );
        let v = verdict("{flow: tracks, kind: latency, percentile: 99, maxMs: 50}", &s, RUN);
        assert_eq!(measured(&v), (Some(40.005), Outcome::Pass), "{v:?}");
        let v = verdict("{flow: tracks, kind: latency, percentile: 100, maxMs: 50}", &s, RUN);
        assert_eq!(measured(&v), (Some(90.005), Outcome::Fail), "{v:?}");
        assert_eq!(v.requirement, "max one-way delay <= 50 ms");
        assert_eq!(v.objective, "tracks-latency");
    }

    #[test]
    fn a_window_during_a_fault_sees_only_the_fault() {
        // Slow during fault 0 (20-30 s) only.
        let s = series(100, |t| if (20.0..30.0).contains(&t) { 80.0 } else { 40.0 }, |_| false);
        for window in ["{during: cut}", "{during: 0}", "{from: 20s, to: 30s}"] {
            let v = verdict(
                &format!("{{flow: tracks, kind: latency, percentile: 50, maxMs: 50, window: {window}}}"),
                &s,
                RUN,
            );
            assert_eq!(measured(&v), (Some(80.005), Outcome::Fail), "{window}: {v:?}");
        }
        let v = verdict(
            "{flow: tracks, kind: latency, percentile: 100, maxMs: 50, window: {after: cut, settle: 1s}}",
            &s,
            RUN,
        );
        assert_eq!(measured(&v), (Some(40.005), Outcome::Pass), "{v:?}");
        assert_eq!(v.window, "1s after fault 0 (cut) ends");
    }

    #[test]
    fn delivery_counts_what_was_sent_in_the_window() {
        // Everything sent from 50 to 55 s lost (fault 1): 500 of 10,000.
        let s = series(100, |_| 40.0, |t| (50.0..55.0).contains(&t));
        let v = verdict("{flow: tracks, kind: delivery, minPct: 95}", &s, RUN);
        assert_eq!(measured(&v), (Some(95.0), Outcome::Pass), "{v:?}");
        let v = verdict("{flow: tracks, kind: delivery, minPct: 1, window: {during: 1}}", &s, RUN);
        assert_eq!(measured(&v), (Some(0.0), Outcome::Fail), "{v:?}");
        assert!(v.measured.unwrap().detail.contains("0 of 500"));
    }

    #[test]
    fn outages_are_clipped_to_the_window() {
        let s = series(100, |_| 40.0, |t| (50.0..55.0).contains(&t));
        let v = verdict("{flow: tracks, kind: outage, maxS: 2}", &s, RUN);
        // From the last datagram delivered (49.99 s) to the next (55.00 s).
        let (value, outcome) = measured(&v);
        assert!((value.unwrap() - 5.01).abs() < 1e-6 && outcome == Outcome::Fail, "{v:?}");
        let v = verdict("{flow: tracks, kind: outage, maxS: 2, window: {from: 53s, to: 60s}}", &s, RUN);
        let (value, _) = measured(&v);
        assert!((value.unwrap() - 2.0).abs() < 1e-6, "{v:?}");
        let v = verdict("{flow: tracks, kind: outage, maxS: 0.05, window: {from: 60s}}", &s, RUN);
        let (value, outcome) = measured(&v);
        assert!((value.unwrap() - 0.01).abs() < 1e-6 && outcome == Outcome::Pass, "{v:?}");
    }

    #[test]
    fn all_lost_fails_latency_and_outage_and_leaves_jitter_undecided() {
        let s = series(100, |_| 40.0, |_| true);
        let v = verdict("{flow: tracks, kind: latency, maxMs: 50}", &s, RUN);
        assert_eq!(measured(&v), (None, Outcome::Fail));
        let v = verdict("{flow: tracks, kind: outage, maxS: 1}", &s, RUN);
        let (value, outcome) = measured(&v);
        assert!(value.unwrap() > 99.0 && outcome == Outcome::Fail, "{v:?}");
        let v = verdict("{flow: tracks, kind: jitter, maxMs: 1}", &s, RUN);
        assert_eq!(measured(&v), (None, Outcome::Inconclusive));
    }

    #[test]
    fn jitter_is_the_mean_delay_difference_of_consecutive_datagrams() {
        let s = series(
            100,
            |t| if ((t * 100.0).round() as u64).is_multiple_of(2) { 40.0 } else { 42.0 },
            |_| false,
        );
        let v = verdict("{flow: tracks, kind: jitter, maxMs: 1}", &s, RUN);
        let (value, outcome) = measured(&v);
        assert!((value.unwrap() - 2.0).abs() < 1e-3 && outcome == Outcome::Fail, "{v:?}");
    }

    #[test]
    fn reordering_and_duplicates_do_not_count_as_deliveries() {
        let mut s = FlowSeries::default();
        let mut r = Receiver::default();
        for seq in 0..4 {
            s.sent(0, seq as f64 * 0.01, 0.0);
        }
        for seq in [0, 2, 1, 2, 3, 3] {
            r.arrived(
                &mut s,
                Arrival {
                    seq,
                    tick_first_seq: 0,
                    k: 0,
                    tick_t: 0.0,
                    sent_t: seq as f64 * 0.01,
                    delay_ns: 1_000_000,
                },
            );
        }
        let v = verdict("{flow: tracks, kind: delivery, minPct: 100, window: {to: 1s}}", &s, RUN);
        assert_eq!(measured(&v), (Some(100.0), Outcome::Pass), "{v:?}");
        assert_eq!((s.ticks[&0].duplicates, s.ticks[&0].reordered), (2, 1));
    }

    #[test]
    fn windows_the_run_did_not_cover_and_silent_flows_are_inconclusive() {
        let s = series(100, |_| 40.0, |_| false);
        let short = Span { from: 0.0, to: 40.0 };
        let v = verdict("{flow: tracks, kind: delivery, minPct: 99, window: {during: 1}}", &s, short);
        assert_eq!(measured(&v).1, Outcome::Inconclusive, "{v:?}");
        assert!(v.measured.unwrap().detail.contains("the run ended at 40 s"));
        let late = Span { from: 30.0, to: 100.0 };
        let v = verdict("{flow: tracks, kind: delivery, minPct: 99, window: {during: cut}}", &s, late);
        assert_eq!(measured(&v).1, Outcome::Inconclusive, "{v:?}");
        let v = verdict("{flow: tracks, kind: delivery, minPct: 99}", &FlowSeries::default(), RUN);
        assert_eq!(measured(&v).1, Outcome::Inconclusive, "{v:?}");
        // An empty window: nothing sent in it.
        let v =
            verdict("{flow: tracks, kind: delivery, minPct: 99, window: {from: 99.5s, to: 99.9s}}", &s, RUN);
        assert_eq!(measured(&v).1, Outcome::Inconclusive, "{v:?}");
    }

    #[test]
    fn the_model_predicts_outages_from_ticks_without_a_path() {
        let p = plan("  - {flow: tracks, kind: outage, maxS: 2}\n");
        let ticks: Vec<(f64, ModelTick)> = (0..100)
            .map(|k| {
                let path = !(50..55).contains(&k);
                (
                    k as f64,
                    ModelTick {
                        path,
                        delay_ms: path.then_some(40.0),
                        hops: 3,
                        delivery: f64::from(u8::from(path)),
                        jitter_ms: 0.0,
                    },
                )
            })
            .collect();
        let v = predict(&p, &p.objectives[0], &ticks, 100.0);
        assert_eq!(v.predicted.value, Some(5.0));
        assert_eq!(v.predicted.outcome, Outcome::Fail);
        assert_eq!(
            v.predicted.detail,
            "no path from alpha to bravo for 5 s inside the window (from 50 s): maxS 2 cannot hold"
        );
        assert_eq!(v.outcome(), Outcome::Fail);
    }

    #[test]
    fn a_receiver_alone_judges_its_flows_from_sequence_numbers() {
        // What a receiver on another host than the sender sees: no sent counts.
        let full = series(100, |_| 40.0, |t| (50.0..55.0).contains(&t));
        let mut received = full.clone();
        for t in received.ticks.values_mut() {
            t.sent = 0;
        }
        let p = plan(
            "  - {flow: tracks, kind: delivery, minPct: 99}\n  - {flow: tracks, kind: outage, maxS: 1}\n",
        );
        let bravo = p.node_index("bravo").unwrap();
        let v = judge_received(&p, &[received], &|n| n == bravo, 100.0);
        assert_eq!(v.len(), 2);
        assert_eq!(measured(&v[0]), (Some(95.0), Outcome::Fail), "{:?}", v[0]);
        let (outage, _) = measured(&v[1]);
        assert!((outage.unwrap() - 5.01).abs() < 1e-6, "{:?}", v[1]);
        assert!(judge_received(&p, &[full], &|n| n != bravo, 100.0).is_empty(), "not received here");
    }

    fn event(t: f64, kind: &str, forwarded_s: Option<f64>, settled_stretch: Option<f64>) -> RoutingEvent {
        RoutingEvent { t, kind: kind.into(), forwarded_s, watched_s: 9.0, settled_stretch }
    }

    #[test]
    fn routing_objectives_judge_every_change_in_their_window_but_the_start() {
        let p = plan(
            "  - {kind: convergence, maxS: 5, window: {during: cut}}\n  - {kind: stretch, maxStretch: 1.2}\n",
        );
        assert_eq!(p.objectives[0].name, "convergence");
        assert_eq!(p.objectives[0].flow, None);
        let events = [
            event(0.0, "start", Some(30.0), Some(1.0)),
            event(20.0, "faultBegan", Some(3.3), Some(1.1)),
            event(25.0, "handover", Some(4.5), None),
            event(50.0, "faultBegan", Some(7.0), Some(1.5)),
        ];
        let v = evaluate_routing(&p, &p.objectives[0], &events, RUN);
        assert_eq!(
            measured(&v),
            (Some(4.5), Outcome::Pass),
            "the start and the change at 50 s are outside: {v:?}"
        );
        assert_eq!((v.flow.as_str(), v.predicted.value), ("routing", Some(0.0)));
        let v = evaluate_routing(&p, &p.objectives[1], &events, RUN);
        assert_eq!(measured(&v), (Some(1.5), Outcome::Fail), "{v:?}");
        assert!(v.requirement.contains("settled stretch <= 1.2x"), "{v:?}");
        // A change never forwarded again fails, with how long it was watched.
        let never = [event(21.0, "link", None, None)];
        let v = evaluate_routing(&p, &p.objectives[0], &never, RUN);
        assert_eq!(measured(&v), (Some(9.0), Outcome::Fail), "{v:?}");
        // Unless its watch ended before the bound (the run's end or the next change came
        // first): then nothing shows it would not have been forwarded in time.
        let cut_short = [RoutingEvent { watched_s: 3.0, ..never[0].clone() }];
        let v = evaluate_routing(&p, &p.objectives[0], &cut_short, RUN);
        assert_eq!(measured(&v), (None, Outcome::Inconclusive), "{v:?}");
        assert!(v.measured.unwrap().detail.contains("watched for 3.000 s, less than the bound"));
        // A failure elsewhere still fails the objective.
        let v = evaluate_routing(
            &p,
            &p.objectives[0],
            &[cut_short[0].clone(), event(22.0, "link", None, None)],
            RUN,
        );
        assert_eq!(measured(&v), (Some(9.0), Outcome::Fail), "{v:?}");
        // Nothing changed: convergence passes at 0 s; stretch cannot be judged.
        assert_eq!(measured(&evaluate_routing(&p, &p.objectives[0], &[], RUN)), (Some(0.0), Outcome::Pass));
        assert_eq!(measured(&evaluate_routing(&p, &p.objectives[1], &[], RUN)).1, Outcome::Inconclusive);
        let short = Span { from: 0.0, to: 22.0 };
        assert_eq!(
            measured(&evaluate_routing(&p, &p.objectives[0], &events, short)).1,
            Outcome::Inconclusive
        );
    }

    #[test]
    fn exit_status_is_0_pass_1_fail_2_inconclusive() {
        let s = series(100, |_| 40.0, |_| false);
        let pass = verdict("{flow: tracks, kind: delivery, minPct: 99}", &s, RUN);
        let fail = verdict("{flow: tracks, kind: latency, percentile: 50, maxMs: 10}", &s, RUN);
        let undecided =
            verdict("{flow: tracks, kind: delivery, minPct: 99}", &s, Span { from: 0.0, to: 100.0 });
        let undecided =
            Verdict { measured: Some(Judged::without(Outcome::Inconclusive, "x".into())), ..undecided };
        assert_eq!(exit_status(&[]), 0);
        assert_eq!(exit_status(std::slice::from_ref(&pass)), 0);
        assert_eq!(exit_status(&[pass.clone(), undecided.clone()]), 2);
        assert_eq!(exit_status(&[pass.clone(), undecided.clone(), fail.clone()]), 1);
        let t = table(&[pass, fail]);
        assert!(t.starts_with("OBJECTIVE"), "{t}");
        assert!(t.contains("FAIL tracks-latency: 40.01 ms over 10000 of 10000 datagrams delivered"), "{t}");
    }
}
