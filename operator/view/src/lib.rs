//! The browser view (docs/ui.md): one page, embedded in the binary, that draws a
//! constellation on a map or a globe from the model's frames. This crate owns the frames'
//! JSON, where they come from (a plan at any tick, or what a running engine applied) and
//! the HTTP server; the runners only feed it. It touches no kernel and no API server.

pub mod frame;
pub mod server;
pub mod source;

pub use frame::{Frame, ObjectiveView, PathView, Scene, SourceKind, TimelineEvent};
pub use server::{Lookup, Source, multi_router, router, serve_until_stopped, spawn};
pub use source::{LiveHub, PlanView};
