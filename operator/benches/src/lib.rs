//! Shared inputs of the benchmarks in `benches/`: the scenarios they load.

use orbitnet_model::Plan;

/// Compiles a scenario from the repository's `scenarios/` directory.
pub fn scenario(name: &str) -> Plan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios").join(name);
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    orbitnet_model::compile_yaml(&yaml).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
