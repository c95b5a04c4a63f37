//! The convergence part of `orbitnet report`: each change of the graph in a run, how long
//! until every ground pair was forwarded again and over shortest paths, and what it cost
//! the flows; by kind of event; a chart; and several runs of one scenario side by side
//! (`orbitnet report a.jsonl b.jsonl`), event by event.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use orbitnet_routing::convergence::Convergence;

use crate::stats::quantile_of;
use crate::svg::{Series, line_chart};
use crate::telemetry::Record;

/// Rows of the per-event table shown for one run (all of them are in the telemetry).
const ROWS: usize = 30;

/// One event with what the flows lost while it was watched.
struct Event<'a> {
    c: &'a Convergence,
    sent: u64,
    lost: u64,
}

/// The run's events, with the flows' datagrams sent and lost in the ticks from the event
/// to the end of its watch (real seconds times the run's time scale; at least its tick).
fn events(records: &[Record]) -> Vec<Event<'_>> {
    let scale = records
        .iter()
        .find_map(|r| if let Record::Start { time_scale, .. } = r { Some(*time_scale) } else { None })
        .unwrap_or(1.0);
    let flows: Vec<&crate::telemetry::FlowRecord> =
        records.iter().filter_map(|r| if let Record::Flow(f) = r { Some(f) } else { None }).collect();
    records
        .iter()
        .filter_map(|r| if let Record::Convergence(c) = r { Some(c) } else { None })
        .map(|c| {
            let end = c.t + c.watched_s * scale;
            let during = flows.iter().filter(|f| f.t >= c.t && (f.t < end || f.t == c.t));
            let (sent, lost) =
                during.fold((0, 0), |(s, l), f| (s + f.sent, l + f.sent.saturating_sub(f.received)));
            Event { c, sent, lost }
        })
        .collect()
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.3}"))
}

/// One kind of event: how many, the time until forwarded (median, p90, max), how many never
/// were, the worst stretch. `orbitnet run`'s last line and the report share it.
fn kind_line(kind: &str, of: &[&Convergence]) -> String {
    let times: Vec<f64> = of.iter().filter_map(|c| c.forwarded_s).collect();
    let never = of.len() - times.len();
    let stretch = of.iter().map(|c| c.stretch).fold(1.0, f64::max);
    let spread = if times.is_empty() {
        "never forwarded".into()
    } else {
        format!(
            "forwarded after {:.3} s median, {:.3} s p90, {:.3} s max{}",
            quantile_of(&times, 0.5),
            quantile_of(&times, 0.9),
            quantile_of(&times, 1.0),
            if never > 0 { format!(", {never} not by the end of their watch") } else { String::new() }
        )
    };
    format!("{kind} x{}: {spread}; stretch up to {stretch:.3}", of.len())
}

/// `kind_line` for each kind of event among `all`, in order of kind.
pub(crate) fn kind_lines<'a>(all: impl Iterator<Item = &'a Convergence> + Clone) -> Vec<(&'a str, String)> {
    let kinds: BTreeSet<&str> = all.clone().map(|c| c.kind.as_str()).collect();
    kinds
        .into_iter()
        .map(|kind| {
            let of: Vec<&Convergence> = all.clone().filter(|c| c.kind == kind).collect();
            (kind, kind_line(kind, &of))
        })
        .collect()
}

