//! What the agent reads from the cluster, reduced to what wiring needs: which emulated node
//! each constellation pod is, which Kubernetes node it runs on and at what address, and
//! which of them run here. Pure functions of the API objects.

use std::collections::HashMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Pod;
use orbitnet_api::labels::{LABEL_CONSTELLATION, LABEL_NODE};
use orbitnet_model::{NodeIdx, Plan};

use crate::wiring::Placement;

/// A constellation pod as the agent sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    pub namespace: String,
    pub constellation: String,
    /// The emulated node the pod is (its `orbitnet.dev/node` label).
    pub node: String,
    pub uid: String,
    /// `spec.nodeName`: the Kubernetes node it is scheduled on.
    pub host: Option<String>,
    /// `status.hostIP`: that node's address, the VXLAN underlay.
    pub host_ip: Option<IpAddr>,
}

/// The view of a constellation pod; `None` for pods without the labels, and for pods being
/// deleted (their namespace is going; links are not built into it).
pub fn pod_view(pod: &Pod) -> Option<PodView> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let labels = pod.metadata.labels.as_ref()?;
    Some(PodView {
        namespace: pod.metadata.namespace.clone()?,
        constellation: labels.get(LABEL_CONSTELLATION)?.clone(),
        node: labels.get(LABEL_NODE)?.clone(),
        uid: pod.metadata.uid.clone()?,
        host: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        host_ip: pod.status.as_ref().and_then(|s| s.host_ip.as_deref()).and_then(|ip| ip.parse().ok()),
    })
}

/// The pods of one constellation, placed: where each emulated node runs (pods scheduled
/// and with a host address), and the UIDs of those running on `here`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pods {
    pub placements: HashMap<NodeIdx, Placement>,
    pub local: HashMap<NodeIdx, String>,
}

/// Places `pods` (of any constellation: those of `namespace`/`plan.name` are taken) for the
/// agent on `here`. Pods naming a node the plan does not have (an older spec's) are left out.
pub fn place(plan: &Plan, namespace: &str, pods: &[PodView], here: &str) -> Pods {
    let mut placed = Pods::default();
    for pod in pods.iter().filter(|p| p.namespace == namespace && p.constellation == plan.name) {
        let (Some(node), Some(host), Some(host_ip)) = (plan.node_index(&pod.node), &pod.host, pod.host_ip)
        else {
            continue;
        };
        if host == here {
            placed.local.insert(node, pod.uid.clone());
        }
        placed.placements.insert(node, Placement { host: host.clone(), host_ip });
    }
    placed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn pod(node: &str, host: Option<&str>, ip: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("tiny-{node}")),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{node}")),
                labels: Some(BTreeMap::from([
                    (LABEL_CONSTELLATION.to_owned(), "tiny".to_owned()),
                    (LABEL_NODE.to_owned(), node.to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec { node_name: host.map(Into::into), ..PodSpec::default() }),
            status: Some(PodStatus { host_ip: ip.map(Into::into), ..PodStatus::default() }),
        }
    }

    #[test]
    fn pods_are_placed_by_host_and_only_this_hosts_are_local() {
        let plan = orbitnet_model::compile_yaml(include_str!("../../../scenarios/tiny.yaml")).unwrap();
        let mut other = pod("ring-0-1", Some("w2"), Some("10.0.0.2"));
        other.metadata.namespace = Some("team-b".into());
        let views: Vec<PodView> = [
            pod("alpha", Some("w1"), Some("10.0.0.1")),
            pod("ring-0-0", Some("w2"), Some("10.0.0.2")),
            pod("ring-0-2", None, None),
            pod("ring-0-3", Some("w1"), None),
            pod("not-in-the-plan", Some("w1"), Some("10.0.0.1")),
            other,
        ]
        .iter()
        .filter_map(pod_view)
        .collect();
        let placed = place(&plan, "default", &views, "w1");
        let idx = |n: &str| plan.node_index(n).unwrap();
        assert_eq!(placed.placements.len(), 2, "scheduled pods with a host address: {placed:?}");
        assert_eq!(placed.placements[&idx("ring-0-0")].host, "w2");
        assert_eq!(placed.local, HashMap::from([(idx("alpha"), "uid-alpha".to_owned())]));
    }

    #[test]
    fn pods_being_deleted_or_unlabelled_are_not_seen() {
        let mut going = pod("alpha", Some("w1"), Some("10.0.0.1"));
        going.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert_eq!(pod_view(&going), None);
        let mut plain = pod("alpha", Some("w1"), Some("10.0.0.1"));
        plain.metadata.labels = None;
        assert_eq!(pod_view(&plain), None);
        let seen = pod_view(&pod("alpha", Some("w1"), Some("10.0.0.1"))).unwrap();
        assert_eq!(seen.host_ip, Some("10.0.0.1".parse().unwrap()));
    }
}
