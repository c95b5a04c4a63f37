//! The reconciler: for each Constellation, its children (server-side applied, owned), its
//! status (server-side applied to the status subresource), its events, and the finalizer
//! that lets the link agents remove links before the resource goes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, ResourceExt};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource};
use orbitnet_model::{Plan, SimTime};
use serde_json::json;
use tracing::{info, warn};

use crate::children::{self, ANNOTATION_TEMPLATE_HASH};
use crate::crd::{Constellation, ConstellationStatus, Phase};
use crate::metrics::Metrics;
use crate::status::{self, Observed, PodView};

/// The finalizer that holds a constellation until the agents have removed its links.
pub const FINALIZER: &str = "orbitnet.dev/links";
/// `orbitnet.dev/force-delete: "true"` lets a stuck deletion go without the agents.
pub const FORCE_DELETE: &str = "orbitnet.dev/force-delete";
/// The field manager of everything the operator applies.
pub const MANAGER: &str = "orbitnet-operator";
/// Pods created or deleted at once.
const CONCURRENT_WRITES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{action}: {}", describe(source))]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("Constellation {0} has no namespace")]
    NoNamespace(String),
}

/// The API server's own message for API errors (kube's Display adds the whole Status).
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({} {})", s.message, s.code, s.reason),
        other => other.to_string(),
    }
}

impl Error {
    fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let action = action.into();
        move |source| Error::Kube { action, source }
    }

    /// A short label for the errors metric.
    pub fn metric_label(&self) -> String {
        match self {
            Error::Kube { source: kube::Error::Api(status), .. } => format!("api_{}", status.code),
            Error::Kube { .. } => "kube".into(),
            Error::NoNamespace(_) => "no_namespace".into(),
        }
    }
}

/// Settings of the reconciler.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a deleted constellation waits for the agents to confirm its links are gone.
    pub cleanup_timeout: Duration,
    /// How often a running constellation's status (sim time, faults) is refreshed.
    pub resync: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self { cleanup_timeout: Duration::from_secs(120), resync: Duration::from_secs(15) }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Per constellation (by uid): up to which sim time handovers have been reported.
    handovers_counted: Mutex<HashMap<String, SimTime>>,
}

impl Context {
    pub fn new(client: Client, recorder: Recorder, metrics: Arc<Metrics>, settings: Settings) -> Self {
        Self { client, recorder, metrics, settings, handovers_counted: Mutex::new(HashMap::new()) }
    }
}

pub async fn reconcile(cst: Arc<Constellation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started();
    let ns = cst.namespace().ok_or_else(|| Error::NoNamespace(cst.name_any()))?;
    let api: Api<Constellation> = Api::namespaced(ctx.client.clone(), &ns);
    if cst.metadata.deletion_timestamp.is_some() {
        return cleanup(&cst, &api, &ctx).await;
    }
    if !cst.finalizers().iter().any(|f| f == FINALIZER) {
        add_finalizer(&cst, &api).await?;
    }
    apply(&cst, &api, &ns, &ctx).await
}

