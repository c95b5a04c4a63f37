//! `orbitnet report FILE.jsonl`: what a run did, in a few lines, and two plots (SVG):
//! links up over time, and the one-way delay of the followed paths over time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::stats::quantile_of;
use crate::svg::{Series, line_chart};
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
            Record::Start { constellation, file, nodes, time_scale, tick, time } => {
                let _ = writeln!(
                    text,
                    "run of {constellation:?} ({file}) started {time}: {nodes} nodes, tick {tick}, time scale x{time_scale}"
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
    let series = |name: &str, f: fn(&telemetry::TickRecord) -> usize| Series {
        name: name.into(),
        points: ticks.iter().map(|t| (t.t, Some(f(t) as f64))).collect(),
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
        &by_path.into_iter().map(|(name, points)| Series { name, points }).collect::<Vec<_>>(),
    );
    let plots = vec![write(format!("{stem}-links.svg"), links)?, write(format!("{stem}-paths.svg"), paths)?];
    Ok(Report { text, plots })
}
