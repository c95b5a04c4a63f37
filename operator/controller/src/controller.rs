//! The reconciler: for each Constellation, its children (server-side applied, owned), its
//! status (server-side applied to the status subresource), its events, and the finalizer
//! that lets the link agents remove links before the resource goes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, ResourceExt};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use orbitnet_model::{Plan, SimTime, SpecDuration};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::status::{self, Observed, PodView};
use crate::{children, nodes};
use orbitnet_api::crd::{Constellation, ConstellationStatus, Phase};
use orbitnet_api::labels::ANNOTATION_TEMPLATE_HASH;

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
    /// Who writes the events (`reportingInstance`): the pod's name, or the host's.
    pub instance: String,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// The Kubernetes nodes, as the node watch has them (empty until it has listed them).
    pub nodes: Store<Node>,
    memory: Mutex<HashMap<String, Memory>>,
    /// Makes event names unique within one nanosecond.
    events_sent: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// What the operator remembers of a constellation (by uid) between reconciles. A reconcile
/// starts from the watch cache, which may predate the operator's own last status write:
/// while the operator lives, its own account wins (the leader lease makes it the only
/// writer).
#[derive(Debug, Default)]
struct Memory {
    /// The status this operator last wrote (everything but the agents' entries).
    written: Option<ConstellationStatus>,
    /// Sim time up to which fault crossings have been reported.
    faults_reported_to: Option<SimTime>,
    /// Sim time up to which handovers have been counted, in whole minutes.
    handovers_counted_to: Option<SimTime>,
    /// When this operator first saw the constellation being deleted.
    deletion_seen: Option<Instant>,
    /// Reconciles failed in a row, for the error backoff.
    failures: u32,
}

impl Context {
    pub fn new(
        client: Client,
        instance: String,
        metrics: Arc<Metrics>,
        settings: Settings,
        nodes: Store<Node>,
    ) -> Self {
        Self {
            client,
            instance,
            metrics,
            settings,
            nodes,
            memory: Mutex::new(HashMap::new()),
            events_sent: AtomicU64::new(0),
        }
    }

    fn remember<T>(&self, uid: &str, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(lock(&self.memory).entry(uid.to_owned()).or_default())
    }

    fn forget(&self, uid: &str) {
        lock(&self.memory).remove(uid);
        self.metrics.forget(uid);
    }
}

pub async fn reconcile(cst: Arc<Constellation>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started();
    let ns = cst.namespace().ok_or_else(|| Error::NoNamespace(cst.name_any()))?;
    let api: Api<Constellation> = Api::namespaced(ctx.client.clone(), &ns);
    let action = if cst.metadata.deletion_timestamp.is_some() {
        cleanup(&cst, &api, &ctx).await?
    } else {
        if !cst.finalizers().iter().any(|f| f == FINALIZER) {
            add_finalizer(&cst, &api).await?;
        }
        apply(&cst, &api, &ns, &ctx).await?
    };
    ctx.remember(&uid_of(&cst), |m| m.failures = 0);
    Ok(action)
}

/// Requeues after a backoff that doubles with each failure in a row (5 s up to 5 min); the
/// error is in the log and the metrics.
pub fn error_policy(cst: Arc<Constellation>, error: &Error, ctx: Arc<Context>) -> Action {
    warn!(constellation = %cst.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_failed(&error.metric_label());
    let failures = ctx.remember(&uid_of(&cst), |m| {
        m.failures = m.failures.saturating_add(1);
        m.failures
    });
    Action::requeue(error_backoff(failures))
}

const FIRST_RETRY: Duration = Duration::from_secs(5);
const LAST_RETRY: Duration = Duration::from_secs(300);
/// How often a deleted constellation checks whether its agents are done.
const CLEANUP_POLL: Duration = Duration::from_secs(2);
/// The safety-net requeue while pods are created (pod and agent changes wake it sooner).
const CREATING_RESYNC: Duration = Duration::from_secs(30);
const MINUTE: SpecDuration = SpecDuration::from_secs(60);
/// Handover events one reconcile publishes at most (after a long pause, the rest are skipped).
const MAX_HANDOVER_EVENTS: usize = 5;

fn error_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(10);
    (FIRST_RETRY * 2u32.pow(doublings)).min(LAST_RETRY)
}

