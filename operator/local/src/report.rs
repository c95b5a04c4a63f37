//! `orbitnet report FILE.jsonl`: what a run did, in a few lines, and plots (SVG): links up
//! over time, the one-way delay of the followed paths over time, and for each flow its
//! measured one-way delay beside the model's, with the faults' windows shaded and the
//! outages marked; and the objectives' verdicts.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::stats::quantile_of;
use crate::svg::{Band, Series, chart, line_chart};
use crate::telemetry::{self, Record};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} holds no telemetry records{}", if .bad.is_empty() { String::new() } else { format!(" (lines {:?} are not records)", .bad) })]
    Empty { path: String, bad: Vec<usize> },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

pub struct Report {
    pub text: String,
    pub plots: Vec<PathBuf>,
}

/// Several runs of one scenario side by side (`orbitnet report a.jsonl b.jsonl`): their
/// convergence per kind of event and event by event, and a chart `<a>-vs-<b>-convergence.svg`
/// in `out_dir`.
pub fn compare(paths: &[PathBuf], out_dir: &Path) -> Result<Report, ReportError> {
    let (mut runs, mut stems) = (Vec::with_capacity(paths.len()), Vec::with_capacity(paths.len()));
    for path in paths {
        let (records, bad) = telemetry::read(path)
            .map_err(|source| ReportError::Read { path: path.display().to_string(), source })?;
        if records.is_empty() {
            return Err(ReportError::Empty { path: path.display().to_string(), bad });
        }
        let stem = path.file_stem().map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
        let routing = records.iter().find_map(|r| match r {
            Record::Start { routing, .. } if !routing.is_empty() => Some(routing.clone()),
            _ => None,
        });
        let label = match routing {
            Some(routing) => format!("{stem} ({routing})"),
            None => stem.clone(),
        };
        stems.push(stem);
        runs.push(crate::converge::Run { label, records });
    }
    let (text, svg) = crate::converge::compare(&runs);
    let file = out_dir.join(format!("{}-convergence.svg", stems.join("-vs-")));
    std::fs::create_dir_all(out_dir)
        .and_then(|_| std::fs::write(&file, svg))
        .map_err(|source| ReportError::Write { path: file.display().to_string(), source })?;
    Ok(Report { text, plots: vec![file] })
}

