//! How each link of a constellation is wired from one Kubernetes node: a veth pair when both
//! pods run here, a VXLAN end towards the peer pod's node when only one does, nothing when
//! neither does. Every agent computes this from the same plan and pod placement, so the two
//! agents of a cross-node link agree on its VNI and on each other's address without talking.

use std::collections::HashMap;
use std::net::IpAddr;

use orbitnet_model::{NodeIdx, Plan};

/// VNIs are 24 bits; 0 is not used.
const VNI_LIMIT: u32 = 1 << 24;
/// VXLAN UDP ports are spread over this range by constellation, so that two constellations
/// on one cluster (whose VNIs both start at 1) do not share a port.
const PORT_BASE: u16 = 20_000;
const PORT_SPAN: u16 = 10_000;

/// Where a node's pod runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The Kubernetes node's name.
    pub host: String,
    /// The Kubernetes node's address (the pod's `status.hostIP`): the VXLAN underlay.
    pub host_ip: IpAddr,
}

/// One link end this agent builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Both pods are here: one veth pair joins `a` and `b`.
    Veth { a: NodeIdx, b: NodeIdx },
    /// `node` is here, `peer` on another host: a VXLAN interface in `node`'s pod, tunnelled
    /// from `local` to `remote` with `vni` on UDP `port`.
    Vxlan { node: NodeIdx, peer: NodeIdx, vni: u32, port: u16, local: IpAddr, remote: IpAddr },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WiringError {
    #[error("{a} - {b} is not a link of this constellation")]
    NotALink { a: String, b: String },
    #[error("link {a} - {b}: slot {slot} gives no VXLAN id below 2^24; use a smaller linkCidr")]
    VniOverflow { a: String, b: String, slot: u32 },
}

/// The VXLAN UDP port of a constellation (`namespace/name`), the same on every agent.
pub fn vxlan_port(namespace: &str, name: &str) -> u16 {
    let hash = orbitnet_model::fnv1a_64(format!("{namespace}/{name}").bytes());
    // The remainder is below PORT_SPAN, which fits in u16.
    PORT_BASE + (hash % u64::from(PORT_SPAN)) as u16
}

/// The VXLAN id of the link between `a` and `b`: its address slot + 1, unique in the
/// constellation.
pub fn vni(plan: &Plan, a: NodeIdx, b: NodeIdx) -> Result<u32, WiringError> {
    let names = || (plan.node(a).name.clone(), plan.node(b).name.clone());
    let slot = plan.link_slot(a, b).ok_or_else(|| {
        let (a, b) = names();
        WiringError::NotALink { a, b }
    })?;
    match slot.checked_add(1).filter(|&v| v < VNI_LIMIT) {
        Some(v) => Ok(v),
        None => {
            let (a, b) = names();
            Err(WiringError::VniOverflow { a, b, slot })
        }
    }
}

/// What this agent (on Kubernetes node `here`) builds for the link `a` - `b`, given where
/// the pods run. A pod not placed yet (not scheduled) makes the link wait: nothing to build.
pub fn ends_here(
    plan: &Plan,
    a: NodeIdx,
    b: NodeIdx,
    placements: &HashMap<NodeIdx, Placement>,
    here: &str,
    port: u16,
) -> Result<Vec<End>, WiringError> {
    let (Some(pa), Some(pb)) = (placements.get(&a), placements.get(&b)) else { return Ok(Vec::new()) };
    let vxlan = |node: NodeIdx,
                 peer: NodeIdx,
                 local: &Placement,
                 remote: &Placement|
     -> Result<Vec<End>, WiringError> {
        let vni = vni(plan, a, b)?;
        Ok(vec![End::Vxlan { node, peer, vni, port, local: local.host_ip, remote: remote.host_ip }])
    };
    match (pa.host == here, pb.host == here) {
        (true, true) => Ok(vec![End::Veth { a: a.min(b), b: a.max(b) }]),
        (true, false) => vxlan(a, b, pa, pb),
        (false, true) => vxlan(b, a, pb, pa),
        (false, false) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

    fn plan() -> Plan {
        orbitnet_model::compile_yaml(TINY).unwrap()
    }

    fn at(host: &str, ip: &str) -> Placement {
        Placement { host: host.into(), host_ip: ip.parse().unwrap() }
    }

    #[test]
    fn both_pods_here_is_one_veth_one_elsewhere_is_a_vxlan_end_each() {
        let p = plan();
        let (a, b) = (p.node_index("ring-0-0").unwrap(), p.node_index("ring-0-1").unwrap());
        let mut placed = HashMap::from([(a, at("w1", "10.0.0.1")), (b, at("w1", "10.0.0.1"))]);
        assert_eq!(ends_here(&p, b, a, &placed, "w1", 20_001).unwrap(), vec![End::Veth { a, b }]);
        assert!(ends_here(&p, a, b, &placed, "w2", 20_001).unwrap().is_empty(), "nothing of it on w2");

        placed.insert(b, at("w2", "10.0.0.2"));
        let on_w1 = ends_here(&p, a, b, &placed, "w1", 20_001).unwrap();
        let on_w2 = ends_here(&p, a, b, &placed, "w2", 20_001).unwrap();
        let vni = vni(&p, a, b).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            on_w1,
            vec![End::Vxlan {
                node: a,
                peer: b,
                vni,
                port: 20_001,
                local: ip("10.0.0.1"),
                remote: ip("10.0.0.2")
            }]
        );
        assert_eq!(
            on_w2,
            vec![End::Vxlan {
                node: b,
                peer: a,
                vni,
                port: 20_001,
                local: ip("10.0.0.2"),
                remote: ip("10.0.0.1")
            }]
        );
    }

    #[test]
    fn an_unscheduled_pod_waits_and_a_non_link_is_an_error() {
        let p = plan();
        let (a, b) = (p.node_index("ring-0-0").unwrap(), p.node_index("ring-0-1").unwrap());
        let placed = HashMap::from([(a, at("w1", "10.0.0.1"))]);
        assert!(ends_here(&p, a, b, &placed, "w1", 20_001).unwrap().is_empty());
        let (alpha, bravo) = (p.node_index("alpha").unwrap(), p.node_index("bravo").unwrap());
        let placed = HashMap::from([(alpha, at("w1", "10.0.0.1")), (bravo, at("w2", "10.0.0.2"))]);
        let err = ends_here(&p, alpha, bravo, &placed, "w1", 20_001).unwrap_err();
        assert_eq!(err.to_string(), "alpha - bravo is not a link of this constellation");
    }

    #[test]
    fn vnis_are_unique_in_a_constellation_and_ports_differ_between_constellations() {
        let p = plan();
        let mut seen = std::collections::HashSet::new();
        let sats = 0..p.n_sats as NodeIdx;
        for a in sats.clone() {
            for b in (a + 1)..p.n_sats as NodeIdx {
                if let Ok(v) = vni(&p, a, b) {
                    assert!(v > 0 && v < VNI_LIMIT);
                    assert!(seen.insert(v), "VNI {v} given twice");
                }
            }
            for g in p.ground_range() {
                assert!(seen.insert(vni(&p, a, g as NodeIdx).unwrap()), "ground links get VNIs too");
            }
        }
        assert_eq!(vxlan_port("default", "tiny"), vxlan_port("default", "tiny"));
        assert_ne!(vxlan_port("default", "tiny"), vxlan_port("default", "backbone"));
        assert!((PORT_BASE..PORT_BASE + PORT_SPAN).contains(&vxlan_port("team-a", "starlink")));
    }
}
