//! The CRD on a current Kubernetes: 1.36's CRD server (scripts/modern-apiserver.sh), which
//! evaluates the CEL rules, knows today's formats and warns about the rest. Part of the
//! apiserver tier: `scripts/test-apiserver.sh` starts the server and passes its kubeconfig
//! in ORBITNET_TEST_CURRENT_KUBECONFIG and its kubectl (1.36) in ORBITNET_TEST_CURRENT_KUBECTL.
//!
//! The server has no core API, so no namespaces to create: resources go to `default`, and
//! every write is a server-side dry run, so the tests share the server without clashing.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use orbitnet_api::Constellation;
use serde_json::{Value, json};

const KUBECONFIG_VAR: &str = "ORBITNET_TEST_CURRENT_KUBECONFIG";
const KUBECTL_VAR: &str = "ORBITNET_TEST_CURRENT_KUBECTL";

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: these tests need Kubernetes 1.36's CRD server. Run them with \
             scripts/test-apiserver.sh (make test-apiserver), which starts one and sets it."
        )
    })
}

fn repo_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn yaml(path: &str) -> Value {
    serde_yaml::from_str(&repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// kubectl 1.36 against the server, `stdin` fed to it.
fn kubectl(args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env(KUBECTL_VAR))
        .args(args)
        .env("KUBECONFIG", env(KUBECONFIG_VAR))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kubectl");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

async fn client() -> Client {
    let kubeconfig = Kubeconfig::read_from(env(KUBECONFIG_VAR)).expect("reading the test kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a client")
}

/// Installs the committed CRD with kubectl, as users do, and waits until it is served.
/// Returns what kubectl wrote to stderr: the server's warnings.
async fn install_crd(client: &Client) -> String {
    let out = kubectl(&["apply", "--server-side", "-f", "-"], &repo_file("crds/constellation.yaml"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "kubectl apply of the CRD failed: {stderr}");
    let csts: Api<Constellation> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    while csts.list(&ListParams::default().limit(1)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the CRD is not served after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stderr
}

/// A server-side dry run of applying `doc` as a Constellation in `default`.
async fn dry_run(client: &Client, doc: &Value) -> Result<(), String> {
    let api: Api<Constellation> = Api::namespaced(client.clone(), "default");
    let name = doc["metadata"]["name"].as_str().expect("the document has a name");
    let params = PatchParams { dry_run: true, ..PatchParams::apply("orbitnet-test").force() };
    api.patch(name, &params, &Patch::Apply(doc)).await.map(drop).map_err(|e| e.to_string())
}

/// tests/data/every-field.yaml changed by a JSON patch.
fn every_field_with(patch: &Value) -> Value {
    let mut doc = yaml("operator/api/tests/data/every-field.yaml");
    let patch: json_patch::Patch = serde_json::from_value(patch.clone()).expect("a JSON patch");
    json_patch::patch(&mut doc, &patch).expect("the patch applies to every-field.yaml");
    doc
}

#[tokio::test]
#[ignore = "apiserver tier: needs the Kubernetes 1.36 CRD server; run by make test-apiserver"]
async fn the_committed_crd_installs_without_warnings() {
    let client = client().await;
    let stderr = install_crd(&client).await;
    assert_eq!(stderr, "", "installing crds/constellation.yaml made the server warn");
    // The install above may have been an update (another test installed it first), and an
    // update warns only about what it adds: a dry-run create of the same CRD under another
    // group is always a create.
    let mut crd = yaml("crds/constellation.yaml");
    crd["metadata"]["name"] = json!("constellations.warnings.orbitnet.dev");
    crd["spec"]["group"] = json!("warnings.orbitnet.dev");
    let out = kubectl(&["create", "--dry-run=server", "-f", "-"], &crd.to_string());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "", "creating the CRD made the server warn");
}

#[tokio::test]
#[ignore = "apiserver tier: needs the Kubernetes 1.36 CRD server; run by make test-apiserver"]
async fn every_scenario_is_accepted() {
    let client = client().await;
    install_crd(&client).await;
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios"))
            .expect("the scenarios directory")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .map(|p| format!("scenarios/{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
    assert!(files.len() >= 4, "only {files:?}");
    files.push("operator/api/tests/data/every-field.yaml".into());
    for file in &files {
        if let Err(e) = dry_run(&client, &yaml(file)).await {
            panic!("{file} is refused: {e}");
        }
    }
}

/// Every CEL rule of the installed CRD refuses its case's bad spec, with the rule's message
/// and the field, and lets the good one through (tests/data/rule-cases.yaml).
#[tokio::test]
#[ignore = "apiserver tier: needs the Kubernetes 1.36 CRD server; run by make test-apiserver"]
async fn every_cel_rule_refuses_its_bad_case_naming_the_field() {
    let client = client().await;
    install_crd(&client).await;
    let cases: Vec<Value> =
        serde_yaml::from_str(&repo_file("operator/api/tests/data/rule-cases.yaml")).unwrap();
    let crd: CustomResourceDefinition = serde_yaml::from_str(&repo_file("crds/constellation.yaml")).unwrap();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    let mut messages = Vec::new();
    collect_rule_messages(&schema, &mut messages);
    assert!(messages.len() >= 10, "only {} CEL rules in the CRD", messages.len());
    for message in &messages {
        assert!(cases.iter().any(|c| c["rule"] == *message), "rule-cases.yaml has no case for {message:?}");
    }
    for case in &cases {
        let (rule, field) = (case["rule"].as_str().unwrap(), case["field"].as_str().unwrap());
        let refusal = dry_run(&client, &every_field_with(&case["bad"]))
            .await
            .expect_err(&format!("the server accepts the bad case of {rule:?}"));
        assert!(
            refusal.contains(&format!("{field}: ")) && refusal.contains(rule),
            "{rule:?} at {field}: the server says {refusal}"
        );
        if let Err(e) = dry_run(&client, &every_field_with(&case["good"])).await {
            panic!("the good case of {rule:?} is refused: {e}");
        }
    }
}

fn collect_rule_messages(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for rule in map.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
                out.push(rule["message"].as_str().expect("every rule has a message").to_owned());
            }
            map.values().for_each(|v| collect_rule_messages(v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| collect_rule_messages(v, out)),
        _ => {}
    }
}

/// Every bound the model checks (`compile::bounds` over every-field.yaml) the server enforces
/// too: a value just outside it, on either side, is refused, naming the field.
#[tokio::test]
#[ignore = "apiserver tier: needs the Kubernetes 1.36 CRD server; run by make test-apiserver"]
async fn the_server_refuses_what_the_models_bounds_refuse() {
    let client = client().await;
    install_crd(&client).await;
    let doc = yaml("operator/api/tests/data/every-field.yaml");
    let cst: Constellation = serde_json::from_value(doc.clone()).unwrap();
    let bounds = orbitnet_model::compile::bounds(&cst.spec);
    assert!(bounds.len() >= 40, "only {} bounds", bounds.len());
    let mut accepted = Vec::new();
    for b in &bounds {
        let below = if b.min_exclusive { b.min } else { b.min - 1.0 };
        for value in [below, b.max + 1.0] {
            let mut bad = doc.clone();
            // The field may be unset (a waypoint's altM defaults to its platform's).
            let (object, field) = pointer(&b.path);
            let object = bad.pointer_mut(&object).and_then(Value::as_object_mut);
            object
                .unwrap_or_else(|| panic!("{}: not in every-field.yaml", b.path))
                .insert(field, number(value));
            match dry_run(&client, &bad).await {
                Ok(()) => accepted.push(format!("{} = {value}", b.path)),
                Err(e) => assert!(
                    e.contains(&format!("{}: Invalid value", b.path)) && e.contains("should be"),
                    "{} = {value}: the server refuses it for another reason: {e}",
                    b.path
                ),
            }
        }
    }
    assert!(accepted.is_empty(), "the server accepts values the model refuses: {accepted:?}");
}

/// At every field the model checks as a name (`compile::names` over every-field.yaml), the
/// server refuses the names the model refuses, naming the field, and takes the ones it takes
/// (tests/data/name-cases.yaml).
#[tokio::test]
#[ignore = "apiserver tier: needs the Kubernetes 1.36 CRD server; run by make test-apiserver"]
async fn the_server_judges_names_as_the_model_does() {
    let client = client().await;
    install_crd(&client).await;
    let doc = yaml("operator/api/tests/data/every-field.yaml");
    let cst: Constellation = serde_json::from_value(doc.clone()).unwrap();
    let names = orbitnet_model::compile::names(&cst.spec);
    assert!(names.len() >= 4, "only {names:?}");
    let cases = yaml("operator/api/tests/data/name-cases.yaml");
    let mut wrong = Vec::new();
    for path in &names {
        let (object, field) = pointer(path);
        for (list, bad) in [("bad", true), ("good", false)] {
            for name in cases[list].as_array().expect("a list of names") {
                // A rename: what refers to the old name (an objective's flow) follows.
                let old = doc.pointer(&format!("{object}/{field}")).unwrap().clone();
                let mut changed = doc.clone();
                rename(&mut changed["spec"], &old, name);
                match (dry_run(&client, &changed).await, bad) {
                    (Ok(()), true) => wrong.push(format!("{path} = {name}: accepted")),
                    (Err(e), true) if !e.contains(&format!("{path}: ")) => {
                        wrong.push(format!("{path} = {name}: refused for another reason: {e}"))
                    }
                    (Err(e), false) => wrong.push(format!("{path} = {name}: refused: {e}")),
                    _ => {}
                }
            }
        }
    }
    assert!(wrong.is_empty(), "the server and the model judge names differently:\n{}", wrong.join("\n"));
}

/// Every name, and every reference to a name (a fault's node, a flow's ends, an
/// objective's flow or fault), equal to `old` becomes `new`.
fn rename(v: &mut Value, old: &Value, new: &Value) {
    const NAMED: [&str; 9] = ["name", "node", "a", "b", "from", "to", "flow", "during", "after"];
    match v {
        Value::Array(items) => items.iter_mut().for_each(|i| rename(i, old, new)),
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if NAMED.contains(&key.as_str()) && field == old {
                    *field = new.clone();
                } else {
                    rename(field, old, new);
                }
            }
        }
        _ => {}
    }
}

/// The JSON pointer of the object holding a field, and the field's name:
/// `spec.groundStations[0].latDeg` is `latDeg` in `/spec/groundStations/0`.
fn pointer(path: &str) -> (String, String) {
    let (object, field) = path.rsplit_once('.').expect("a field of the spec");
    let object = object
        .split('.')
        .map(|step| match step.split_once('[') {
            Some((name, index)) => format!("/{name}/{}", index.trim_end_matches(']')),
            None => format!("/{step}"),
        })
        .collect();
    (object, field.to_owned())
}

/// A whole number as a JSON integer (integer fields refuse 1.0), anything else as a float.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 { json!(value as i64) } else { json!(value) }
}