/// Summarises `path` and writes `<stem>-links.svg` and `<stem>-paths.svg` into `out_dir`.
pub fn report(path: &Path, out_dir: &Path) -> Result<Report, ReportError> {
    let (records, bad) = telemetry::read(path)
        .map_err(|source| ReportError::Read { path: path.display().to_string(), source })?;
    if records.is_empty() {
        return Err(ReportError::Empty { path: path.display().to_string(), bad });
    }
    let ticks: Vec<&telemetry::TickRecord> =
        records.iter().filter_map(|r| if let Record::Tick(t) = r { Some(t) } else { None }).collect();
    let mut text = String::new();
    for r in &records {
        match r {
            Record::Start { constellation, file, nodes, time_scale, tick, time, routing } => {
                let _ = writeln!(
                    text,
                    "run of {constellation:?} ({file}) started {time}: {nodes} nodes, tick {tick}, time scale x{time_scale}{}",
                    if routing.is_empty() { String::new() } else { format!(", routing {routing}") }
                );
            }
            Record::Up {
                build_ms,
                namespaces_ms,
                links_ms,
                first_apply_ms,
                first_apply_ops,
                links,
                processes,
                memory_kib,
                namespaces,
                ..
            } => {
                let per_node = |k: u64| k as f64 / (*namespaces).max(1) as f64;
                let mem = memory_kib
                    .map(|k| format!(", {:.0} KiB of memory per node", per_node(k)))
                    .unwrap_or_default();
                let _ = writeln!(
                    text,
                    "up in {:.1} s (namespaces {:.1} s, links {:.1} s, first apply {:.1} s for {first_apply_ops} operations): {namespaces} nodes, {links} links, {processes} node programs{mem}",
                    build_ms / 1e3,
                    namespaces_ms / 1e3,
                    links_ms / 1e3,
                    first_apply_ms / 1e3
                );
            }
            Record::Stop { t, reason, ticks: n, skipped } => {
                let _ = writeln!(text, "stopped at t = {t} s ({reason}) after {n} ticks, {skipped} skipped");
            }
            _ => {}
        }
    }
    if let (Some(first), Some(last)) = (ticks.first(), ticks.last()) {
        let ups: Vec<f64> = ticks.iter().map(|t| t.links_up as f64).collect();
        let apply: Vec<f64> = ticks.iter().map(|t| t.apply_ms).collect();
        let late: Vec<f64> = ticks.iter().map(|t| t.late_ms).collect();
        let _ = writeln!(text, "{} ticks from t = {} to {} s", ticks.len(), first.t, last.t);
        let _ = writeln!(
            text,
            "links up: min {} mean {:.1} max {}",
            ups.iter().copied().fold(f64::MAX, f64::min),
            ups.iter().sum::<f64>() / ups.len() as f64,
            ups.iter().copied().fold(f64::MIN, f64::max)
        );
        let _ = writeln!(
            text,
            "apply per tick: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; late p99 {:.2} ms; {} kernel operations",
            quantile_of(&apply, 0.5),
            quantile_of(&apply, 0.99),
            quantile_of(&apply, 1.0),
            quantile_of(&late, 0.99),
            ticks.iter().map(|t| t.ops).sum::<usize>()
        );
    }
    let count = |f: fn(&Record) -> bool| records.iter().filter(|r| f(r)).count();
    let _ = writeln!(text, "handovers: {}", count(|r| matches!(r, Record::Handover { .. })));
    for r in &records {
        match r {
            Record::FaultBegan { t, index, description, .. } => {
                let _ = writeln!(text, "fault [{index}] began at t = {t} s: {description}");
            }
            Record::FaultEnded { t, index, .. } => {
                let _ = writeln!(text, "fault [{index}] ended at t = {t} s");
            }
            Record::Edit { t, accepted, message } => {
                let _ = writeln!(
                    text,
                    "t = {t} s: {} {message}",
                    if *accepted { "edit:" } else { "rejected edit:" }
                );
            }
            _ => {}
        }
    }
    let errors: Vec<&Record> = records.iter().filter(|r| matches!(r, Record::Error { .. })).collect();
    let _ = writeln!(text, "errors: {}", errors.len());
    for e in errors.iter().take(5) {
        if let Record::Error { t, node, message, .. } = e {
            let _ = writeln!(text, "  t = {t} s, {node}: {message}");
        }
    }
    if !bad.is_empty() {
        let _ = writeln!(text, "lines that are not records: {bad:?}");
    }

    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    let write = |name: String, svg: String| -> Result<PathBuf, ReportError> {
        let file = out_dir.join(name);
        std::fs::create_dir_all(out_dir)
            .and_then(|_| std::fs::write(&file, svg))
            .map_err(|source| ReportError::Write { path: file.display().to_string(), source })?;
        Ok(file)
    };
    let series = |name: &str, f: fn(&telemetry::TickRecord) -> usize| {
        Series::line(name, ticks.iter().map(|t| (t.t, Some(f(t) as f64))).collect())
    };
    let links = line_chart(
        "Links up",
        "emulation time (s)",
        "links",
        &[
            series("all", |t| t.links_up),
            series("inter-satellite", |t| t.isl_up),
            series("ground", |t| t.gsl_up),
        ],
    );
    let mut by_path: BTreeMap<String, Vec<(f64, Option<f64>)>> = BTreeMap::new();
    for t in &ticks {
        for p in &t.paths {
            by_path.entry(format!("{} > {}", p.from, p.to)).or_default().push((t.t, p.delay_ms));
        }
    }
    let paths = line_chart(
        "One-way delay of the chosen paths",
        "emulation time (s)",
        "delay (ms)",
        &by_path.into_iter().map(|(name, points)| Series::line(name, points)).collect::<Vec<_>>(),
    );
    let mut plots =
        vec![write(format!("{stem}-links.svg"), links)?, write(format!("{stem}-paths.svg"), paths)?];
    mission(&records, &mut text);
    crate::converge::section(&records, &mut text);
    if let Some(svg) = crate::converge::chart(&records) {
        plots.push(write(format!("{stem}-convergence.svg"), svg)?);
    }
    let end = ticks.last().map_or(0.0, |t| t.t);
    for (flow, svg) in flow_charts(&records, end) {
        plots.push(write(format!("{stem}-flow-{flow}.svg"), svg)?);
    }
    Ok(Report { text, plots })
}

