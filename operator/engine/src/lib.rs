//! orbitnet's tick engine, the one both live runners share: the model's state applied to
//! the link ends of one host, tick after tick. It owns the state chain (the model's
//! `Timeline`), the tick clock, the links to build (the grid's, and the ground links chosen
//! ahead, worked out off the tick's thread), the difference applied through the
//! dataplane's `Applier` (private to it), the delay tolerance and every other setting, what
//! went wrong (said once), and teardown.
//!
//! A runner is a shell around it: the local runner adds namespaces, a clock, the terminal
//! view and telemetry; the link agent adds watches, pod namespaces, VXLAN and underlay
//! compensation (its `Host`). Neither holds physics or a second tick loop.

pub mod calibrate;
pub mod clock;
mod convergence;
mod engine;
mod lookahead;
pub mod metrics;
pub mod settings;
pub mod traffic;

pub use clock::Clock;
pub use engine::{
    BuildSummary, Built, Engine, Event, Host, Incompatible, MadeUp, Problem, ProblemKind, Tick,
};
pub use settings::Settings;
pub use traffic::{FlowError, Traffic};
