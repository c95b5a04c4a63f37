//! How a link agent tells the operator what it applied: its own entry of
//! `status.agents`, keyed by its Kubernetes node. The operator reads these for `Ready` and
//! for the finalizer; each agent writes only its entry, and leaves the others as they are.

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::crd::{AgentReport, Constellation};

/// The field manager of the agent on `node`: its entry is owned by it alone.
pub fn manager(node: &str) -> String {
    format!("orbitnet-agent-{node}")
}

/// Writes the agent's entry (the caller writes only when its numbers changed): the
/// entries as the server has them, with this agent's replaced or added, patched under the
/// object's `resourceVersion`, so that a concurrent write makes the server refuse it
/// (409) rather than lose an entry; refused, it reads and tries again, a few times.
///
/// Not server-side apply of the one entry, though the list is keyed by node: Kubernetes
/// before 1.21 applies to this resource without its schema (the schema's int-or-string
/// field breaks the server's OpenAPI models: kubernetes#90902), so `status.agents` would be
/// a single field, and the second node's agent would conflict with the first's.
pub async fn report(
    api: &Api<Constellation>,
    constellation: &str,
    report: &AgentReport,
) -> Result<(), kube::Error> {
    const ATTEMPTS: u32 = 5;
    let params = PatchParams { field_manager: Some(manager(&report.node)), ..PatchParams::default() };
    let mut attempt = 1;
    loop {
        let current = api.get(constellation).await?;
        let mut agents = current.status.map(|s| s.agents).unwrap_or_default();
        match agents.iter_mut().find(|a| a.node == report.node) {
            Some(entry) => *entry = report.clone(),
            None => agents.push(report.clone()),
        }
        let body = json!({
            "metadata": {"resourceVersion": current.metadata.resource_version},
            "status": {"agents": agents},
        });
        match api.patch_status(constellation, &params, &Patch::Merge(&body)).await {
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < ATTEMPTS => attempt += 1,
            result => return result.map(|_| ()),
        }
    }
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