fn uid_of(cst: &Constellation) -> String {
    cst.uid().unwrap_or_default()
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
    let uid = uid_of(cst);
    // Counted on this operator's clock from when it first saw the deletion: the server's
    // deletionTimestamp is another host's clock.
    let waited = ctx.remember(&uid, |m| m.deletion_seen.get_or_insert_with(Instant::now).elapsed());
    let timed_out = waited >= ctx.settings.cleanup_timeout;
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
            remove_finalizer(cst, api).await?;
            publish(ctx, cst, type_, reason, note).await;
            ctx.forget(&uid);
            info!(constellation = %name, forced, timed_out, "finalized");
            Ok(Action::await_change())
        }
        None => {
            debug!(constellation = %name, waiting_for = ?agents, "waiting for the link agents to remove links");
            Ok(Action::requeue(CLEANUP_POLL))
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
    let uid = uid_of(cst);
    let previous = previous_status(cst, ctx.remember(&uid, |m| m.written.clone()));
    let previous = previous.as_ref();
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
                unready_nodes: &BTreeMap::new(),
                now: Utc::now(),
            });
            let first_time = previous.is_none_or(|p| p.observed_generation != cst.metadata.generation);
            write_status(api, &name, &status).await?;
            ctx.remember(&uid, |m| m.written = Some(status));
            if first_time {
                publish(ctx, cst, EventType::Warning, "InvalidSpec", message).await;
            }
            ctx.metrics.set_phase(&uid, Phase::Failed);
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
    let changes = pod_changes(children::pods(cst, &plan), existing, &uid);
    if changes.foreign > 0 {
        warn!(constellation = %name, pods = changes.foreign, "pods with this constellation's label that it does not own are left alone");
    }
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
    let unready_nodes =
        nodes::unready_among(&ctx.nodes, changes.views.iter().filter_map(|p| p.host.as_deref()));
    let status = status::compute(&Observed {
        generation: cst.metadata.generation,
        previous,
        plan: Ok(&plan),
        pods: &changes.views,
        unready_nodes: &unready_nodes,
        now,
    });
    write_status(api, &name, &status).await?;
    ctx.remember(&uid, |m| m.written = Some(status.clone()));
    let phase = status.phase.unwrap_or(Phase::Pending);
    ctx.metrics.set_phase(&uid, phase);
    report_changes(ctx, cst, &plan, previous, &status, now).await;

    Ok(match phase {
        Phase::Running | Phase::Degraded => Action::requeue(ctx.settings.resync),
        Phase::Pending | Phase::Creating => Action::requeue(CREATING_RESYNC),
        Phase::Failed => Action::await_change(),
        // Agents may still withdraw; nothing runs out of time any more.
        Phase::Finished => Action::requeue(ctx.settings.resync),
    })
}

/// The status a reconcile starts from: the one this operator last wrote if it wrote one
/// (the watch cache may not have it yet), with the agents' entries from the cache.
fn previous_status(cst: &Constellation, written: Option<ConstellationStatus>) -> Option<ConstellationStatus> {
    match written {
        Some(mut status) => {
            status.agents = cst.status.as_ref().map(|s| s.agents.clone()).unwrap_or_default();
            Some(status)
        }
        None => cst.status.clone(),
    }
}

/// What to do with the pods: create the missing, roll the stale, remove the unwanted.
#[derive(Debug, Default)]
struct PodChanges {
    create: Vec<Pod>,
    roll: Vec<String>,
    remove: Vec<String>,
    /// The pods as they will be once the changes are made (deleted ones left out).
    views: Vec<PodView>,
    /// Pods with the constellation's label that another owner controls: never touched.
    foreign: usize,
}

