//! What changed between two states: handovers, and faults beginning or ending. The engine
//! reports them per tick applied; the browser view's timeline shows the same events.

use crate::links::GroundChoice;
use crate::plan::{NodeIdx, Plan};
use crate::state::State;

/// What changed between the state applied before and the one applied now.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A ground node's satellites changed.
    Handover {
        node: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    FaultBegan {
        index: usize,
        kind: String,
        description: String,
    },
    FaultEnded {
        index: usize,
        kind: String,
        description: String,
    },
}

/// Handovers and faults beginning or ending between a state whose ground-link choice and
/// active faults were `choice` and `faults`, and `now`.
pub fn between(plan: &Plan, choice: &GroundChoice, faults: &[usize], now: &State) -> Vec<Event> {
    let name = |i: NodeIdx| plan.node(i).name.clone();
    let mut out = Vec::new();
    for (g, (was, is)) in choice.per_ground.iter().zip(&now.ground_choice.per_ground).enumerate() {
        if was != is {
            out.push(Event::Handover {
                node: name((plan.n_sats + g) as NodeIdx),
                added: is.iter().filter(|s| !was.contains(s)).map(|&s| name(s)).collect(),
                removed: was.iter().filter(|s| !is.contains(s)).map(|&s| name(s)).collect(),
            });
        }
    }
    let fault = |i: usize| plan.faults.iter().find(|f| f.spec_index == i);
    for &i in now.active_faults.iter().filter(|i| !faults.contains(i)) {
        if let Some(f) = fault(i) {
            out.push(Event::FaultBegan {
                index: i,
                kind: f.kind.as_str().into(),
                description: f.describe(plan),
            });
        }
    }
    for &i in faults.iter().filter(|i| !now.active_faults.contains(i)) {
        if let Some(f) = fault(i) {
            out.push(Event::FaultEnded {
                index: i,
                kind: f.kind.as_str().into(),
                description: f.describe(plan),
            });
        }
    }
    out
}
