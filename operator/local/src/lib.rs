//! The local runner, orbitnet's embedded default: the whole constellation in network
//! namespaces on one host, kept in step with the model in real time. A shell around the
//! engine: it owns the namespaces, node programs, the terminal, telemetry and cleanup; the
//! tick loop's work is the engine's, the physics the model's.

pub mod browser;
mod converge;
pub mod daemons;
pub mod down;
pub mod lock;
pub mod procs;
pub mod report;
pub mod runner;
pub mod stats;
mod svg;
pub mod telemetry;
pub mod topology;
pub mod view;
pub mod watch;

pub use runner::{RunError, RunOptions, RunSummary, run};
