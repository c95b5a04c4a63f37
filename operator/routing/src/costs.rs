//! `cost: delay` at run time: every link end's cost follows the link's one-way delay as the
//! model gives it tick by tick (in 100 us steps, `crate::cost`), set in the running daemons:
//! FRR's through the vty socket of ospfd or isisd (what vtysh does), BIRD's by writing its
//! file with a cost per interface and asking it to reconfigure on its control socket (BIRD
//! changes an OSPF interface's cost in place, without dropping the adjacency).
//!
//! A node's daemons take costs once its launcher has configured them (it then writes
//! `configured` in their directory). A launcher that starts them again writes it anew, and
//! the keeper sets every cost again.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orbitnet_dataplane::naming::iface_name;
use orbitnet_model::spec::{LinkCost, Routing, RoutingDaemon};
use orbitnet_model::{LinkState, NodeIdx, Plan};
use rustc_hash::FxHashMap;

/// The file a launcher writes once the daemons are configured.
pub const CONFIGURED: &str = "configured";
/// A daemon that does not answer within this is given up on until the next tick.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Each node's interface costs for the links up in `links` (none unless `cost: delay`).
pub fn wanted(plan: &Plan, links: &[LinkState]) -> FxHashMap<NodeIdx, BTreeMap<String, u32>> {
    let mut out: FxHashMap<NodeIdx, BTreeMap<String, u32>> = FxHashMap::default();
    let Some(p) = plan.routing_protocol.as_ref().filter(|p| p.cost == LinkCost::Delay) else { return out };
    for l in links.iter().filter(|l| l.up) {
        let cost = crate::cost(p, Some(l.delay_ns));
        out.entry(l.a).or_default().insert(iface_name(l.kind, l.b), cost);
        out.entry(l.b).or_default().insert(iface_name(l.kind, l.a), cost);
    }
    out
}

/// What a node's daemons were last given: the `configured` file it was given to (inode and
/// modification time), and the costs.
struct Kept {
    configured: (u64, i64, i64),
    costs: BTreeMap<String, u32>,
}

/// Keeps every node's daemons at the costs the model wants.
#[derive(Default)]
pub struct Keeper {
    nodes: FxHashMap<NodeIdx, Kept>,
}

impl Keeper {
    /// Sets the costs of `links` in every node whose daemons are configured (`dir`: where
    /// a node's daemon files and sockets are, if it has any here); returns what failed, by
    /// node (tried again next time).
    pub fn keep(
        &mut self,
        plan: &Plan,
        links: &[LinkState],
        dir: &dyn Fn(NodeIdx) -> Option<PathBuf>,
    ) -> Vec<(NodeIdx, String)> {
        let mut failed = Vec::new();
        for (node, want) in wanted(plan, links) {
            let Some(dir) = dir(node) else { continue };
            let Ok(meta) = std::fs::metadata(dir.join(CONFIGURED)) else { continue };
            let configured = (meta.ino(), meta.mtime(), meta.mtime_nsec());
            let kept = self.nodes.entry(node).or_insert_with(|| Kept { configured, costs: BTreeMap::new() });
            if kept.configured != configured {
                *kept = Kept { configured, costs: BTreeMap::new() };
            }
            let changed: BTreeMap<String, u32> = want
                .iter()
                .filter(|(i, c)| kept.costs.get(*i) != Some(c))
                .map(|(i, c)| (i.clone(), *c))
                .collect();
            if changed.is_empty() {
                continue;
            }
            let mut all = kept.costs.clone();
            all.extend(changed.clone());
            match set(plan, node, &dir, &changed, &all) {
                Ok(()) => kept.costs = all,
                Err(e) => failed.push((node, e)),
            }
        }
        failed
    }
}

