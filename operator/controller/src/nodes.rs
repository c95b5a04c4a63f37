//! The Kubernetes nodes' health, as the status needs it. A node whose kubelet stopped (a
//! machine lost, cut off or rebooting) goes `Ready=Unknown` after the node controller's grace
//! period (40 s by default), but its pods keep phase `Running` until they are evicted
//! minutes later: without the nodes, the operator would call such a constellation Running.

use std::collections::{BTreeMap, HashMap};

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ResourceExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{info, warn};

/// Why `node` is not Ready, or `None` if it is (or has not reported a Ready condition yet:
/// a node just registering is not damage).
pub fn unready(node: &Node) -> Option<String> {
    let ready = node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    if ready.status == "True" {
        return None;
    }
    let mut why = format!("Ready={}", ready.status);
    match (ready.reason.as_deref(), ready.message.as_deref()) {
        (Some(reason), Some(message)) => why.push_str(&format!(" ({reason}: {message})")),
        (Some(reason), None) => why.push_str(&format!(" ({reason})")),
        (None, Some(message)) => why.push_str(&format!(" ({message})")),
        (None, None) => {}
    }
    if let Some(since) = &ready.last_transition_time {
        why.push_str(&format!(" since {}", since.0));
    }
    Some(why)
}

/// The nodes that are not Ready among `hosts`, and why, as the watch cache has them. An
/// empty cache (the watch has not listed yet, or may not list nodes) says nothing is wrong.
pub fn unready_among<'a>(
    store: &Store<Node>,
    hosts: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, String> {
    hosts
        .into_iter()
        .filter_map(|host| {
            let node = store.get(&ObjectRef::new(host))?;
            Some((host.to_owned(), unready(&node)?))
        })
        .collect()
}

/// Watches the nodes into a store, and yields once each time a node becomes Ready or stops
/// being Ready (not on every status update), so that every constellation is reconciled
/// then rather than at its next resync. A watch the API server refuses (no RBAC for nodes)
/// is logged and retried; the store then stays empty and nodes count as Ready.
pub fn watch(api: Api<Node>) -> (Store<Node>, impl Stream<Item = ()> + Send + 'static) {
    let (store, writer) = reflector::store();
    let mut known: HashMap<String, bool> = HashMap::new();
    let mut last_error: Option<String> = None;
    let changes = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects()
        .filter_map(move |event| {
            let changed = match event {
                Ok(node) => {
                    last_error = None;
                    let problem = unready(&node);
                    let is_ready = problem.is_none();
                    let was_ready = known.insert(node.name_any(), is_ready);
                    match (was_ready, problem) {
                        (Some(was), _) if was == is_ready => false,
                        (_, Some(why)) => {
                            info!(node = %node.name_any(), %why, "a node is not Ready");
                            true
                        }
                        (Some(_), None) => {
                            info!(node = %node.name_any(), "a node is Ready again");
                            true
                        }
                        (None, None) => false,
                    }
                }
                Err(error) => {
                    let text = error.to_string();
                    if last_error.as_ref() != Some(&text) {
                        warn!(error = %text, "watching the nodes (pods on a node that is not Ready are not noticed until this works)");
                        last_error = Some(text);
                    }
                    false
                }
            };
            futures::future::ready(changed.then_some(()))
        });
    (store, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn node(name: &str, ready: Option<(&str, Option<&str>, Option<&str>)>) -> Node {
        let conditions = ready.map(|(status, reason, message)| {
            vec![NodeCondition {
                type_: "Ready".into(),
                status: status.into(),
                reason: reason.map(str::to_owned),
                message: message.map(str::to_owned),
                last_transition_time: Some(Time("2026-12-01T12:00:03Z".parse().unwrap())),
                ..NodeCondition::default()
            }]
        });
        Node {
            metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
            status: Some(NodeStatus { conditions, ..NodeStatus::default() }),
            ..Node::default()
        }
    }

    #[test]
    fn a_node_is_unready_unless_its_ready_condition_is_true() {
        assert_eq!(unready(&node("a", Some(("True", Some("KubeletReady"), None)))), None);
        assert_eq!(unready(&node("a", None)), None, "no Ready condition yet: registering");
        assert_eq!(
            unready(&node(
                "b",
                Some(("Unknown", Some("NodeStatusUnknown"), Some("Kubelet stopped posting node status.")))
            ))
            .as_deref(),
            Some(
                "Ready=Unknown (NodeStatusUnknown: Kubelet stopped posting node status.) since 2026-12-01T12:00:03Z"
            )
        );
        assert_eq!(
            unready(&node("c", Some(("False", Some("KubeletNotReady"), None)))).as_deref(),
            Some("Ready=False (KubeletNotReady) since 2026-12-01T12:00:03Z")
        );
    }

    #[test]
    fn only_the_hosts_asked_for_and_known_to_be_unready_are_named() {
        let (store, mut writer) = reflector::store::<Node>();
        for n in [
            node("w1", Some(("True", None, None))),
            node("w2", Some(("Unknown", Some("NodeStatusUnknown"), None))),
            node("w3", Some(("False", None, None))),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(n));
        }
        let unready = unready_among(&store, ["w1", "w2", "gone"]);
        assert_eq!(unready.keys().collect::<Vec<_>>(), ["w2"]);
        assert!(unready["w2"].starts_with("Ready=Unknown (NodeStatusUnknown)"), "{unready:?}");
    }
}