fn pod_changes(wanted: Vec<Pod>, existing: Vec<Pod>, owner_uid: &str) -> PodChanges {
    let owned =
        |p: &Pod| p.owner_references().iter().any(|o| o.controller == Some(true) && o.uid == owner_uid);
    let mut changes = PodChanges::default();
    let (existing, foreign): (Vec<Pod>, Vec<Pod>) = existing.into_iter().partition(owned);
    changes.foreign = foreign.len();
    let foreign: std::collections::BTreeSet<String> = foreign.iter().map(|p| p.name_any()).collect();
    let mut existing: BTreeMap<String, Pod> = existing.into_iter().map(|p| (p.name_any(), p)).collect();
    for pod in wanted {
        let name = pod.name_any();
        match existing.remove(&name) {
            // The name is taken by a pod of another owner (an earlier constellation of the
            // same name, still going): created once it is gone.
            None if foreign.contains(&name) => {
                changes.views.push(PodView { name, host: None, phase: "Terminating".into() });
            }
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
        "apiVersion": format!("{}/{}", orbitnet_api::crd::GROUP, orbitnet_api::crd::VERSION),
        "kind": orbitnet_api::crd::KIND,
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(body))
        .await
        .map_err(Error::kube(format!("writing the status of {name}")))?;
    Ok(())
}

/// Events for what changed since the last status: the phase; each fault that began or
/// ended since the last report (crossings from the plan, so short faults are not missed);
/// and the ground-link handovers of each minute of emulation time (not one per handover).
/// Faults and handovers are reported once the emulation clock runs (`startedAt`).
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
        let met = status.conditions.iter().find(|c| c.type_ == status::OBJECTIVES_MET);
        let note = match (phase, met) {
            (Phase::Finished, Some(c)) => format!("{}: {}", c.reason, c.message),
            _ => note,
        };
        let warn =
            phase == Phase::Degraded || (phase == Phase::Finished && met.is_some_and(|c| c.status != "True"));
        let type_ = if warn { EventType::Warning } else { EventType::Normal };
        publish(ctx, cst, type_, phase.as_str(), note).await;
    }
    // An objective failing is news once (the agents judge while the run lasts).
    for o in status.objectives.iter().filter(|o| o.result == "FAIL") {
        let failed_before =
            previous.is_some_and(|p| p.objectives.iter().any(|b| b.name == o.name && b.result == "FAIL"));
        if !failed_before {
            let note = format!("{} ({}, {}): {}", o.name, o.requirement, o.window, o.detail);
            publish(ctx, cst, EventType::Warning, "ObjectiveFailed", note).await;
        }
    }
    let Some(sim) = orbitnet_api::sim_time(status.started_at.as_deref(), now) else { return };
    let uid = uid_of(cst);
    let just_started = previous.is_none_or(|p| p.started_at.is_none());
    // Right after the start, faults that begin at 0 are news; after an operator restart,
    // only what happens from now on is.
    let first = if just_started { SimTime::from_nanos(-1) } else { sim };
    let faults_from = ctx.remember(&uid, |m| *m.faults_reported_to.get_or_insert(first));
    for f in &plan.faults {
        let crossed = |t: SimTime| faults_from < t && t <= sim;
        let what = f.describe(plan);
        if crossed(f.start) {
            publish(ctx, cst, EventType::Warning, "FaultBegun", what.clone()).await;
        }
        if f.end.is_some_and(crossed) {
            publish(ctx, cst, EventType::Normal, "FaultEnded", what).await;
        }
    }
    ctx.remember(&uid, |m| m.faults_reported_to = Some(sim));

    let mut from = ctx.remember(&uid, |m| {
        *m.handovers_counted_to.get_or_insert(if just_started { SimTime::ZERO } else { sim })
    });
    let minute_ns = i64::try_from(MINUTE.as_nanos()).unwrap_or(i64::MAX);
    let due = usize::try_from((sim.as_nanos() - from.as_nanos()) / minute_ns).unwrap_or(0);
    if due > MAX_HANDOVER_EVENTS {
        from = SimTime::from_nanos(from.as_nanos() + (due - MAX_HANDOVER_EVENTS) as i64 * minute_ns);
    }
    let mut timeline = plan.timeline().without_routes();
    while sim.as_nanos() - from.as_nanos() >= minute_ns {
        let to = SimTime::from_nanos(from.as_nanos() + minute_ns);
        let handovers = timeline.handovers_between(plan, from, to);
        let note = format!("{handovers} ground-link handovers from sim time {from} s to {to} s");
        publish(ctx, cst, EventType::Normal, "Handovers", note).await;
        from = to;
    }
    ctx.remember(&uid, |m| m.handovers_counted_to = Some(from));
}

