//! orbitnet's Kubernetes operator: `Constellation` custom resources become one pod per node,
//! a headless Service and a hosts ConfigMap, with a status and events a CI pipeline can wait
//! on. The links themselves are the agents' job (`orbitnet agent`); the operator never
//! touches a network namespace, and the model tells it what the links should be.
//!
//! The resource, its CRD and the agents' reports are `orbitnet-api`'s; here, `children` and
//! `status` are pure functions of what is observed; `controller` is the reconciler that calls
//! the API server; `leader` and `metrics` are the operator's own plumbing.

pub mod children;
pub mod controller;
pub mod leader;
pub mod metrics;
pub mod nodes;
pub mod status;
pub mod ui;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod testdata;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::{Controller, watcher};
use tokio::sync::oneshot;
use tracing::{info, warn};

pub use controller::{Context, Settings};
use orbitnet_api::Constellation;

/// A poisoned lock only means another thread panicked holding it; what it guards (counters
/// and per-constellation notes) is still usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long a stop waits for the reconciles under way (each is a few API requests).
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; `None`: not at all.
    pub metrics_addr: Option<SocketAddr>,
    /// Where the browser view is served (`/ui/<namespace>/<name>/`); `None`: not at all.
    pub ui_addr: Option<SocketAddr>,
    /// Watch one namespace only; `None`: all of them.
    pub namespace: Option<String>,
    /// Leader election: the lease's namespace and settings; `None`: run without it (one
    /// replica only).
    pub lease: Option<(String, leader::LeaseSettings)>,
    pub settings: Settings,
}

/// Why the operator could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("listening on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the API server does not know Constellations; install the CRD first: kubectl apply -f crds/constellation.yaml"
    )]
    NoCrd,
    #[error("listing Constellations")]
    List(#[source] kube::Error),
    #[error("lost the leader lease; exiting so that a fresh start competes for it again")]
    LeaseLost,
}

/// Who this replica is, for the leader lease and as the events' reporting instance: the pod's
/// name in a cluster, else the host's, else one made from the process id.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("{}-{}", controller::MANAGER, std::process::id()))
}

/// The resources the operator watches: in one namespace, or in all of them.
fn watched<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the operator until `shutdown` completes, or the leader lease is lost (an error: the
/// process should exit and be restarted).
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), OperatorError> {
    let shutdown = shutdown.shared();
    let metrics = Arc::new(metrics::Metrics::default());
    if let Some(addr) = options.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| OperatorError::Listen { addr, source })?;
        tokio::spawn(metrics::serve(listener, metrics.clone()));
    }
    let constellations: Api<Constellation> = watched(&client, options.namespace.as_deref());
    match constellations.list(&ListParams::default().limit(1)).await {
        Ok(_) => metrics.set_ready(),
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(OperatorError::NoCrd),
        Err(e) => return Err(OperatorError::List(e)),
    }
    if let Some(addr) = options.ui_addr {
        serve_views(addr, constellations.clone(), shutdown.clone()).await?;
    }

    let (lost_tx, lost_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let mut elector = None;
    if let Some((ns, settings)) = options.lease.clone() {
        let mut e = leader::Elector::new(Api::<Lease>::namespaced(client.clone(), &ns), settings);
        info!(lease = %e.settings().name, identity = %e.settings().identity, "waiting to become the leader");
        loop {
            match tokio::time::timeout(e.settings().retry, e.try_lead()).await {
                Ok(Ok(true)) => break,
                Ok(Ok(false)) => {}
                Ok(Err(error)) => warn!(%error, "leader election"),
                Err(_) => warn!("leader election: the API server did not answer in time"),
            }
            // A standby stops when told to, without waiting to lead first.
            tokio::select! {
                () = shutdown.clone() => {
                    info!("stopped before leading");
                    return Ok(());
                }
                () = tokio::time::sleep(e.settings().retry) => {}
            }
        }
        info!("leading");
        metrics.set_leader(true);
        elector = Some(tokio::spawn(keep_leading(e, lost_tx, release_rx, metrics.clone())));
    }

    // Nodes are cluster-wide, whichever namespaces the operator watches.
    let (nodes, node_changes) = nodes::watch(Api::all(client.clone()));
    let ctx =
        Arc::new(Context::new(client.clone(), identity(), metrics.clone(), options.settings.clone(), nodes));
    let pods: Api<Pod> = watched(&client, options.namespace.as_deref());
    let lease_lost = Arc::new(AtomicBool::new(false));
    let stop = {
        let lease_lost = lease_lost.clone();
        async move {
            tokio::select! {
                () = shutdown => info!("stopping: finishing the reconciles under way"),
                Ok(()) = lost_rx => lease_lost.store(true, Ordering::Relaxed),
            }
        }
    }
    .shared();
    let controller = Controller::new(constellations, watcher::Config::default())
        .owns(pods, watcher::Config::default().labels(orbitnet_api::labels::LABEL_CONSTELLATION))
        .reconcile_all_on(node_changes);
    // kube-runtime's graceful shutdown waits for the reconciles under way, and before the
    // first list of constellations it waits for that list, which the shutdown has cancelled:
    // forever (a stop in the operator's first moments hung CI's apiserver tier for 88 min).
    // So: no wait when no reconcile can have started, and at most STOP_GRACE otherwise.
    let store = controller.store();
    let give_up = {
        let stop = stop.clone();
        async move {
            stop.await;
            if !matches!(store.wait_until_ready().now_or_never(), Some(Ok(()))) {
                return;
            }
            tokio::time::sleep(STOP_GRACE).await;
            warn!(
                grace_s = STOP_GRACE.as_secs(),
                "reconciles still under way after the stop's grace period; abandoning them"
            );
        }
    };
    controller
        .graceful_shutdown_on(stop)
        .run(controller::reconcile, controller::error_policy, ctx)
        .take_until(give_up)
        .for_each(|result| async move {
            // Reconcile errors are logged by the error policy; here only their echo.
            if let Err(error) = result {
                tracing::debug!(%error, "controller");
            }
        })
        .await;
    if let Some(task) = elector {
        let _ = release_tx.send(());
        if let Err(error) = task.await {
            warn!(%error, "the leader lease task failed");
        }
    }
    if lease_lost.load(Ordering::Relaxed) {
        return Err(OperatorError::LeaseLost);
    }
    info!("stopped");
    Ok(())
}