/// Each flow's delivery and fidelity, and the verdicts as a table.
fn mission(records: &[Record], text: &mut String) {
    let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in records {
        if let Record::Flow(f) = r {
            let e = totals.entry(&f.flow).or_default();
            e.0 += f.sent;
            e.1 += f.received;
        }
    }
    for (flow, (sent, received)) in &totals {
        let pct = if *sent > 0 { *received as f64 / *sent as f64 * 100.0 } else { 0.0 };
        let _ = writeln!(text, "flow {flow}: {received} of {sent} datagrams delivered ({pct:.2} %)");
    }
    for r in records {
        match r {
            Record::Calibration { per_traversal_ms, median_ms, datagrams } => {
                let _ = writeln!(
                    text,
                    "a shaped link traversal cost {per_traversal_ms:.3} ms (p90; median {median_ms:.3} ms, {datagrams} datagrams)"
                );
            }
            Record::Fidelity { flow, ticks, median_error_ms, p99_error_ms, flagged } => {
                let _ = writeln!(
                    text,
                    "flow {flow}: measured - model one-way delay over {ticks} ticks: median {median_error_ms:+.3} ms, p99 {p99_error_ms:+.3} ms; {flagged} ticks flagged (beyond hops x the traversal cost)"
                );
            }
            _ => {}
        }
    }
    let verdicts: Vec<orbitnet_mission::Verdict> = records
        .iter()
        .filter_map(|r| if let Record::Verdict(v) = r { Some(v.clone()) } else { None })
        .collect();
    if !verdicts.is_empty() {
        text.push_str(&orbitnet_mission::table(&verdicts));
    }
}

