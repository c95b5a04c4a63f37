//! The link agent (`orbitnet agent`, a DaemonSet): on each Kubernetes node it finds the
//! network namespaces of the constellation pods there, builds their link ends (veth when
//! both pods are on this node, VXLAN to the peer's node when not) and applies the model's
//! state every tick, through the same dataplane as the local runner.
//!
//! This crate grows in layers; what is here so far is pure: which pod a process belongs to
//! (`pods`), how each link is wired from this node (`wiring`), and how the underlay's own
//! delay is taken out of the emulated one (`underlay`).

pub mod pods;
pub mod underlay;
pub mod wiring;
