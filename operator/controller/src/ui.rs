//! The browser view of every Constellation the operator watches (`orbitnet operator --ui`),
//! at `/ui/<namespace>/<name>/`: each spec compiled once per generation into a plan view
//! that starts at the cluster's time and shows the objectives as the cluster judged them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use orbitnet_api::Constellation;
use orbitnet_model::{SimTime, SpecDuration};
use orbitnet_view::{ObjectiveView, PlanView, Source, SourceKind};

/// How far the slider reaches for a constellation without a duration; past it the page
/// stays at its end.
const OPEN_ENDED: SpecDuration = SpecDuration::from_secs(24 * 3600);

/// A constellation's view, and the object (uid) and generation of the spec it was
/// compiled from.
type Compiled = (Option<String>, Option<i64>, Arc<PlanView>);

pub struct Views {
    store: Store<Constellation>,
    /// By (namespace, name).
    cache: Mutex<HashMap<(String, String), Compiled>>,
}

impl Views {
    pub fn new(store: Store<Constellation>) -> Arc<Self> {
        Arc::new(Views { store, cache: Mutex::default() })
    }

    pub fn list(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> =
            self.store.state().iter().map(|c| (c.namespace().unwrap_or_default(), c.name_any())).collect();
        all.sort();
        all
    }

    /// The view of one constellation, compiled again when its spec changed or it was
    /// recreated; views of constellations gone are dropped (their scans stop).
    pub fn lookup(&self, namespace: &str, name: &str) -> Result<Source, String> {
        let live = self.list();
        // A poisoned lock only means a lookup panicked; the cache is still whole.
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|key, _| live.binary_search(key).is_ok());
        let cst = self
            .store
            .get(&ObjectRef::new(name).within(namespace))
            .ok_or_else(|| format!("no constellation {namespace}/{name}"))?;
        let key = (namespace.to_owned(), name.to_owned());
        let (uid, generation) = (cst.metadata.uid.clone(), cst.metadata.generation);
        let view = match cache.get(&key) {
            Some((u, g, view)) if *u == uid && *g == generation => Arc::clone(view),
            _ => {
                let plan = orbitnet_model::compile(name, &cst.spec)
                    .map_err(|e| format!("constellation {namespace}/{name} does not compile: {e}"))?;
                let duration = plan.duration.unwrap_or(OPEN_ENDED);
                let to = SimTime::ZERO.checked_add(duration).ok_or_else(|| {
                    format!("constellation {namespace}/{name}: duration {duration} is too long")
                })?;
                let view = PlanView::new(Arc::new(plan), SourceKind::Cluster, SimTime::ZERO, to);
                cache.insert(key, (uid, generation, Arc::clone(&view)));
                view
            }
        };
        drop(cache);
        let status = cst.status.as_ref();
        let now = orbitnet_api::sim_time(status.and_then(|s| s.started_at.as_deref()), chrono::Utc::now());
        let objectives = status
            .map(|s| {
                s.objectives
                    .iter()
                    .map(|o| ObjectiveView {
                        name: o.name.clone(),
                        result: o.result.clone(),
                        value: o.value,
                        detail: o.detail.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        view.set_cluster(now, objectives);
        Ok(Source::Plan(view))
    }

    /// The router of every constellation's page.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let (lookup, list) = (Arc::clone(self), Arc::clone(self));
        orbitnet_view::multi_router(
            Arc::new(move |ns, name| lookup.lookup(ns, name)),
            Arc::new(move || list.list()),
        )
    }
}