/// Per kind, `kind_line` and the datagrams the flows lost.
fn by_kind(events: &[Event<'_>]) -> Vec<String> {
    kind_lines(events.iter().map(|e| e.c))
        .into_iter()
        .map(|(kind, line)| {
            let lost: u64 = events.iter().filter(|e| e.c.kind == kind).map(|e| e.lost).sum();
            format!("{line}; {lost} datagrams lost")
        })
        .collect()
}

/// The run's convergence: a line per kind of event, then a row per event.
pub fn section(records: &[Record], text: &mut String) {
    let events = events(records);
    if events.is_empty() {
        return;
    }
    let _ = writeln!(
        text,
        "convergence after each change of the graph (real seconds after the apply; lost = datagrams the flows lost from the event to the end of its watch):"
    );
    for line in by_kind(&events) {
        let _ = writeln!(text, "  {line}");
    }
    let _ = writeln!(
        text,
        "  {:>8}  {:<11} {:<10} {:>9} {:>9} {:>7} {:>7} {:>5} {:>6} {:>12}",
        "T s", "KIND", "OUTCOME", "FORWARDED", "SHORTEST", "STRETCH", "BROKEN", "LOOPS", "CHURN", "LOST"
    );
    for e in events.iter().take(ROWS) {
        let c = e.c;
        let _ = writeln!(
            text,
            "  {:>8.1}  {:<11} {:<10} {:>9} {:>9} {:>7.3} {:>7} {:>5} {:>6} {:>12}",
            c.t,
            c.kind,
            format!("{:?}", c.outcome).to_lowercase(),
            secs(c.forwarded_s),
            secs(c.shortest_s),
            c.stretch,
            format!("{}/{}", c.broken, c.pairs),
            c.loops,
            c.churn,
            format!("{}/{}", e.lost, e.sent)
        );
    }
    if events.len() > ROWS {
        let _ = writeln!(text, "  ... {} more events in the telemetry", events.len() - ROWS);
    }
}

/// Time until every pair was forwarded, per event, a series per kind.
pub fn chart(records: &[Record]) -> Option<String> {
    let events = events(records);
    if events.is_empty() {
        return None;
    }
    let mut kinds: BTreeMap<&str, Vec<Event<'_>>> = BTreeMap::new();
    for e in events {
        kinds.entry(&e.c.kind).or_default().push(e);
    }
    let series: Vec<Series> = kinds.iter().flat_map(|(k, events)| forwarded_series(k, events)).collect();
    Some(line_chart(
        "Convergence: time until every ground pair is forwarded again (the start left out)",
        "emulation time of the event (s)",
        "real s after the apply (never: s watched)",
        &series,
    ))
}

/// The time until every pair was forwarded, per change of the graph (the start, a
/// bring-up, left out); changes never forwarded again as a second series at the time they
/// were watched, so that they show.
fn forwarded_series(label: &str, events: &[Event<'_>]) -> Vec<Series> {
    let changes = || events.iter().filter(|e| e.c.kind != "start");
    let mut out =
        vec![Series::dots(label, changes().filter_map(|e| Some((e.c.t, Some(e.c.forwarded_s?)))).collect())];
    let never: Vec<(f64, Option<f64>)> =
        changes().filter(|e| e.c.forwarded_s.is_none()).map(|e| (e.c.t, Some(e.c.watched_s))).collect();
    if !never.is_empty() {
        out.push(Series::dots(format!("{label}: never"), never));
    }
    out
}

/// A run to compare: its label and records.
pub struct Run {
    pub label: String,
    pub records: Vec<Record>,
}

/// Several runs of one scenario side by side: per kind, then per event (matched by tick),
/// and a chart with a series per run.
pub fn compare(runs: &[Run]) -> (String, String) {
    let mut text = String::new();
    let all: Vec<Vec<Event<'_>>> = runs.iter().map(|r| events(&r.records)).collect();
    let names: BTreeSet<String> = runs
        .iter()
        .filter_map(|r| {
            r.records.iter().find_map(|x| {
                if let Record::Start { constellation, .. } = x { Some(constellation.clone()) } else { None }
            })
        })
        .collect();
    if names.len() > 1 {
        let _ = writeln!(
            text,
            "note: these runs are of different constellations ({names:?}); events are matched by tick"
        );
    }
    for (run, events) in runs.iter().zip(&all) {
        let _ = writeln!(text, "{}:", run.label);
        if events.is_empty() {
            let _ = writeln!(text, "  no convergence records (run with --convergence-every above 0)");
        }
        for line in by_kind(events) {
            let _ = writeln!(text, "  {line}");
        }
    }
    let common: BTreeSet<i64> = all
        .iter()
        .map(|e| e.iter().map(|e| e.c.k).collect::<BTreeSet<i64>>())
        .reduce(|a, b| a.intersection(&b).copied().collect())
        .unwrap_or_default();
    let _ = writeln!(
        text,
        "event by event ({} in every run); per run: forwarded s / lost datagrams / stretch / churn",
        common.len()
    );
    let mut header = format!("  {:>8}  {:<11}", "T s", "KIND");
    for run in runs {
        let _ = write!(header, " | {:<28}", run.label.chars().take(28).collect::<String>());
    }
    let _ = writeln!(text, "{header}");
    for &k in &common {
        let row: Vec<&Event<'_>> = all.iter().filter_map(|e| e.iter().find(|e| e.c.k == k)).collect();
        let mut line = format!("  {:>8.1}  {:<11}", row[0].c.t, row[0].c.kind);
        for e in &row {
            let cell = format!("{} / {} / {:.3} / {}", secs(e.c.forwarded_s), e.lost, e.c.stretch, e.c.churn);
            let _ = write!(line, " | {cell:<28}");
        }
        let _ = writeln!(text, "{line}");
    }
    let series: Vec<Series> =
        runs.iter().zip(&all).flat_map(|(run, events)| forwarded_series(&run.label, events)).collect();
    let svg = line_chart(
        "Convergence side by side: time until every ground pair is forwarded again (the start left out)",
        "emulation time of the event (s)",
        "real s after the apply (never: s watched)",
        &series,
    );
    (text, svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::FlowRecord;
    use orbitnet_routing::convergence::Outcome;

    fn convergence(k: i64, kind: &str, forwarded_s: Option<f64>, watched_s: f64) -> Record {
        Record::Convergence(Convergence {
            k,
            t: k as f64,
            kind: kind.into(),
            what: String::new(),
            outcome: if forwarded_s.is_some() { Outcome::Shortest } else { Outcome::Superseded },
            forwarded_s,
            shortest_s: forwarded_s,
            stretch: 1.0,
            pairs: 2,
            broken: 2,
            loops: 0,
            blackholes: 2,
            churn: 4,
            snapshots: 3,
            watched_s,
            unforwarded: None,
        })
    }

    fn flow(t: f64, received: u64) -> Record {
        Record::Flow(FlowRecord { t, flow: "f".into(), sent: 100, received, ..FlowRecord::default() })
    }

    fn run(ospf: bool) -> Vec<Record> {
        let mut r = vec![Record::Start {
            time: String::new(),
            constellation: "tiny".into(),
            file: String::new(),
            nodes: 10,
            time_scale: 1.0,
            tick: "1s".into(),
            routing: String::new(),
        }];
        r.push(convergence(0, "start", Some(if ospf { 17.0 } else { 0.002 }), 17.0));
        r.push(convergence(
            45,
            "faultBegan",
            Some(if ospf { 3.3 } else { 0.004 }),
            if ospf { 3.3 } else { 0.004 },
        ));
        r.push(convergence(55, "faultEnded", None, 9.0));
        for k in 40..60 {
            let t = f64::from(k);
            let lost = ospf && (45..49).contains(&k);
            r.push(flow(t, if lost { 0 } else { 100 }));
        }
        r
    }

    #[test]
    fn a_run_shows_each_event_with_what_the_flows_lost() {
        let records = run(true);
        let mut text = String::new();
        section(&records, &mut text);
        assert!(text.contains("faultBegan x1: forwarded after 3.300 s median"), "{text}");
        // Ticks 45..48 lost everything: 4 ticks within the 3.3 s watch.
        assert!(text.contains("400/400"), "the watch from 45 s for 3.3 s covers ticks 45-48: {text}");
        assert!(text.contains("faultEnded x1: never forwarded"), "{text}");
        assert!(chart(&records).unwrap().contains("faultBegan"));
        assert!(chart(&records[..1]).is_none());
    }

    #[test]
    fn runs_compare_event_by_event() {
        let runs = [
            Run { label: "central".into(), records: run(false) },
            Run { label: "ospf".into(), records: run(true) },
        ];
        let (text, svg) = compare(&runs);
        assert!(text.contains("event by event (3 in every run)"), "{text}");
        let row = text.lines().find(|l| l.contains("faultBegan") && l.contains('|')).unwrap();
        assert!(row.contains("0.004 / 0 / 1.000 / 4") && row.contains("3.300 / 400 / 1.000 / 4"), "{row}");
        assert!(svg.contains(">central<") && svg.contains(">ospf<"));
    }
}
