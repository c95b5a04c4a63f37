//! The configurations orbitnet writes, read by the daemons themselves: FRR's
//! `vtysh --dryrun` and `bird -p`, for every node of tiny.yaml in each mode. Needs Debian's
//! frr and bird2 packages; `make test-kernel` installs them and runs this.

use std::process::Command;

const TINY: &str = include_str!("../../../scenarios/tiny.yaml");

fn check(routing: &str, protocol: &str, checker: &[&str]) {
    let yaml =
        TINY.replace("routing: shortestPath", &format!("routing: {routing}\n  routingProtocol: {protocol}"));
    let plan = orbitnet_model::compile_yaml(&yaml).unwrap();
    let dir = std::env::temp_dir().join(format!("orbitnet-daemons-{}-{routing}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for node in 0..plan.nodes.len() as u32 {
        let (file, text) = orbitnet_routing::config(&plan, node).unwrap();
        let path = dir.join(format!("{}-{file}", plan.node(node).name));
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(checker[0]).args(&checker[1..]).arg(&path).output().unwrap_or_else(|e| {
            panic!("{}: {e} (apt-get install frr bird2; make test-kernel does)", checker[0])
        });
        assert!(
            out.status.success(),
            "{routing} {protocol}: {} refuses {}: {}{}",
            checker[0],
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[ignore = "needs frr and bird2 (Debian packages); run by make test-kernel, which installs them"]
fn frr_and_bird_take_every_node_configuration() {
    check("ospf", "{}", &["vtysh", "--dryrun", "-f"]);
    check("ospf", "{bfd: {enabled: true}, cost: delay}", &["vtysh", "--dryrun", "-f"]);
    check("isis", "{bfd: {enabled: true, intervalMs: 30}}", &["vtysh", "--dryrun", "-f"]);
    check("ospf", "{daemon: bird, bfd: {enabled: true}}", &["bird", "-p", "-c"]);
}
