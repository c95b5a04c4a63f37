//! The `orbitnet` binary as a user runs it: output shapes, exit codes, error messages.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios").join(name)
}

fn orbitnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orbitnet")).args(args).output().expect("run orbitnet")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The acceptance command: one object with nodes, links, routes, and every fault
/// active at t = 600 s reflected (the jamming fault runs from 10 m for 5 m).
#[test]
fn plan_at_420_as_json_with_routes_is_one_complete_object() {
    let backbone = scenario("backbone.yaml");
    let out = stdout(&orbitnet(&[
        "plan",
        backbone.to_str().unwrap(),
        "--at",
        "420",
        "--format",
        "json",
        "--routes",
    ]));
    assert_eq!(out.lines().count(), 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["t"], 420.0);
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 72);
    for n in nodes {
        for key in ["name", "kind", "ecefM", "latDeg", "lonDeg", "altM"] {
            assert!(n.get(key).is_some(), "node without {key}: {n}");
        }
        assert_eq!(n["ecefM"].as_array().unwrap().len(), 3);
    }
    assert_eq!(nodes[67]["name"], "thule");
    assert_eq!(nodes[67]["kind"], "groundStation");
    assert_eq!(nodes[70]["kind"], "platform");
    assert_eq!(nodes[71]["name"], "isr-1");
    let links = v["links"].as_array().unwrap();
    assert!(links.len() >= 121);
    for l in links {
        for key in ["id", "a", "b", "kind", "up", "distanceM", "delayUs", "lossPct", "rateBps"] {
            assert!(l.get(key).is_some(), "link without {key}: {l}");
        }
        assert_eq!(l.get("elevationDeg").is_some(), l["kind"] == "gsl", "{l}");
        assert_eq!(l["id"].as_str().unwrap().len(), 16);
    }
    let faults = v["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0]["kind"], "jamming");
    assert_eq!(faults[0]["index"], 2);
    let routes = v["routes"].as_object().unwrap();
    assert_eq!(routes.len(), 72);
    let thule = routes["thule"].as_object().unwrap();
    let hop = thule["vandenberg"].as_str().unwrap();
    assert!(hop.starts_with("polar-"), "thule reaches vandenberg through a satellite, not {hop}");
}

#[test]
fn every_fault_of_backbone_shows_in_its_window() {
    let backbone = scenario("backbone.yaml");
    let cases = [("70", "linkDown"), ("200", "nodeDown"), ("420", "jamming"), ("530", "stationDown")];
    for (t, kind) in cases {
        let out = stdout(&orbitnet(&["plan", backbone.to_str().unwrap(), "--at", t, "--format", "json"]));
        let v: Value = serde_json::from_str(&out).unwrap();
        let kinds: Vec<&str> =
            v["faults"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, vec![kind], "at t = {t}");
        let links = v["links"].as_array().unwrap();
        let link = |a: &str, b: &str| links.iter().find(|l| l["a"] == a && l["b"] == b).cloned();
        match kind {
            "linkDown" => assert_eq!(link("polar-0-0", "polar-0-1").unwrap()["up"], false),
            "nodeDown" => {
                let of_node: Vec<_> =
                    links.iter().filter(|l| l["a"] == "polar-1-3" || l["b"] == "polar-1-3").collect();
                assert!(!of_node.is_empty() && of_node.iter().all(|l| l["up"] == false));
            }
            "jamming" => {
                let carrier: Vec<_> = links.iter().filter(|l| l["a"] == "carrier-1").collect();
                assert!(!carrier.is_empty(), "carrier-1 has a ground link at 420 s");
                assert!(carrier.iter().all(|l| l["lossPct"].as_f64().unwrap() > 60.0));
            }
            _ => {
                let thule: Vec<_> = links.iter().filter(|l| l["a"] == "thule").collect();
                assert!(!thule.is_empty() && thule.iter().all(|l| l["up"] == false));
            }
        }
    }
}

#[test]
fn a_range_is_one_object_per_line_and_times_can_be_timestamps() {
    let tiny = scenario("tiny.yaml");
    let out = stdout(&orbitnet(&[
        "plan",
        tiny.to_str().unwrap(),
        "--from",
        "0",
        "--to",
        "1m",
        "--step",
        "20s",
        "--format",
        "json",
    ]));
    let ts: Vec<f64> =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["t"].as_f64().unwrap()).collect();
    assert_eq!(ts, vec![0.0, 20.0, 40.0, 60.0]);
    let by_time = stdout(&orbitnet(&[
        "plan",
        tiny.to_str().unwrap(),
        "--at",
        "2026-11-24T00:01:00Z",
        "--format",
        "json",
    ]));
    let by_secs = stdout(&orbitnet(&["plan", tiny.to_str().unwrap(), "--at", "60", "--format", "json"]));
    assert_eq!(by_time, by_secs);
}