/// Events are best effort: a failure to record one is logged, never fails the reconcile.
/// Each is a new events.k8s.io/v1 Event: kube's Recorder would fold events of the same
/// reason into one series showing the first note only (two faults, or two minutes of
/// handovers, would read as one).
async fn publish(ctx: &Context, cst: &Constellation, type_: EventType, reason: &str, note: String) {
    let now = k8s_openapi::jiff::Timestamp::now();
    let n = ctx.events_sent.fetch_add(1, Ordering::Relaxed);
    // The API limits a note to 1 kB.
    let note: String = note.chars().take(1000).collect();
    let event = KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}.{n}", cst.name_any(), now.as_nanosecond())),
            namespace: cst.namespace(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some("Reconcile".into()),
        reason: Some(reason.into()),
        note: Some(note),
        regarding: Some(cst.object_ref(&())),
        reporting_controller: Some(MANAGER.into()),
        reporting_instance: Some(ctx.instance.clone()),
        type_: Some(match type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        ..KubeEvent::default()
    };
    let api: Api<KubeEvent> = Api::namespaced(ctx.client.clone(), &cst.namespace().unwrap_or_default());
    if let Err(error) = api.create(&PostParams::default(), &event).await {
        warn!(constellation = %cst.name_any(), reason, %error, "could not record an event");
    }
}

