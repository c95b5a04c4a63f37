//! The mission's flows measured and judged. A flow's receiver counts what arrives
//! (`measure`), the model says what should have (`predict`), and the objectives of the spec
//! turn both into verdicts (`verdict`) that people read as a table and CI as an exit status
//! and JUnit (`junit`). Pure: the engine feeds it datagrams, the runners and the operator
//! read its verdicts.

pub mod junit;
pub mod measure;
pub mod predict;
pub mod verdict;

pub use measure::{Arrival, FlowSeries, FlowTick, Histogram, ModelTick, Receiver};
pub use orbitnet_model::mission::ROUTING;
pub use predict::Predictor;
pub use verdict::{
    Outcome, RoutingEvent, Span, Verdict, evaluate, evaluate_routing, exit_status, judge_received,
    judge_routing, predict, table,
};