#[test]
fn csv_has_a_header_and_one_row_per_link() {
    let tiny = scenario("tiny.yaml");
    let out =
        stdout(&orbitnet(&["plan", tiny.to_str().unwrap(), "--from", "0", "--to", "2", "--format", "csv"]));
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "t,id,a,b,kind,up,distanceM,elevationDeg,delayUs,jitterUs,lossPct,rateBps"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 12));
    // Eight ISLs and one ground link per station, at each of three ticks.
    assert_eq!(rows.len(), 3 * (8 + 2));
}

#[test]
fn the_table_shows_ground_links_and_paths_and_every_link_on_request() {
    let tiny = scenario("tiny.yaml");
    let out = stdout(&orbitnet(&["plan", tiny.to_str().unwrap(), "--routes"]));
    assert!(out.contains("KIND"), "{out}");
    assert!(out.contains("gsl  alpha"), "{out}");
    assert!(!out.contains("isl  ring"), "{out}");
    assert!(out.contains("alpha > ring-"), "{out}");
    let all = stdout(&orbitnet(&["plan", tiny.to_str().unwrap(), "--all-links"]));
    assert_eq!(all.lines().filter(|l| l.trim_start().starts_with("isl ")).count(), 8, "{all}");
    let backbone = scenario("backbone.yaml");
    let down = stdout(&orbitnet(&["plan", backbone.to_str().unwrap(), "--at", "70"]));
    assert!(down.contains("ISLs down: ") && down.contains("polar-0-0~polar-0-1"), "{down}");
}

#[test]
fn summary_prints_counts_and_timing_only() {
    let out = stdout(&orbitnet(&[
        "plan",
        scenario("tiny.yaml").to_str().unwrap(),
        "--from",
        "0",
        "--to",
        "100",
        "--routes",
        "--summary",
    ]));
    assert!(out.contains("101 ticks"), "{out}");
    assert!(out.contains("ms per tick"), "{out}");
    assert!(!out.contains("KIND"));
}

#[test]
fn validate_reports_every_problem_and_fails() {
    let dir = std::env::temp_dir().join(format!("orbitnet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: orbitnet.dev/v1alpha1\nkind: Constellation\nmetadata: {name: bad}\nspec:\n  epoch: \"2026-11-24T00:00:00Z\"\n  shells:\n  - {name: s, walker: {type: delta, planes: 0, satsPerPlane: 4}, altitudeKm: 500, inclinationDeg: 50}\n  groundStations:\n  - {name: thule, latDeg: 91.2, lonDeg: -68.7}\n",
    )
    .unwrap();
    let out = orbitnet(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.yaml"), "{err}");
    assert!(err.contains("spec.shells[0].walker.planes: 0 must be greater than 0"), "{err}");
    assert!(err.contains("spec.groundStations[0].latDeg: 91.2 is outside -90..90"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    let ok = stdout(&orbitnet(&["validate", scenario("backbone.yaml").to_str().unwrap()]));
    assert!(
        ok.contains(
            "ok: constellation \"backbone\": 72 nodes (67 satellites, 3 ground stations, 2 platforms)"
        ),
        "{ok}"
    );
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let tiny = scenario("tiny.yaml");
    let tiny = tiny.to_str().unwrap();
    for (args, needle) in [
        (vec!["plan", tiny, "--at", "soon"], "invalid time \"soon\""),
        (vec!["plan", tiny, "--from", "10", "--to", "5"], "before --from"),
        (vec!["plan", tiny, "--from", "0", "--to", "5", "--step", "0"], "--step"),
        (vec!["plan", tiny, "--format", "csv", "--routes"], "--format json"),
        (vec!["plan", "/nonexistent.yaml"], "cannot read /nonexistent.yaml"),
    ] {
        let out = orbitnet(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `orbitnet run --dry-run` needs no root: it says what it would build.
#[test]
fn run_dry_run_describes_the_build_and_checks_its_arguments() {
    let tiny = scenario("tiny.yaml");
    let tiny = tiny.to_str().unwrap();
    let out = stdout(&orbitnet(&[
        "run",
        tiny,
        "--dry-run",
        "--start",
        "300s",
        "--duration",
        "3m",
        "--paths",
        "alpha~bravo,bravo~alpha",
    ]));
    assert!(out.contains("would create 10 network namespaces"), "{out}");
    assert!(out.contains("at t = 300 s"), "{out}");
    for (args, needle) in [
        (vec!["run", tiny, "--dry-run", "--paths", "alpha-bravo"], "is not a pair"),
        (vec!["run", tiny, "--dry-run", "--paths", "alpha~nobody"], "no node named \"nobody\""),
        (vec!["run", tiny, "--dry-run", "--start", "-10"], "before the epoch"),
        (vec!["run", tiny, "--dry-run", "--duration", "ten"], "invalid duration"),
        (vec!["run", tiny, "--dry-run", "--time-scale", "0"], "--time-scale 0"),
        (vec!["down"], "say what to remove"),
    ] {
        let out = orbitnet(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