/// One chart per flow: the median and p99 one-way delay measured each tick (dots), the
/// model's path delay (a line, broken where there is no path), the faults' windows and
/// the ticks in which nothing sent arrived (outages).
fn flow_charts(records: &[Record], end: f64) -> Vec<(String, String)> {
    let mut faults: Vec<Band> = Vec::new();
    let mut open: BTreeMap<usize, (f64, String)> = BTreeMap::new();
    for r in records {
        match r {
            Record::FaultBegan { t, index, kind, .. } => {
                open.insert(*index, (*t, format!("[{index}] {kind}")));
            }
            Record::FaultEnded { t, index, .. } => {
                if let Some((from, label)) = open.remove(index) {
                    faults.push(Band { from, to: *t, label, colour: "#555555" });
                }
            }
            _ => {}
        }
    }
    faults.extend(open.into_values().map(|(from, label)| Band { from, to: end, label, colour: "#555555" }));
    let mut flows: BTreeMap<&str, Vec<&telemetry::FlowRecord>> = BTreeMap::new();
    for r in records {
        if let Record::Flow(f) = r {
            flows.entry(&f.flow).or_default().push(f);
        }
    }
    flows
        .into_iter()
        .map(|(name, ticks)| {
            let at = |f: fn(&telemetry::FlowRecord) -> Option<f64>| -> Vec<(f64, Option<f64>)> {
                ticks.iter().map(|t| (t.t, f(t))).collect()
            };
            let mut bands = faults.clone();
            let tick = ticks.windows(2).map(|w| w[1].t - w[0].t).fold(f64::MAX, f64::min);
            let tick = if tick.is_finite() && tick > 0.0 { tick } else { 1.0 };
            let mut outage: Option<(f64, f64)> = None;
            for t in &ticks {
                let lost = t.sent > 0 && t.received == 0;
                outage = match (outage, lost) {
                    (Some((from, _)), true) => Some((from, t.t + tick)),
                    (None, true) => Some((t.t, t.t + tick)),
                    (Some((from, to)), false) => {
                        bands.push(Band { from, to, label: "outage".into(), colour: "#d62728" });
                        None
                    }
                    (None, false) => None,
                };
            }
            if let Some((from, to)) = outage {
                bands.push(Band { from, to, label: "outage".into(), colour: "#d62728" });
            }
            // One label says what the red bands are; more would hide the data.
            let mut labelled = false;
            for b in bands.iter_mut().filter(|b| b.label == "outage") {
                if std::mem::replace(&mut labelled, true) {
                    b.label.clear();
                } else {
                    b.label = "outage: nothing delivered".into();
                }
            }
            let svg = chart(
                &format!("Flow {name}: one-way delay, measured and the model's"),
                "emulation time (s)",
                "one-way delay (ms)",
                &[
                    Series::line("model", at(|t| t.model_delay_ms)),
                    Series::dots("measured median", at(|t| t.delay_ms.map(|d| d[1]))),
                    Series::dots("measured p99", at(|t| t.delay_ms.map(|d| d[2]))),
                ],
                &bands,
            );
            (name.to_owned(), svg)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::{FlowRecord, TickRecord};

    #[test]
    fn a_run_with_flows_gets_a_chart_per_flow_with_faults_and_outages_and_the_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let mut records = vec![Record::FaultBegan {
            t: 3.0,
            index: 0,
            kind: "stationDown".into(),
            description: "stationDown of bravo".into(),
        }];
        for k in 0..10 {
            let t = f64::from(k);
            records.push(Record::Tick(TickRecord { t, ..TickRecord::default() }));
            let out = (3..6).contains(&k);
            records.push(Record::Flow(FlowRecord {
                t,
                flow: "tracks".into(),
                sent: 100,
                received: if out { 0 } else { 100 },
                delay_ms: (!out).then_some([40.0, 40.1, 40.5, 41.0]),
                model_delay_ms: (!out).then_some(40.0),
                hops: 3,
                ..FlowRecord::default()
            }));
            if k == 6 {
                records.push(Record::FaultEnded {
                    t,
                    index: 0,
                    kind: "stationDown".into(),
                    description: String::new(),
                });
            }
        }
        let plan = orbitnet_model::compile_yaml(&format!(
            "{}  traffic:\n  - {{name: tracks, from: alpha, to: bravo, packetsPerSecond: 100}}\n  objectives:\n  - {{flow: tracks, kind: outage, maxS: 1}}\n",
            include_str!("../../../scenarios/tiny.yaml")
        ))
        .unwrap();
        let series = orbitnet_mission::FlowSeries::default();
        let run = orbitnet_mission::Span { from: 0.0, to: 10.0 };
        records.push(Record::Verdict(orbitnet_mission::evaluate(&plan, &plan.objectives[0], &series, run)));
        let file = dir.path().join("run.jsonl");
        let lines: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
        std::fs::write(&file, lines.join("\n")).unwrap();

        let r = report(&file, dir.path()).unwrap();
        assert!(r.text.contains("flow tracks: 700 of 1000 datagrams delivered (70.00 %)"), "{}", r.text);
        assert!(r.text.contains("OBJECTIVE") && r.text.contains("tracks-outage"), "{}", r.text);
        let flow = r.plots.iter().find(|p| p.ends_with("run-flow-tracks.svg")).expect("the flow's chart");
        let svg = std::fs::read_to_string(flow).unwrap();
        assert!(svg.contains("[0] stationDown"), "the fault's window is shaded and named");
        assert_eq!(svg.matches(">outage: nothing delivered<").count(), 1, "one outage, ticks 3 to 5");
        assert!(svg.contains("measured median") && svg.contains("model"));
    }
}