/// Requeues with a backoff; the error is in the log, the metrics and (for API errors) the
/// constellation's events.
pub fn error_policy(cst: Arc<Constellation>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(constellation = %cst.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_failed(&error.metric_label());
    Action::requeue(Duration::from_secs(5))
}

async fn add_finalizer(cst: &Constellation, api: &Api<Constellation>) -> Result<(), Error> {
    // The test makes two operators racing to add it harmless: the second patch fails.
    let patch = if cst.metadata.finalizers.is_none() {
        json!([{"op": "test", "path": "/metadata/finalizers", "value": null},
               {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]}])
    } else {
        json!([{"op": "test", "path": "/metadata/finalizers", "value": cst.finalizers()},
               {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER}])
    };
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a well-formed JSON patch (literal)");
    api.patch(&cst.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .map_err(Error::kube("adding the finalizer"))?;
    Ok(())
}

async fn remove_finalizer(cst: &Constellation, api: &Api<Constellation>) -> Result<(), Error> {
    let Some(index) = cst.finalizers().iter().position(|f| f == FINALIZER) else { return Ok(()) };
    let path = format!("/metadata/finalizers/{index}");
    let patch = json!([{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]);
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a well-formed JSON patch (literal)");
    match api.patch(&cst.name_any(), &PatchParams::default(), &Patch::<()>::Json(patch)).await {
        Ok(_) => Ok(()),
        // Gone already: another replica finished first.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::kube("removing the finalizer")(e)),
    }
}

/// A deleted constellation: wait (bounded) for the agents to report its links removed, then
/// let it go; its children go with it (ownerReferences).
async fn cleanup(cst: &Constellation, api: &Api<Constellation>, ctx: &Context) -> Result<Action, Error> {
    if !cst.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = cst.name_any();
    let agents: Vec<String> =
        cst.status.iter().flat_map(|s| s.agents.iter().map(|a| a.node.clone())).collect();
    let forced = cst.annotations().get(FORCE_DELETE).is_some_and(|v| v == "true");
    let waited = cst
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| Utc::now().timestamp() - t.0.as_second())
        .unwrap_or_default();
    let timed_out = waited >= i64::try_from(ctx.settings.cleanup_timeout.as_secs()).unwrap_or(i64::MAX);
    let event = if agents.is_empty() {
        Some((EventType::Normal, "LinksRemoved", "every link agent has removed its links".to_owned()))
    } else if forced {
        Some((
            EventType::Warning,
            "ForceDeleted",
            format!(
                "{FORCE_DELETE} is set: deleting without waiting for the agents on {}; their links may remain \
                 until those agents restart",
                agents.join(", ")
            ),
        ))
    } else if timed_out {
        Some((
            EventType::Warning,
            "CleanupTimedOut",
            format!(
                "the link agents on {} did not confirm within {} s; deleting anyway, their links may remain \
                 until those agents restart",
                agents.join(", "),
                ctx.settings.cleanup_timeout.as_secs()
            ),
        ))
    } else {
        None
    };
    match event {
        Some((type_, reason, note)) => {
            publish(ctx, cst, type_, reason, note).await;
            remove_finalizer(cst, api).await?;
            if let Some(uid) = cst.uid() {
                lock(&ctx.handovers_counted).remove(&uid);
            }
            ctx.metrics.forget(&cst.uid().unwrap_or_default());
            info!(constellation = %name, forced, timed_out, "finalized");
            Ok(Action::await_change())
        }
        None => {
            info!(constellation = %name, waiting_for = ?agents, "waiting for the link agents to remove links");
            Ok(Action::requeue(Duration::from_secs(2)))
        }
    }
}

async fn apply(
    cst: &Constellation,
    api: &Api<Constellation>,
    ns: &str,
    ctx: &Context,
) -> Result<Action, Error> {
    let name = cst.name_any();
    let plan = orbitnet_model::compile(&name, &cst.spec);
    let previous = cst.status.as_ref();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            let message = e.to_string();
            let status = status::compute(&Observed {
                generation: cst.metadata.generation,
                previous,
                plan: Err(message.clone()),
                pods: &[],
                now: Utc::now(),
            });
            let first_time = previous.is_none_or(|p| p.observed_generation != cst.metadata.generation);
            if first_time {
                publish(ctx, cst, EventType::Warning, "InvalidSpec", message).await;
            }
            write_status(api, &name, &status).await?;
            ctx.metrics.set_phase(&cst.uid().unwrap_or_default(), Phase::Failed);
            return Ok(Action::await_change());
        }
    };

    let params = PatchParams::apply(MANAGER).force();
    let service = children::service(cst);
    Api::<Service>::namespaced(ctx.client.clone(), ns)
        .patch(&name, &params, &Patch::Apply(&service))
        .await
        .map_err(Error::kube(format!("applying Service {name}")))?;
    let hosts = children::hosts_config_map(cst, &plan);
    let hosts_name = children::hosts_config_map_name(&name);
    Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
        .patch(&hosts_name, &params, &Patch::Apply(&hosts))
        .await
        .map_err(Error::kube(format!("applying ConfigMap {hosts_name}")))?;

    let existing = pods_api
        .list(&ListParams::default().labels(&children::selector(&name)))
        .await
        .map_err(Error::kube("listing pods"))?
        .items;
    let changes = pod_changes(children::pods(cst, &plan), existing);
    let created = stream::iter(changes.create.clone())
        .map(|pod| {
            let (api, params) = (pods_api.clone(), params.clone());
            async move {
                let pod_name = pod.name_any();
                api.patch(&pod_name, &params, &Patch::Apply(&pod))
                    .await
                    .map_err(Error::kube(format!("creating pod {pod_name}")))
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_fold(0, |n, _| async move { Ok(n + 1) })
        .await?;
    let doomed: Vec<String> = changes.roll.iter().chain(&changes.remove).cloned().collect();
    stream::iter(doomed)
        .map(|pod_name| {
            let api = pods_api.clone();
            async move {
                match api.delete(&pod_name, &DeleteParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    Err(e) => Err(Error::kube(format!("deleting pod {pod_name}"))(e)),
                }
            }
        })
        .buffer_unordered(CONCURRENT_WRITES)
        .try_collect::<()>()
        .await?;
    if created > 0 {
        publish(ctx, cst, EventType::Normal, "Created", format!("created {created} pods")).await;
    }
    if !changes.roll.is_empty() {
        let note = format!("rolling {} pods to a changed template", changes.roll.len());
        publish(ctx, cst, EventType::Normal, "Rolling", note).await;
    }
    if !changes.remove.is_empty() {
        let note = format!("deleted {} pods of nodes no longer in the spec", changes.remove.len());
        publish(ctx, cst, EventType::Normal, "ScaledDown", note).await;
    }

    let now = Utc::now();
    let status = status::compute(&Observed {
        generation: cst.metadata.generation,
        previous,
        plan: Ok(&plan),
        pods: &changes.views,
        now,
    });
    write_status(api, &name, &status).await?;
    ctx.metrics.set_phase(&cst.uid().unwrap_or_default(), status.phase.unwrap_or(Phase::Pending));
    report_changes(ctx, cst, &plan, previous, &status, now).await;

    let phase = status.phase.unwrap_or(Phase::Pending);
    Ok(match phase {
        Phase::Running | Phase::Degraded => Action::requeue(ctx.settings.resync),
        // Pod and agent changes wake the controller; the timer is a safety net.
        Phase::Pending | Phase::Creating => Action::requeue(Duration::from_secs(30)),
        Phase::Failed => Action::await_change(),
    })
}

/// What to do with the pods: create the missing, roll the stale, remove the unwanted.
#[derive(Debug, Default)]
struct PodChanges {
    create: Vec<Pod>,
    roll: Vec<String>,
    remove: Vec<String>,
    /// The pods as they will be once the changes are made (deleted ones left out).
    views: Vec<PodView>,
}

fn pod_changes(wanted: Vec<Pod>, existing: Vec<Pod>) -> PodChanges {
    let mut existing: BTreeMap<String, Pod> = existing.into_iter().map(|p| (p.name_any(), p)).collect();
    let mut changes = PodChanges::default();
    for pod in wanted {
        let name = pod.name_any();
        match existing.remove(&name) {
            None => {
                changes.views.push(PodView { name, host: None, phase: "Pending".into() });
                changes.create.push(pod);
            }
            // Being deleted (rolled or failed): created again once it is gone.
            Some(old) if old.metadata.deletion_timestamp.is_some() => {
                changes.views.push(PodView { name, host: None, phase: "Terminating".into() });
            }
            Some(old) => {
                let hash = |p: &Pod| p.annotations().get(ANNOTATION_TEMPLATE_HASH).cloned();
                let failed = phase_of(&old) == "Failed";
                if hash(&old) != hash(&pod) || failed {
                    changes.views.push(PodView {
                        name: name.clone(),
                        host: None,
                        phase: "Terminating".into(),
                    });
                    changes.roll.push(name);
                } else {
                    changes.views.push(PodView {
                        name,
                        host: old.spec.as_ref().and_then(|s| s.node_name.clone()),
                        phase: phase_of(&old),
                    });
                }
            }
        }
    }
    changes.remove = existing
        .into_iter()
        .filter(|(_, p)| p.metadata.deletion_timestamp.is_none())
        .map(|(n, _)| n)
        .collect();
    changes
}

fn phase_of(pod: &Pod) -> String {
    pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into())
}

async fn write_status(
    api: &Api<Constellation>,
    name: &str,
    status: &ConstellationStatus,
) -> Result<(), Error> {
    let body = json!({
        "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
        "kind": crate::crd::KIND,
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(body))
        .await
        .map_err(Error::kube(format!("writing the status of {name}")))?;
    Ok(())
}

/// Events for what changed since the last status: phase, faults, and a handover count
/// once per minute of emulation time (not one event per handover).
async fn report_changes(
    ctx: &Context,
    cst: &Constellation,
    plan: &Plan,
    previous: Option<&ConstellationStatus>,
    status: &ConstellationStatus,
    now: DateTime<Utc>,
) {
    let before = previous.and_then(|p| p.phase);
    if status.phase != before
        && let Some(phase) = status.phase
    {
        let ready = status.conditions.iter().find(|c| c.type_ == status::READY);
        let note = ready.map(|c| c.message.clone()).unwrap_or_default();
        let type_ = if phase == Phase::Degraded { EventType::Warning } else { EventType::Normal };
        publish(ctx, cst, type_, phase.as_str(), note).await;
    }
    let was: Vec<String> = previous.map(|p| p.active_faults.clone()).unwrap_or_default();
    let begun: Vec<String> = status.active_faults.iter().filter(|&f| !was.contains(f)).cloned().collect();
    let ended: Vec<String> = was.iter().filter(|&f| !status.active_faults.contains(f)).cloned().collect();
    for fault in begun {
        publish(ctx, cst, EventType::Warning, "FaultBegun", fault).await;
    }
    for fault in ended {
        publish(ctx, cst, EventType::Normal, "FaultEnded", fault).await;
    }
    let Some(started) = status.started_at.as_deref().and_then(|s| DateTime::parse_from_rfc3339(s).ok())
    else {
        return;
    };
    let sim_ns = (now - started.with_timezone(&Utc)).num_nanoseconds().unwrap_or(i64::MAX);
    let sim = SimTime::from_nanos(sim_ns);
    let uid = cst.uid().unwrap_or_default();
    let from = *lock(&ctx.handovers_counted).entry(uid.clone()).or_insert(sim);
    const MINUTE_NS: i64 = 60_000_000_000;
    if sim.as_nanos() - from.as_nanos() >= MINUTE_NS {
        let handovers = plan.handovers_between(from, sim);
        lock(&ctx.handovers_counted).insert(uid, sim);
        let note = format!("{handovers} ground-link handovers from sim time {from} s to {sim} s");
        publish(ctx, cst, EventType::Normal, "Handovers", note).await;
    }
}

/// Events are best effort: a failure to record one is logged, never fails the reconcile.
async fn publish(ctx: &Context, cst: &Constellation, type_: EventType, reason: &str, note: String) {
    let event =
        Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
    if let Err(error) = ctx.recorder.publish(&event, &cst.object_ref(&())).await {
        warn!(constellation = %cst.name_any(), reason, %error, "could not record an event");
    }
}

/// A poisoned lock only means another reconcile panicked; the map is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, Expect, conflict, echo, object};
    use crate::testdata::{TINY, constellation};
    use serde_json::Value;

    const CST: &str = "/apis/orbitnet.dev/v1alpha1/namespaces/test/constellations/tiny";
    const PODS: &str = "/api/v1/namespaces/test/pods";
    const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/test/events";

    fn pod_list(pods: Vec<Pod>) -> Value {
        json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods})
    }

    /// Runs one reconcile against the verifier; a request the test did not expect makes
    /// the verifier panic, and a missing answer makes the reconcile time out.
    async fn reconcile_with(
        cst: Constellation,
        expected: Vec<Expect>,
    ) -> (Result<Action, Error>, Vec<Vec<Value>>, Arc<Context>) {
        let (ctx, verifier) = fixtures::context();
        let verifier = verifier.run(expected);
        let result = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(cst), ctx.clone()))
            .await
            .expect("the reconcile waited for an answer the test did not plan");
        let seen = tokio::time::timeout(Duration::from_secs(10), verifier)
            .await
            .expect("the reconcile made fewer requests than expected")
            .expect("the verifier's expectations hold");
        (result, seen, ctx)
    }

    fn with_finalizer(mut cst: Constellation) -> Constellation {
        cst.metadata.finalizers = Some(vec![FINALIZER.into()]);
        cst
    }

    #[tokio::test]
    async fn a_new_constellation_gets_its_finalizer_children_status_and_events() {
        let (cst, plan) = constellation(TINY);
        let as_json = serde_json::to_value(with_finalizer(cst.clone())).unwrap();
        let (result, seen, _) = reconcile_with(
            cst,
            vec![
                Expect::one("PATCH", CST, object(as_json.clone())),
                Expect::one("PATCH", "/api/v1/namespaces/test/services/tiny?", echo()),
                Expect::one("PATCH", "/api/v1/namespaces/test/configmaps/tiny-hosts?", echo()),
                Expect::one("GET", PODS, object(pod_list(vec![]))),
                Expect::many("PATCH", format!("{PODS}/tiny-"), plan.nodes.len(), echo()),
                Expect::one("POST", EVENTS, echo()),
                Expect::one("PATCH", format!("{CST}/status?"), object(as_json)),
                Expect::one("POST", EVENTS, echo()),
            ],
        )
        .await;
        assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(30)));
        assert_eq!(seen[0][0][1]["path"], "/metadata/finalizers", "the finalizer is added: {}", seen[0][0]);
        assert_eq!(seen[1][0]["spec"]["clusterIP"], "None");
        let mut pods: Vec<String> =
            seen[4].iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()).collect();
        pods.sort();
        pods.dedup();
        assert_eq!(pods.len(), plan.nodes.len(), "one apply per pod");
        assert_eq!(seen[5][0]["reason"], "Created");
        assert_eq!(seen[5][0]["note"], "created 10 pods");
        let status = &seen[6][0]["status"];
        assert_eq!((status["phase"].as_str(), status["nodes"].as_u64()), (Some("Creating"), Some(10)));
        assert!(status.get("agents").is_none(), "the operator never writes the agents' entries");
        assert_eq!(seen[7][0]["reason"], "Creating");
    }

    #[tokio::test]
    async fn an_unchanged_constellation_only_refreshes_its_status() {
        let (cst, plan) = constellation(TINY);
        let mut cst = with_finalizer(cst);
        cst.status =
            Some(ConstellationStatus { phase: Some(Phase::Creating), ..ConstellationStatus::default() });
        let existing = children::pods(&cst, &plan);
        let as_json = serde_json::to_value(&cst).unwrap();
        let (result, seen, _) = reconcile_with(
            cst,
            vec![
                Expect::one("PATCH", "/api/v1/namespaces/test/services/tiny?", echo()),
                Expect::one("PATCH", "/api/v1/namespaces/test/configmaps/tiny-hosts?", echo()),
                Expect::one("GET", PODS, object(pod_list(existing))),
                Expect::one("PATCH", format!("{CST}/status?"), object(as_json)),
            ],
        )
        .await;
        result.unwrap();
        assert_eq!(seen[3][0]["status"]["pods"], 10);
    }

    #[tokio::test]
    async fn scaling_down_deletes_the_pods_no_longer_in_the_spec() {
        let (cst, plan) = constellation(TINY);
        let mut cst = with_finalizer(cst);
        cst.status =
            Some(ConstellationStatus { phase: Some(Phase::Creating), ..ConstellationStatus::default() });
        let mut existing = children::pods(&cst, &plan);
        let mut extra = existing[0].clone();
        extra.metadata.name = Some("tiny-ring-0-9".into());
        existing.push(extra.clone());
        let as_json = serde_json::to_value(&cst).unwrap();
        let (result, seen, _) = reconcile_with(
            cst,
            vec![
                Expect::one("PATCH", "/api/v1/namespaces/test/services/tiny?", echo()),
                Expect::one("PATCH", "/api/v1/namespaces/test/configmaps/tiny-hosts?", echo()),
                Expect::one("GET", PODS, object(pod_list(existing))),
                Expect::one(
                    "DELETE",
                    format!("{PODS}/tiny-ring-0-9?"),
                    object(serde_json::to_value(&extra).unwrap()),
                ),
                Expect::one("POST", EVENTS, echo()),
                Expect::one("PATCH", format!("{CST}/status?"), object(as_json)),
            ],
        )
        .await;
        result.unwrap();
        assert_eq!(seen[4][0]["reason"], "ScaledDown");
    }

    #[tokio::test]
    async fn a_deleted_constellation_without_agents_lets_go_of_its_finalizer() {
        let (cst, _) = constellation(TINY);
        let mut cst = with_finalizer(cst);
        cst.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        let as_json = serde_json::to_value(&cst).unwrap();
        let (result, seen, _) = reconcile_with(
            cst,
            vec![Expect::one("POST", EVENTS, echo()), Expect::one("PATCH", CST, object(as_json))],
        )
        .await;
        assert_eq!(result.unwrap(), Action::await_change());
        assert_eq!(seen[0][0]["reason"], "LinksRemoved");
        assert_eq!(seen[1][0][1], json!({"op": "remove", "path": "/metadata/finalizers/0"}));
    }

    #[tokio::test]
    async fn a_deleted_constellation_waits_for_its_agents() {
        let (cst, _) = constellation(TINY);
        let mut cst = with_finalizer(cst);
        cst.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        let agent = crate::crd::AgentReport { node: "w1".into(), pods: 10, ..Default::default() };
        cst.status = Some(ConstellationStatus { agents: vec![agent], ..ConstellationStatus::default() });
        let (result, _, _) = reconcile_with(cst, vec![]).await;
        assert_eq!(result.unwrap(), Action::requeue(Duration::from_secs(2)), "no request, a short requeue");
    }

    #[tokio::test]
    async fn a_running_constellation_reports_faults_begun_and_handovers_per_minute() {
        let yaml =
            format!("{TINY}  faults:\n  - {{kind: nodeDown, node: ring-0-3, at: 1m, duration: 10m}}\n");
        let (cst, plan) = constellation(&yaml);
        let mut cst = with_finalizer(cst);
        let started = Utc::now() - chrono::Duration::seconds(600);
        cst.status = Some(ConstellationStatus {
            phase: Some(Phase::Running),
            started_at: Some(crate::status::rfc3339(started)),
            agents: vec![crate::crd::AgentReport {
                node: "w1".into(),
                observed_generation: 1,
                pods: 10,
                ..Default::default()
            }],
            ..ConstellationStatus::default()
        });
        let running: Vec<Pod> =
            children::pods(&cst, &plan).into_iter().map(|p| with_phase(p, "Running", "w1")).collect();
        let as_json = serde_json::to_value(&cst).unwrap();
        let (ctx, verifier) = fixtures::context();
        // The last handover count was at sim time 0: ten minutes are due.
        lock(&ctx.handovers_counted).insert(cst.uid().unwrap(), SimTime::ZERO);
        let verifier = verifier.run(vec![
            Expect::one("PATCH", "/api/v1/namespaces/test/services/tiny?", echo()),
            Expect::one("PATCH", "/api/v1/namespaces/test/configmaps/tiny-hosts?", echo()),
            Expect::one("GET", PODS, object(pod_list(running))),
            Expect::one("PATCH", format!("{CST}/status?"), object(as_json)),
            Expect::one("POST", EVENTS, echo()),
            Expect::one("POST", EVENTS, echo()),
        ]);
        let action = reconcile(Arc::new(cst), ctx.clone()).await.unwrap();
        assert_eq!(action, Action::requeue(Settings::default().resync));
        let seen = verifier.await.unwrap();
        assert_eq!(seen[3][0]["status"]["phase"], "Running");
        assert_eq!(seen[3][0]["status"]["activeFaults"], json!(["nodeDown on ring-0-3"]));
        assert_eq!(
            (seen[4][0]["reason"].as_str(), seen[4][0]["type"].as_str()),
            (Some("FaultBegun"), Some("Warning"))
        );
        assert_eq!(seen[5][0]["reason"], "Handovers");
        let note = seen[5][0]["note"].as_str().unwrap();
        assert!(note.contains("ground-link handovers from sim time 0 s to 60"), "{note}");
    }

    #[tokio::test]
    async fn an_api_error_fails_the_reconcile_and_the_policy_requeues_and_counts_it() {
        let (cst, _) = constellation(TINY);
        let cst = with_finalizer(cst);
        let (result, _, ctx) = reconcile_with(
            cst.clone(),
            vec![Expect::one("PATCH", "/api/v1/namespaces/test/services/tiny?", conflict())],
        )
        .await;
        let error = result.unwrap_err();
        assert!(
            error.to_string().contains("applying Service tiny: the object has been modified (409"),
            "{error}"
        );
        assert_eq!(error_policy(Arc::new(cst), &error, ctx.clone()), Action::requeue(Duration::from_secs(5)));
        assert!(
            ctx.metrics.encode().contains("orbitnet_operator_reconcile_errors_total{error=\"api_409\"} 1")
        );
    }

    fn with_phase(mut pod: Pod, phase: &str, host: &str) -> Pod {
        pod.status =
            Some(k8s_openapi::api::core::v1::PodStatus { phase: Some(phase.into()), ..Default::default() });
        pod.spec.as_mut().unwrap().node_name = Some(host.into());
        pod
    }

    #[test]
    fn missing_pods_are_created_and_matching_ones_left_alone() {
        let (cst, plan) = constellation(TINY);
        let wanted = children::pods(&cst, &plan);
        let existing: Vec<Pod> =
            wanted[..4].iter().cloned().map(|p| with_phase(p, "Running", "w1")).collect();
        let c = pod_changes(wanted, existing);
        assert_eq!(c.create.len(), 6);
        assert!(c.roll.is_empty() && c.remove.is_empty());
        assert_eq!(c.views.iter().filter(|v| v.phase == "Running").count(), 4);
        assert_eq!(c.views[0].host.as_deref(), Some("w1"));
    }

    #[test]
    fn changed_templates_and_failed_pods_roll_and_unwanted_pods_go() {
        let (cst, plan) = constellation(TINY);
        let mut existing: Vec<Pod> =
            children::pods(&cst, &plan).into_iter().map(|p| with_phase(p, "Running", "w1")).collect();
        existing[1]
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(ANNOTATION_TEMPLATE_HASH.into(), "old".into());
        existing[2].status.as_mut().unwrap().phase = Some("Failed".into());
        let mut gone = existing[0].clone();
        gone.metadata.name = Some("tiny-ring-0-99".into());
        existing.push(gone);
        let c = pod_changes(children::pods(&cst, &plan), existing);
        assert!(c.create.is_empty());
        assert_eq!(c.roll, vec!["tiny-ring-0-1".to_owned(), "tiny-ring-0-2".to_owned()]);
        assert_eq!(c.remove, vec!["tiny-ring-0-99".to_owned()]);
        assert_eq!(c.views.len(), plan.nodes.len());
    }

    #[test]
    fn terminating_pods_are_waited_for_not_recreated() {
        let (cst, plan) = constellation(TINY);
        let wanted = children::pods(&cst, &plan);
        let mut old = with_phase(wanted[0].clone(), "Running", "w1");
        old.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        let c = pod_changes(wanted, vec![old]);
        assert_eq!(c.create.len(), plan.nodes.len() - 1);
        assert_eq!(c.views[0].phase, "Terminating");
    }
}
