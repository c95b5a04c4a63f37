//! The labels and annotations orbitnet puts on the objects it makes: how the operator
//! finds its pods again and how an agent finds the constellation pods on its node.

/// On every pod of a constellation: the constellation's name.
pub const LABEL_CONSTELLATION: &str = "orbitnet.dev/constellation";
/// On every pod: the node (satellite, station, platform) it runs.
pub const LABEL_NODE: &str = "orbitnet.dev/node";
/// On every pod: the node's role (`satellite`, `ground-station`, `platform`).
pub const LABEL_ROLE: &str = "orbitnet.dev/role";
/// On a satellite's pod when `spec.placement.groups` is above 1: its placement group
/// (`0`, `1`, ...), whose pods share a Kubernetes node.
pub const LABEL_GROUP: &str = "orbitnet.dev/group";
/// Hash of what a pod was built from; a pod whose hash differs from the wanted one is rolled.
pub const ANNOTATION_TEMPLATE_HASH: &str = "orbitnet.dev/template-hash";
/// The node's emulated address, for the agent and for people reading `kubectl get pod -o yaml`.
pub const ANNOTATION_ADDRESS: &str = "orbitnet.dev/address";
