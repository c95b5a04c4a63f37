//! The JUnit file against the schema of the format CI systems read (tests/data/junit.xsd),
//! with xmllint. Run by `make test-kernel`, which installs libxml2-utils.

use std::process::Command;

use orbitnet_mission::junit::junit;
use orbitnet_mission::verdict::{Judged, Outcome, Verdict};

fn verdict(objective: &str, outcome: Outcome, detail: &str) -> Verdict {
    Verdict {
        objective: objective.into(),
        flow: "radar-tracks".into(),
        requirement: "p99 one-way delay <= 150 ms".into(),
        window: "during fault 0 (jam <east>)".into(),
        measured: Some(Judged { value: Some(151.5), outcome, detail: detail.into() }),
        predicted: Judged { value: None, outcome: Outcome::Pass, detail: "a \"path\" & more\u{1}".into() },
    }
}

#[test]
#[ignore = "needs xmllint (libxml2-utils); run by make test-kernel, which installs it"]
fn the_junit_file_is_valid_against_the_schema_ci_systems_read() {
    let xmllint = Command::new("xmllint").arg("--version").output();
    assert!(xmllint.is_ok(), "xmllint is missing: apt-get install libxml2-utils (make test-kernel does)");
    let verdicts = [
        verdict("tracks-fresh", Outcome::Pass, "140 ms over 9 of 10"),
        verdict("tracks-<late>", Outcome::Fail, "151.50 ms > 150 & 'more'"),
        verdict("tracks-window", Outcome::Inconclusive, "the run ended at 40 s"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/junit.xsd");
    for (name, list) in [("all", &verdicts[..]), ("none", &[][..])] {
        let xml = junit("backbone", list, 61.5, "2026-11-30T17:30:48");
        let file = dir.path().join(format!("{name}.xml"));
        std::fs::write(&file, &xml).unwrap();
        let out = Command::new("xmllint").args(["--noout", "--schema", schema]).arg(&file).output().unwrap();
        assert!(out.status.success(), "{name}: {}\n{xml}", String::from_utf8_lossy(&out.stderr));
    }
    let xml = junit("backbone", &verdicts, 61.5, "2026-11-30T17:30:48");
    assert!(xml.contains("tests=\"3\" failures=\"1\" errors=\"1\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"151.50 ms &gt; 150 &amp; &apos;more&apos;\" type=\"objective\">"),
        "{xml}"
    );
    assert!(xml.contains("<error message=\"inconclusive: the run ended at 40 s\""), "{xml}");
    // A timestamp with a zone is not what the format's readers take.
    let zoned = junit("backbone", &verdicts, 1.0, "2026-11-30T17:30:48Z");
    let file = dir.path().join("zoned.xml");
    std::fs::write(&file, zoned).unwrap();
    let out = Command::new("xmllint").args(["--noout", "--schema", schema]).arg(&file).output().unwrap();
    assert!(!out.status.success(), "the schema checks timestamps");
}
