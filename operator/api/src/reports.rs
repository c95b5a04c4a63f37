//! How a link agent tells the operator what it applied: its own entry of
//! `status.agents`, keyed by its Kubernetes node. The operator reads these for `Ready` and
//! for the finalizer; each agent writes only its entry.

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::crd::{AgentReport, Constellation, GROUP, KIND, VERSION};

/// The field manager of the agent on `node`: its entry is owned by it alone.
pub fn manager(node: &str) -> String {
    format!("orbitnet-agent-{node}")
}

/// Writes (server-side apply, only when the agent's numbers changed) the agent's entry.
pub async fn report(
    api: &Api<Constellation>,
    constellation: &str,
    report: &AgentReport,
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "status": {"agents": [report]},
    });
    api.patch_status(constellation, &PatchParams::apply(&manager(&report.node)), &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// Removes the agent's entry once it has removed its links: the operator's finalizer waits
/// for every entry to go. A JSON patch tested against the entry's key, not server-side
/// apply of a status without the entry: 1.20 leaves `agents: null` behind when the last
/// entry goes that way, and then rejects it. `Ok(false)` when there was no entry.
pub async fn withdraw(
    api: &Api<Constellation>,
    cst: &Constellation,
    node: &str,
) -> Result<bool, kube::Error> {
    let agents = cst.status.as_ref().map(|s| s.agents.as_slice()).unwrap_or_default();
    let Some(i) = agents.iter().position(|a| a.node == node) else { return Ok(false) };
    let path = format!("/status/agents/{i}");
    let patch = json!([{"op": "test", "path": format!("{path}/node"), "value": node}, {"op": "remove", "path": path}]);
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a well-formed JSON patch (literal)");
    let name = cst.metadata.name.as_deref().unwrap_or_default();
    api.patch_status(name, &PatchParams::default(), &Patch::<()>::Json(patch)).await?;
    Ok(true)
}