/// Gives `node`'s daemons the `changed` costs (`all`: every cost it is to have).
fn set(
    plan: &Plan,
    node: NodeIdx,
    dir: &Path,
    changed: &BTreeMap<String, u32>,
    all: &BTreeMap<String, u32>,
) -> Result<(), String> {
    let Some(p) = plan.routing_protocol.as_ref() else { return Ok(()) };
    match p.daemon {
        RoutingDaemon::Frr => {
            let isis = plan.routing == Routing::Isis;
            let socket = dir.join(if isis { "isisd.vty" } else { "ospfd.vty" });
            let mut lines = vec!["enable".to_owned(), "configure terminal".to_owned()];
            for (iface, cost) in changed {
                lines.push(format!("interface {iface}"));
                lines.push(if isis { format!("isis metric {cost}") } else { format!("ip ospf cost {cost}") });
                lines.push("exit".to_owned());
            }
            lines.push("end".to_owned());
            vty(&socket, &lines).map_err(|e| format!("{}: {e}", socket.display()))
        }
        RoutingDaemon::Bird => {
            let file = dir.join("bird.conf");
            std::fs::write(&file, crate::bird_config(plan, node, p, all))
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let socket = dir.join("bird.ctl");
            bird_configure(&socket).map_err(|e| format!("{}: {e}", socket.display()))
        }
    }
}

/// Runs `lines` on an FRR daemon's vty socket as vtysh does: each line ends with a NUL,
/// each answer with three NULs and the command's status (0: success).
fn vty(socket: &Path, lines: &[String]) -> Result<(), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    for line in lines {
        s.write_all(line.as_bytes()).and_then(|()| s.write_all(&[0])).map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !(answer.len() >= 4 && answer[answer.len() - 4..answer.len() - 1] == [0, 0, 0]) {
            let n = s.read(&mut buf).map_err(|e| format!("{line:?}: {e}"))?;
            if n == 0 {
                return Err(format!("{line:?}: the daemon closed the connection"));
            }
            answer.extend_from_slice(&buf[..n]);
        }
        let status = answer[answer.len() - 1];
        // `enable` is refused where the session is enabled already.
        if status != 0 && line != "enable" {
            let text = String::from_utf8_lossy(&answer[..answer.len() - 4]);
            return Err(format!("{line:?}: status {status}: {}", text.trim()));
        }
    }
    Ok(())
}

/// Asks BIRD to read its file again; its answer ends with a line whose code is followed by
/// a space (0003: reconfigured; 0004: in progress; 8xxx, 9xxx: errors).
fn bird_configure(socket: &Path) -> Result<(), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    s.write_all(b"configure\n").map_err(|e| e.to_string())?;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err("BIRD closed the connection".into());
        }
        if line.as_bytes().get(4) == Some(&b' ') {
            return match &line[..4] {
                "0003" | "0004" => Ok(()),
                _ => Err(line.trim().to_owned()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tiny.yaml in OSPF with `cost: delay`, and its state at t = 0.
    fn delay_costs() -> (String, Plan, orbitnet_model::State) {
        let yaml = include_str!("../../../scenarios/tiny.yaml")
            .replace("routing: shortestPath", "routing: ospf\n  routingProtocol: {cost: delay}");
        let plan = orbitnet_model::compile_yaml(&yaml).unwrap();
        let state = plan.state_at(orbitnet_model::SimTime::ZERO);
        (yaml, plan, state)
    }

    #[test]
    fn each_end_of_a_link_up_gets_its_delay_in_100_us_steps() {
        let (yaml, plan, state) = delay_costs();
        let costs = wanted(&plan, &state.links);
        let l = state.links.iter().find(|l| l.up).unwrap();
        let want = u32::try_from(l.delay_ns / 100_000).unwrap();
        assert_eq!(costs[&l.a][&iface_name(l.kind, l.b)], want);
        assert_eq!(costs[&l.b][&iface_name(l.kind, l.a)], want);
        let ends: usize = costs.values().map(BTreeMap::len).sum();
        assert_eq!(ends, 2 * state.links.iter().filter(|l| l.up).count());
        let unit = orbitnet_model::compile_yaml(&yaml.replace("cost: delay", "cost: unit")).unwrap();
        assert!(wanted(&unit, &state.links).is_empty(), "unit costs never change");
    }

    #[test]
    fn nothing_is_set_before_the_daemons_are_configured() {
        let (_, plan, state) = delay_costs();
        let dir = std::env::temp_dir().join(format!("orbitnet-costs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut keeper = Keeper::default();
        assert!(keeper.keep(&plan, &state.links, &|_| Some(dir.clone())).is_empty(), "not configured yet");
        std::fs::write(dir.join(CONFIGURED), "").unwrap();
        let failed = keeper.keep(&plan, &state.links, &|_| Some(dir.clone()));
        assert!(!failed.is_empty() && failed[0].1.contains("ospfd.vty"), "no daemon to talk to: {failed:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