use crate::lock;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, Expect, conflict, echo, object};
    use crate::testdata::{TINY, constellation};
    use serde_json::Value;

    const CST: &str = "/apis/orbitnet.dev/v1alpha1/namespaces/test/constellations/tiny";
    const UID: &str = "0d6e6a1c-5a6b-4c1e-9a53-0123456789ab";
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
        let (seen, _handle) = tokio::time::timeout(Duration::from_secs(10), verifier)
            .await
            .expect("the reconcile made fewer requests than expected")
            .expect("the verifier's expectations hold");
        (result, seen, ctx)
    }

    fn being_deleted(mut cst: Constellation) -> Constellation {
        cst.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()));
        cst
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
        let cst = being_deleted(with_finalizer(cst));
        let as_json = serde_json::to_value(&cst).unwrap();
        let (result, seen, _) = reconcile_with(
            cst,
            vec![Expect::one("PATCH", CST, object(as_json)), Expect::one("POST", EVENTS, echo())],
        )
        .await;
        assert_eq!(result.unwrap(), Action::await_change());
        assert_eq!(seen[0][0][1], json!({"op": "remove", "path": "/metadata/finalizers/0"}));
        assert_eq!(seen[1][0]["reason"], "LinksRemoved");
    }

    #[tokio::test]
    async fn a_deleted_constellation_waits_for_its_agents() {
        let (cst, _) = constellation(TINY);
        let mut cst = being_deleted(with_finalizer(cst));
        let agent = orbitnet_api::crd::AgentReport { node: "w1".into(), pods: 10, ..Default::default() };
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
            agents: vec![orbitnet_api::crd::AgentReport {
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
        // Reported up to sim time 0 (as if the operator last looked at the start): ten
        // minutes are due, of which the last five get an event each.
        ctx.remember(UID, |m| {
            m.faults_reported_to = Some(SimTime::ZERO);
            m.handovers_counted_to = Some(SimTime::ZERO);
        });
        let verifier = verifier.run(vec![
            Expect::one("PATCH", "/api/v1/namespaces/test/services/tiny?", echo()),
            Expect::one("PATCH", "/api/v1/namespaces/test/configmaps/tiny-hosts?", echo()),
            Expect::one("GET", PODS, object(pod_list(running))),
            Expect::one("PATCH", format!("{CST}/status?"), object(as_json)),
            Expect::many("POST", EVENTS, 1 + MAX_HANDOVER_EVENTS, echo()),
        ]);
        let action = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(cst), ctx.clone()))
            .await
            .expect("no unplanned request")
            .unwrap();
        assert_eq!(action, Action::requeue(Settings::default().resync));
        let (seen, _handle) = verifier.await.unwrap();
        assert_eq!(seen[3][0]["status"]["phase"], "Running");
        assert_eq!(seen[3][0]["status"]["activeFaults"], json!(["nodeDown on ring-0-3"]));
        let events = &seen[4];
        assert_eq!(
            (events[0]["reason"].as_str(), events[0]["type"].as_str()),
            (Some("FaultBegun"), Some("Warning"))
        );
        assert_eq!(events[0]["note"], "nodeDown on ring-0-3");
        let notes: Vec<&str> = events[1..].iter().map(|e| e["note"].as_str().unwrap()).collect();
        assert!(events[1..].iter().all(|e| e["reason"] == "Handovers"));
        assert!(notes[0].ends_with("handovers from sim time 300 s to 360 s"), "{notes:?}");
        assert!(notes[4].ends_with("handovers from sim time 540 s to 600 s"), "{notes:?}");
        assert_eq!(ctx.remember(UID, |m| m.handovers_counted_to), Some(SimTime::from_nanos(600_000_000_000)));
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
        let c = pod_changes(wanted, existing, UID);
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
        let c = pod_changes(children::pods(&cst, &plan), existing, UID);
        assert!(c.create.is_empty());
        assert_eq!(c.roll, vec!["tiny-ring-0-1".to_owned(), "tiny-ring-0-2".to_owned()]);
        assert_eq!(c.remove, vec!["tiny-ring-0-99".to_owned()]);
        assert_eq!(c.views.len(), plan.nodes.len());
    }

    #[test]
    fn pods_of_another_owner_are_never_touched() {
        let (cst, plan) = constellation(TINY);
        let wanted = children::pods(&cst, &plan);
        let mut stranger = with_phase(wanted[0].clone(), "Running", "w1");
        stranger.metadata.owner_references.as_mut().unwrap()[0].uid = "an-earlier-tiny".into();
        let mut extra = stranger.clone();
        extra.metadata.name = Some("tiny-ring-0-42".into());
        let c = pod_changes(wanted, vec![stranger, extra], UID);
        assert_eq!(c.foreign, 2);
        assert!(c.remove.is_empty() && c.roll.is_empty(), "not ours to delete");
        assert_eq!(c.create.len(), plan.nodes.len() - 1, "its name is taken until it goes");
        assert_eq!(c.views[0].phase, "Terminating");
    }

    #[test]
    fn terminating_pods_are_waited_for_not_recreated() {
        let (cst, plan) = constellation(TINY);
        let wanted = children::pods(&cst, &plan);
        let mut old = with_phase(wanted[0].clone(), "Running", "w1");
        old.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
        let c = pod_changes(wanted, vec![old], UID);
        assert_eq!(c.create.len(), plan.nodes.len() - 1);
        assert_eq!(c.views[0].phase, "Terminating");
    }
}
