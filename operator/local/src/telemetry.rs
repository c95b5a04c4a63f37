//! Telemetry as JSON lines: one record per tick (counts, apply latency, chosen paths) and
//! one per event (handovers, faults beginning and ending, errors, edits). `orbitnet report`
//! reads them back.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Record {
    Start {
        time: String,
        constellation: String,
        file: String,
        nodes: usize,
        time_scale: f64,
        tick: String,
        /// The routing mode, e.g. `shortestPath` or `ospf (frr, bfd)` (older files: empty).
        #[serde(default)]
        routing: String,
    },
    Up {
        build_ms: f64,
        namespaces_ms: f64,
        links_ms: f64,
        programs_ms: f64,
        first_apply_ms: f64,
        first_apply_ops: usize,
        namespaces: usize,
        links: usize,
        processes: usize,
        memory_kib: Option<u64>,
    },
    Tick(TickRecord),
    Handover {
        t: f64,
        node: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    FaultBegan {
        t: f64,
        index: usize,
        kind: String,
        description: String,
    },
    FaultEnded {
        t: f64,
        index: usize,
        kind: String,
        description: String,
    },
    Error {
        t: f64,
        node: String,
        link: Option<String>,
        message: String,
    },
    Edit {
        t: f64,
        accepted: bool,
        message: String,
    },
    LinksBuilt {
        t: f64,
        links: usize,
        failed: usize,
    },
    ProcessExited {
        t: f64,
        node: String,
        status: String,
    },
    Stop {
        t: f64,
        reason: String,
        ticks: u64,
        skipped: u64,
    },
    /// One flow over one tick: what was sent in it, what arrived, the model beside it.
    Flow(FlowRecord),
    /// What one shaped link traversal costs this machine beyond its delay, measured at the
    /// start of the run: the allowance per hop before a flow's tick is flagged.
    Calibration {
        per_traversal_ms: f64,
        median_ms: f64,
        datagrams: usize,
    },
    /// How far one flow's measured delay was from the model's, over the whole run.
    Fidelity {
        flow: String,
        /// Ticks with both a measured median and a model path.
        ticks: usize,
        /// Of (measured median - model) per tick, ms.
        median_error_ms: f64,
        p99_error_ms: f64,
        /// Ticks whose median departed from the model by more than hops x the measured
        /// per-traversal cost.
        #[serde(default)]
        flagged: usize,
    },
    /// One objective's verdict at the end of the run.
    Verdict(orbitnet_mission::Verdict),
    /// How the forwarding converged after one event that changed the graph.
    Convergence(orbitnet_routing::convergence::Convergence),
    /// What reading and judging the forwarding tables cost over the run.
    ConvergenceCost {
        reads: u64,
        ms: f64,
    },
    /// A node's routing daemons exited; `restarted` says whether they were started again.
    DaemonsExited {
        t: f64,
        node: String,
        status: String,
        restarted: bool,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowRecord {
    /// Emulation time of the tick the datagrams were sent in.
    pub t: f64,
    pub flow: String,
    pub sent: u64,
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// One-way delay of the datagrams delivered: min, median, p99, max (ms).
    pub delay_ms: Option<[f64; 4]>,
    /// The model's path delay, `None` without a path.
    pub model_delay_ms: Option<f64>,
    pub hops: usize,
    /// The longest gap between delivered datagrams' send times ending in this tick, s.
    pub max_gap_s: f64,
    /// The median departed from the model by more than hops x the per-traversal cost
    /// measured in this run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flagged: bool,
}

impl FlowRecord {
    /// A tick of a flow; `per_traversal_ms`, the allowance per hop, if measured.
    pub fn of(name: &str, t: &orbitnet_mission::FlowTick, per_traversal_ms: Option<f64>) -> Self {
        let d = &t.delay;
        let delay_ms = d.min_ms().zip(d.percentile_ms(50.0)).zip(d.percentile_ms(99.0)).zip(d.max_ms());
        Self {
            t: t.t,
            flow: name.to_owned(),
            sent: t.sent,
            received: t.received,
            duplicates: t.duplicates,
            reordered: t.reordered,
            delay_ms: delay_ms.map(|(((min, p50), p99), max)| [min, p50, p99, max]),
            model_delay_ms: t.model.delay_ms,
            hops: t.model.hops,
            max_gap_s: t.max_gap,
            flagged: flagged(t, per_traversal_ms),
        }
    }
}

/// Whether a tick's median one-way delay departs from the model's by more than `hops` x
/// the per-traversal cost (and at least one histogram bin).
pub fn flagged(t: &orbitnet_mission::FlowTick, per_traversal_ms: Option<f64>) -> bool {
    let (Some(cost), Some(measured), Some(model)) =
        (per_traversal_ms, t.delay.percentile_ms(50.0), t.model.delay_ms)
    else {
        return false;
    };
    let allowance = t.model.hops as f64 * cost + orbitnet_mission::measure::BIN_NS as f64 / 1e6;
    (measured - model).abs() > allowance
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TickRecord {
    pub t: f64,
    /// Wall-clock time the tick was applied, Unix seconds (to line up outside measurements).
    pub wall: f64,
    pub links_up: usize,
    pub links: usize,
    pub isl_up: usize,
    pub gsl_up: usize,
    pub handovers: usize,
    /// Time the dataplane took to apply this tick.
    pub apply_ms: f64,
    /// Of `apply_ms`, the time spent working out the difference (the rest is the kernel's).
    pub diff_ms: f64,
    pub netem_changes: usize,
    pub link_changes: usize,
    pub route_changes: usize,
    /// How late the apply finished after the tick was due.
    pub late_ms: f64,
    pub ops: usize,
    pub errors: usize,
    pub active_faults: Vec<usize>,
    pub paths: Vec<PathRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathRecord {
    pub from: String,
    pub to: String,
    /// One-way delay of the model's path, `None` when unreachable.
    pub delay_ms: Option<f64>,
    pub hops: usize,
}

/// Where records go: a file, standard output (`--json`), both or neither.
pub struct Telemetry {
    file: Option<BufWriter<File>>,
    stdout: bool,
}

impl Telemetry {
    pub fn new(path: Option<&Path>, stdout: bool) -> io::Result<Self> {
        let file = path.map(File::create).transpose()?.map(BufWriter::new);
        Ok(Self { file, stdout })
    }

    pub fn emit(&mut self, record: &Record) {
        let Ok(line) = serde_json::to_string(record) else { return };
        if let Some(f) = &mut self.file {
            // Telemetry is best effort: a full disk must not stop the emulation.
            let _ = writeln!(f, "{line}");
        }
        if self.stdout {
            println!("{line}");
        }
    }

    /// Flushes the file, once per tick.
    pub fn flush(&mut self) {
        if let Some(f) = &mut self.file {
            let _ = f.flush();
        }
    }
}

/// Reads a telemetry file back; lines that are not records are reported by number.
pub fn read(path: &Path) -> io::Result<(Vec<Record>, Vec<usize>)> {
    let text = std::fs::read_to_string(path)?;
    let (mut records, mut bad) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(_) => bad.push(i + 1),
        }
    }
    Ok((records, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_camel_case_lines_that_read_back() {
        let r = Record::FaultBegan {
            t: 600.0,
            index: 2,
            kind: "jamming".into(),
            description: "jamming +60% loss".into(),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"type":"faultBegan","t":600.0,"index":2,"kind":"jamming","description":"jamming +60% loss"}"#
        );
        let tick = Record::Tick(TickRecord { t: 1.0, apply_ms: 2.5, ..TickRecord::default() });
        let line = serde_json::to_string(&tick).unwrap();
        assert!(line.starts_with(r#"{"type":"tick","t":1.0,"wall":0.0,"linksUp":0"#), "{line}");
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), tick);
    }
}

#[cfg(test)]
mod flag_tests {
    use super::*;
    use orbitnet_mission::{FlowTick, ModelTick};

    #[test]
    fn a_tick_is_flagged_beyond_hops_times_the_traversal_cost() {
        let tick = |median_ms: f64| {
            let mut t = FlowTick::new(0, 0.0);
            t.delay.record_ns((median_ms * 1e6) as u64);
            t.model = ModelTick { path: true, delay_ms: Some(40.0), hops: 3, delivery: 1.0, jitter_ms: 0.0 };
            t
        };
        // Three hops at 0.1 ms each, and a 10 us bin: up to 40.31 ms is the model's.
        assert!(!flagged(&tick(40.2), Some(0.1)));
        assert!(flagged(&tick(40.5), Some(0.1)));
        assert!(flagged(&tick(39.5), Some(0.1)), "faster than the model is flagged too");
        assert!(!flagged(&tick(45.0), None), "nothing is flagged without a measured cost");
        assert!(FlowRecord::of("f", &tick(45.0), Some(0.1)).flagged);
    }
}
