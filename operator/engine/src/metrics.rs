//! Prometheus metrics of the mission's flows and objectives, for both runners (`orbitnet
//! run --metrics ADDR`, the agent's `--metrics-addr`), named as the operator's are:
//! `orbitnet_<part>_<what>[_unit][_total]`, labelled by constellation and flow or objective.
//! Served at `/metrics` (and `/healthz`) by one small thread: the local runner has no async
//! runtime to lend.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use orbitnet_mission::{FlowTick, Verdict};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlowLabels {
    constellation: String,
    flow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    constellation: String,
    flow: String,
    quantile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectiveLabels {
    constellation: String,
    objective: String,
    flow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    constellation: String,
    objective: String,
    result: String,
}

type FloatGauge<L> = Family<L, Gauge<f64, AtomicU64>>;

/// The flows' and objectives' metrics.
pub struct FlowMetrics {
    registry: Registry,
    sent: Family<FlowLabels, Counter>,
    received: Family<FlowLabels, Counter>,
    duplicates: Family<FlowLabels, Counter>,
    reordered: Family<FlowLabels, Counter>,
    delay: FloatGauge<QuantileLabels>,
    model_delay: FloatGauge<FlowLabels>,
    path: Family<FlowLabels, Gauge>,
    value: FloatGauge<ObjectiveLabels>,
    result: Family<ResultLabels, Gauge>,
}

impl Default for FlowMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("orbitnet");
        let sent = Family::<FlowLabels, Counter>::default();
        registry.register(
            "flow_datagrams_sent",
            "Datagrams a flow sent, by the tick they were sent in",
            sent.clone(),
        );
        let received = Family::<FlowLabels, Counter>::default();
        registry.register(
            "flow_datagrams_received",
            "Distinct datagrams of a flow delivered",
            received.clone(),
        );
        let duplicates = Family::<FlowLabels, Counter>::default();
        registry.register(
            "flow_datagrams_duplicated",
            "Datagrams of a flow delivered again",
            duplicates.clone(),
        );
        let reordered = Family::<FlowLabels, Counter>::default();
        registry.register(
            "flow_datagrams_reordered",
            "Datagrams of a flow delivered after a later-sent one",
            reordered.clone(),
        );
        let delay = FloatGauge::<QuantileLabels>::default();
        registry.register(
            "flow_one_way_delay_seconds",
            "One-way delay of the datagrams of the last settled tick, by quantile",
            delay.clone(),
        );
        let model_delay = FloatGauge::<FlowLabels>::default();
        registry.register(
            "flow_model_delay_seconds",
            "The model's path delay for the flow at the last settled tick",
            model_delay.clone(),
        );
        let path = Family::<FlowLabels, Gauge>::default();
        registry.register(
            "flow_model_path",
            "1 if the model has a path for the flow at the last settled tick",
            path.clone(),
        );
        let value = FloatGauge::<ObjectiveLabels>::default();
        registry.register(
            "objective_value",
            "An objective's measured value, in its requirement's unit (ms, %, s)",
            value.clone(),
        );
        let result = Family::<ResultLabels, Gauge>::default();
        registry.register(
            "objective_result",
            "1 for an objective's current result (PASS, FAIL, INCONCLUSIVE or PENDING), 0 for the others",
            result.clone(),
        );
        Self { registry, sent, received, duplicates, reordered, delay, model_delay, path, value, result }
    }
}

impl FlowMetrics {
    /// One settled tick of a flow.
    pub fn observe(&self, constellation: &str, flow: &str, t: &FlowTick) {
        let l = FlowLabels { constellation: constellation.into(), flow: flow.into() };
        self.sent.get_or_create(&l).inc_by(t.sent);
        self.received.get_or_create(&l).inc_by(t.received);
        self.duplicates.get_or_create(&l).inc_by(t.duplicates);
        self.reordered.get_or_create(&l).inc_by(t.reordered);
        for (q, p) in [("0.5", 50.0), ("0.99", 99.0)] {
            if let Some(ms) = t.delay.percentile_ms(p) {
                let ql = QuantileLabels {
                    constellation: l.constellation.clone(),
                    flow: l.flow.clone(),
                    quantile: q.into(),
                };
                self.delay.get_or_create(&ql).set(ms / 1e3);
            }
        }
        self.path.get_or_create(&l).set(i64::from(t.model.path));
        if let Some(ms) = t.model.delay_ms {
            self.model_delay.get_or_create(&l).set(ms / 1e3);
        }
    }

    /// The objectives' verdicts so far; `settled` false shows them as PENDING.
    pub fn verdicts(&self, constellation: &str, verdicts: &[Verdict], settled: bool) {
        for v in verdicts {
            let m = v.measured.as_ref();
            if let Some(value) = m.and_then(|m| m.value) {
                let l = ObjectiveLabels {
                    constellation: constellation.into(),
                    objective: v.objective.clone(),
                    flow: v.flow.clone(),
                };
                self.value.get_or_create(&l).set(value);
            }
            let now = match m {
                Some(m) if settled => m.outcome.to_string(),
                _ => "PENDING".into(),
            };
            for result in ["PASS", "FAIL", "INCONCLUSIVE", "PENDING"] {
                let l = ResultLabels {
                    constellation: constellation.into(),
                    objective: v.objective.clone(),
                    result: result.into(),
                };
                self.result.get_or_create(&l).set(i64::from(result == now));
            }
        }
    }

    /// The registry in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics` and `/healthz` on `addr` from a thread of its own, until the process
/// ends. Returns the address bound (`addr` may ask for port 0).
pub fn serve(addr: SocketAddr, metrics: Arc<FlowMetrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer(stream, &metrics);
        }
    })?;
    Ok(bound)
}

fn answer(mut stream: std::net::TcpStream, metrics: &FlowMetrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, kind, body) = match path {
        "/metrics" => {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.encode())
        }
        "/healthz" => ("200 OK", "text/plain", "ok".to_owned()),
        _ => ("404 Not Found", "text/plain", "not found: try /metrics".to_owned()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbitnet_mission::ModelTick;

    #[test]
    fn flows_and_objectives_are_exported_and_served() {
        let m = Arc::new(FlowMetrics::default());
        let mut t = FlowTick::new(3, 3.0);
        t.sent = 100;
        t.received = 98;
        t.delay.record_ns(40_000_000);
        t.model = ModelTick { path: true, delay_ms: Some(39.5), hops: 3, delivery: 1.0, jitter_ms: 0.0 };
        m.observe("tiny", "tracks", &t);
        let text = m.encode();
        assert!(
            text.contains(r#"orbitnet_flow_datagrams_sent_total{constellation="tiny",flow="tracks"} 100"#),
            "{text}"
        );
        assert!(
            text.contains(r#"orbitnet_flow_datagrams_received_total{constellation="tiny",flow="tracks"} 98"#),
            "{text}"
        );
        assert!(text.contains(r#"orbitnet_flow_model_path{constellation="tiny",flow="tracks"} 1"#), "{text}");
        assert!(
            text.contains(r#"orbitnet_flow_one_way_delay_seconds{constellation="tiny",flow="tracks",quantile="0.5"} 0.040005"#),
            "{text}"
        );

        let addr = serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&m)).unwrap();
        let get = |path: &str| {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            std::io::Read::read_to_string(&mut s, &mut out).unwrap();
            out
        };
        assert!(get("/metrics").contains("orbitnet_flow_datagrams_sent_total"));
        assert!(get("/healthz").starts_with("HTTP/1.1 200"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }
}