/// Serves every Constellation's browser view on `addr` until `shutdown`, from a watch of
/// its own: standby replicas serve it too (the view only reads).
async fn serve_views(
    addr: SocketAddr,
    constellations: Api<Constellation>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OperatorError> {
    use kube::runtime::WatchStreamExt;
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|source| OperatorError::Listen { addr, source })?;
    let (store, writer) = kube::runtime::reflector::store();
    let watch = kube::runtime::reflector(writer, watcher(constellations, watcher::Config::default()))
        .default_backoff()
        .for_each(|_| futures::future::ready(()));
    let router = ui::Views::new(store).router();
    info!(%addr, "serving the browser view at /ui/");
    tokio::spawn(async move {
        tokio::select! {
            () = watch => {}
            served = axum::serve(listener, router).with_graceful_shutdown(shutdown) => {
                if let Err(error) = served {
                    warn!(%error, "the browser view's server stopped");
                }
            }
        }
    });
    Ok(())
}

/// Renews the lease until told to release it. It gives up leading (says so on `lost`) when
/// another replica holds the lease, or when it could not renew for a renew deadline of two
/// thirds of the lease duration, counted from before its last successful request: so it
/// stops before any standby, which waits a whole duration from after seeing that renewal,
/// may take over.
async fn keep_leading(
    mut elector: leader::Elector,
    lost: oneshot::Sender<()>,
    mut release: oneshot::Receiver<()>,
    metrics: Arc<metrics::Metrics>,
) {
    let renew_deadline = elector.settings().duration * 2 / 3;
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = &mut release => {
                if let Err(error) = elector.release().await {
                    warn!(%error, "releasing the leader lease");
                }
                metrics.set_leader(false);
                return;
            }
            () = tokio::time::sleep(elector.settings().retry) => {}
        }
        let attempt = tokio::time::Instant::now();
        let left = renew_deadline.saturating_sub(attempt - last_renewed);
        match tokio::time::timeout(left, elector.try_lead()).await {
            Ok(Ok(true)) => last_renewed = attempt,
            Ok(Ok(false)) => {
                warn!("another replica holds the leader lease");
                break;
            }
            Ok(Err(error)) => warn!(%error, "renewing the leader lease"),
            Err(_) => warn!("renewing the leader lease: the API server did not answer in time"),
        }
        if last_renewed.elapsed() >= renew_deadline {
            warn!("could not renew the leader lease within its renew deadline");
            break;
        }
    }
    metrics.set_leader(false);
    let _ = lost.send(());
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;

    fn options() -> Options {
        Options {
            metrics_addr: None,
            ui_addr: None,
            namespace: Some("test".into()),
            lease: None,
            settings: Settings::default(),
        }
    }

    /// The hint users follow when the CRD is missing: said as it is, with nothing appended.
    #[tokio::test]
    async fn without_the_crd_it_says_how_to_install_it() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (request, send) = handle.next_request().await.expect("the list request");
            assert!(
                request.uri().path().ends_with("/apis/orbitnet.dev/v1alpha1/namespaces/test/constellations"),
                "{}",
                request.uri()
            );
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"});
            send.send_response(
                Response::builder()
                    .status(404)
                    .body(Body::from(status.to_string().into_bytes()))
                    .expect("a response"),
            );
        });
        let error = run(Client::new(service, "test"), options(), std::future::pending()).await.unwrap_err();
        server.await.unwrap();
        assert!(matches!(error, OperatorError::NoCrd), "{error:?}");
        assert_eq!(
            error.to_string(),
            "the API server does not know Constellations; install the CRD first: kubectl apply -f crds/constellation.yaml"
        );
        assert!(std::error::Error::source(&error).is_none());
    }

    /// The address that could not be bound is in the message; the OS's reason is the source.
    #[tokio::test]
    async fn a_taken_metrics_port_is_named() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let options = Options { metrics_addr: Some(addr), ..options() };
        let error = run(Client::new(service, "test"), options, std::future::pending()).await.unwrap_err();
        assert_eq!(error.to_string(), format!("listening on {addr}"));
        assert!(std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>()));
    }
}
