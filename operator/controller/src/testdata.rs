//! Constellations for unit tests.

use orbitnet_model::Plan;

use orbitnet_api::crd::Constellation;

pub const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

/// A scenario as the API server would hand it to the operator (namespace, uid, generation),
/// and its plan.
pub fn constellation(yaml: &str) -> (Constellation, Plan) {
    let mut cst: Constellation = serde_yaml::from_str(yaml).expect("test scenario parses");
    cst.metadata.namespace = Some("test".into());
    cst.metadata.uid = Some("0d6e6a1c-5a6b-4c1e-9a53-0123456789ab".into());
    cst.metadata.generation = Some(1);
    let name = cst.metadata.name.clone().unwrap_or_default();
    let plan = orbitnet_model::compile(&name, &cst.spec).expect("test scenario compiles");
    (cst, plan)
}
