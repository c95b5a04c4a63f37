//! The local runner, orbitnet's embedded default: the whole constellation in network
//! namespaces on one host, kept in step with the model in real time. It owns processes,
//! the clock, the terminal and cleanup; the physics is the model's, the kernel work the
//! dataplane's.

pub mod clock;
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
