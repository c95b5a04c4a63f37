//! Prometheus metrics, and the HTTP endpoints `/metrics`, `/healthz` and `/readyz`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use orbitnet_api::crd::Phase;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<ErrorLabels, Counter>,
    duration: Histogram,
    by_phase: Family<PhaseLabels, Gauge>,
    leader: Gauge,
    phases: Mutex<HashMap<String, Phase>>,
    /// The API server answered (the controller's first list succeeded).
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("orbitnet_operator");
        let reconciles = Counter::default();
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        let failures = Family::<ErrorLabels, Counter>::default();
        registry.register("reconcile_errors", "Reconciles that failed, by error", failures.clone());
        let duration = Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0]);
        registry.register("reconcile_duration_seconds", "Time one reconcile took", duration.clone());
        let by_phase = Family::<PhaseLabels, Gauge>::default();
        registry.register("constellations", "Constellations by phase", by_phase.clone());
        let leader = Gauge::default();
        registry.register("leader", "1 while this replica holds the leader lease", leader.clone());
        for phase in Phase::ALL {
            by_phase.get_or_create(&PhaseLabels { phase: phase.as_str().into() }).set(0);
        }
        Self {
            registry,
            reconciles,
            failures,
            duration,
            by_phase,
            leader,
            phases: Mutex::new(HashMap::new()),
            ready: AtomicBool::new(false),
        }
    }
}

/// Observes a reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    started: Instant,
    duration: &'a Histogram,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.duration.observe(self.started.elapsed().as_secs_f64());
    }
}

impl Metrics {
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer { started: Instant::now(), duration: &self.duration }
    }

    pub fn reconcile_failed(&self, error: &str) {
        self.failures.get_or_create(&ErrorLabels { error: error.into() }).inc();
    }

    /// Records a constellation's phase (by uid) and recounts the phases.
    pub fn set_phase(&self, uid: &str, phase: Phase) {
        let mut phases = crate::lock(&self.phases);
        phases.insert(uid.into(), phase);
        self.recount(&phases);
    }

    /// A constellation is gone.
    pub fn forget(&self, uid: &str) {
        let mut phases = crate::lock(&self.phases);
        phases.remove(uid);
        self.recount(&phases);
    }

    fn recount(&self, phases: &HashMap<String, Phase>) {
        for phase in Phase::ALL {
            let n = phases.values().filter(|&&p| p == phase).count();
            self.by_phase.get_or_create(&PhaseLabels { phase: phase.as_str().into() }).set(n as i64);
        }
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The registry in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves `/metrics`, `/healthz` (the process answers) and `/readyz` (the API server has
/// answered) on `listener`.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    if let Err(error) = axum::serve(listener, app).await {
        tracing::warn!(%error, "the metrics endpoint stopped");
    }
}

async fn metrics_page(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], metrics.encode())
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "waiting for the API server")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_counted_per_constellation_and_forgotten() {
        let m = Metrics::default();
        m.set_phase("a", Phase::Creating);
        m.set_phase("b", Phase::Running);
        m.set_phase("a", Phase::Running);
        let text = m.encode();
        assert!(text.contains("orbitnet_operator_constellations{phase=\"Running\"} 2"), "{text}");
        assert!(text.contains("orbitnet_operator_constellations{phase=\"Creating\"} 0"), "{text}");
        m.forget("a");
        assert!(m.encode().contains("orbitnet_operator_constellations{phase=\"Running\"} 1"));
    }

    #[tokio::test]
    async fn the_endpoints_answer_over_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let metrics = Arc::new(Metrics::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, metrics.clone()));
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"), "not ready before the API server answers");
        metrics.set_ready();
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        let page = get("/metrics").await;
        assert!(page.contains("orbitnet_operator_constellations{phase=\"Running\"} 0"), "{page}");
    }

    #[test]
    fn reconciles_errors_and_durations_are_exported() {
        let m = Metrics::default();
        drop(m.reconcile_started());
        m.reconcile_failed("api_409");
        let text = m.encode();
        assert!(text.contains("orbitnet_operator_reconciles_total 1"), "{text}");
        assert!(text.contains("orbitnet_operator_reconcile_errors_total{error=\"api_409\"} 1"), "{text}");
        assert!(text.contains("orbitnet_operator_reconcile_duration_seconds_count 1"), "{text}");
    }
}
