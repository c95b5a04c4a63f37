//! orbitnet's model: a pure function from a `Constellation` spec and a time to the state of
//! every node and link. No I/O, no clock, no async: the same input gives the same output on
//! every machine, so the operator, every agent and the local runner agree on the link state
//! at time t without exchanging per-tick data.
//!
//! Spec (YAML) --`compile`--> [`Plan`] --`Plan::state_at(t)`--> [`State`]: positions, link
//! up/down, delay, loss, rate, active faults and next-hop routes. The state at t is a
//! function of the spec and t alone, hysteresis included (`timeline` says how); a
//! [`Timeline`] gives the same states one tick after another at the cost of one step each.

pub mod addressing;
pub mod compile;
pub mod error;
pub mod events;
pub mod faults;
pub mod geo;
pub mod geometry;
pub mod links;
pub mod mission;
pub mod orbit;
pub mod placement;
pub mod plan;
pub mod routing;
pub mod spec;
pub mod state;
pub mod time;
pub mod timeline;
mod track;
pub mod units;

pub use compile::{compile, compile_document, compile_yaml};
pub use error::{Invalid, Problem, SpecError};
pub use links::{GroundChoice, LinkState};
pub use plan::{LinkId, LinkKind, Node, NodeIdx, NodeKind, Plan, fnv1a_64};
pub use routing::Routes;
pub use spec::{ConstellationSpec, Document, parse_document};
pub use state::State;
pub use time::{Epoch, SimTime, SpecDuration};
pub use timeline::{Anchors, Timeline};

#[cfg(test)]
mod properties;
#[cfg(test)]
mod testutil;
