//! The link agent (`orbitnet agent`, a DaemonSet): on each Kubernetes node it finds the
//! network namespaces of the constellation pods there, builds their link ends (veth when
//! both pods are on this node, VXLAN to the peer's node when not) and applies the model's
//! state every tick, through the same dataplane as the local runner.
//!
//! Pure parts: which pod a process belongs to (`pods`), what the cluster's pods say
//! (`cluster`), how each link is wired from this node (`wiring`), how the underlay's own
//! delay is taken out of the emulated one (`underlay`). Kernel parts: one constellation's
//! namespaces, ends and applier (`wired`), the underlay's round trips (`probe`). The loop
//! that joins them to the API server is `run`.

pub mod cluster;
pub mod pods;
pub mod probe;
pub mod run;
pub mod underlay;
pub mod wired;
pub mod wiring;
