//! The `Constellation` custom resource: the model's spec as it is, a status the operator and
//! the link agents write, and the CRD generated from both (`orbitnet crd`).
//!
//! The spec types live in the model crate, which knows nothing of Kubernetes, so the resource
//! type and its CRD are written out here rather than derived.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::Resource;
use kube::core::object::{HasSpec, HasStatus};
use orbitnet_model::ConstellationSpec;
use orbitnet_model::compile::{MAX_NAME_LEN, MAX_NODES};
use orbitnet_model::spec::{FaultKind, ObjectiveKind};
use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub const GROUP: &str = "orbitnet.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "Constellation";
pub const PLURAL: &str = "constellations";
pub const SHORT_NAME: &str = "cst";

/// A constellation in a cluster: one pod per node, links shaped by the agents.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constellation {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: ConstellationSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ConstellationStatus>,
}

fn api_version() -> String {
    format!("{GROUP}/{VERSION}")
}

fn kind() -> String {
    KIND.to_owned()
}

impl Constellation {
    pub fn new(name: &str, spec: ConstellationSpec) -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() },
            spec,
            status: None,
        }
    }
}

impl Resource for Constellation {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl HasSpec for Constellation {
    type Spec = ConstellationSpec;
    fn spec(&self) -> &ConstellationSpec {
        &self.spec
    }
    fn spec_mut(&mut self) -> &mut ConstellationSpec {
        &mut self.spec
    }
}

impl HasStatus for Constellation {
    type Status = ConstellationStatus;
    fn status(&self) -> Option<&ConstellationStatus> {
        self.status.as_ref()
    }
    fn status_mut(&mut self) -> &mut Option<ConstellationStatus> {
        &mut self.status
    }
}

/// Where a constellation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Accepted; no pod exists yet.
    Pending,
    /// Pods are being created, or have not all run yet, or links are not applied yet.
    Creating,
    /// Every pod runs and every agent has applied its links.
    Running,
    /// It was running, and now a pod or an agent is not well (see the `Degraded` condition).
    Degraded,
    /// The spec cannot be emulated (see the `Ready` condition's message).
    Failed,
    /// The experiment's `duration` is over and its objectives are judged (see the
    /// `ObjectivesMet` condition and `objectives`).
    Finished,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Creating => "Creating",
            Phase::Running => "Running",
            Phase::Degraded => "Degraded",
            Phase::Failed => "Failed",
            Phase::Finished => "Finished",
        }
    }

    pub const ALL: [Phase; 6] =
        [Phase::Pending, Phase::Creating, Phase::Running, Phase::Degraded, Phase::Failed, Phase::Finished];
}

/// Written by the operator (everything but `agents`) and by the link agents (`agents`, one
/// entry per Kubernetes node, each owned by that node's agent through server-side apply).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConstellationStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// `Ready` and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Nodes in the spec (one pod each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
    /// Pods that exist / are running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_running: Option<u32>,
    /// Links that can ever exist, and those up at `simTime` by the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links_up: Option<u32>,
    /// The emulation clock's zero: the instant the constellation was first Ready. Set once;
    /// the agents apply the model's state at (now - startedAt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Emulation time when this status was written, e.g. "1h2m3s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_time: Option<String>,
    /// Faults active at `simTime`, one line each, e.g. `nodeDown on polar-2-5`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_faults: Vec<String>,
    /// The spec's objectives judged: what the flows measured, the model's prediction and
    /// the result, from the link agents that receive the flows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub objectives: Vec<ObjectiveStatus>,
    /// What each node's link agent has applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub agents: Vec<AgentReport>,
}

/// One objective's verdict: measured value and result, the model's beside them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectiveStatus {
    pub name: String,
    pub flow: String,
    /// The bound, e.g. "p99 one-way delay <= 150 ms".
    pub requirement: String,
    pub window: String,
    /// `PASS`, `FAIL`, `INCONCLUSIVE`, or `PENDING` while the window is still open.
    pub result: String,
    /// The measured value, in the requirement's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The numbers behind the result.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// What the model's paths allow, its result and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<f64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_result: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_detail: String,
    /// Judged at the end of the run: the result will not change.
    #[serde(default)]
    pub settled: bool,
}

impl ObjectiveStatus {
    /// A verdict as the status says it; `settled` once the run is over.
    pub fn of(v: &orbitnet_mission::Verdict, settled: bool) -> Self {
        let m = v.measured.as_ref();
        let result = match m.map(|m| m.outcome) {
            Some(o) if settled => o.to_string(),
            Some(_) => "PENDING".into(),
            None => "PENDING".into(),
        };
        Self {
            name: v.objective.clone(),
            flow: v.flow.clone(),
            requirement: v.requirement.clone(),
            window: v.window.clone(),
            result,
            value: m.and_then(|m| m.value),
            detail: m.map(|m| m.detail.clone()).unwrap_or_default(),
            model: v.predicted.value,
            model_result: v.predicted.outcome.to_string(),
            model_detail: v.predicted.detail.clone(),
            settled,
        }
    }

    /// Back to a verdict, for tables and JUnit; `None` while pending.
    pub fn verdict(&self) -> Option<orbitnet_mission::Verdict> {
        use orbitnet_mission::{Outcome, verdict::Judged};
        let outcome = |s: &str| match s {
            "PASS" => Some(Outcome::Pass),
            "FAIL" => Some(Outcome::Fail),
            "INCONCLUSIVE" => Some(Outcome::Inconclusive),
            _ => None,
        };
        Some(orbitnet_mission::Verdict {
            objective: self.name.clone(),
            flow: self.flow.clone(),
            requirement: self.requirement.clone(),
            window: self.window.clone(),
            measured: Some(Judged {
                value: self.value,
                outcome: outcome(&self.result)?,
                detail: self.detail.clone(),
            }),
            predicted: Judged {
                value: self.model,
                outcome: outcome(&self.model_result).unwrap_or(Outcome::Inconclusive),
                detail: self.model_detail.clone(),
            },
        })
    }
}

/// A condition as Kubernetes writes them (metav1.Condition's fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    pub reason: String,
    /// Omitted when empty: a 1.20 server's server-side apply turns "" into null and then
    /// rejects it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// RFC 3339; changes only when `status` changes.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One link agent's account of the pods of this constellation on its Kubernetes node.
/// An agent applies its entry with server-side apply (field manager `orbitnet-agent-<node>`)
/// and withdraws it, once it has removed the links, with a JSON patch `remove` tested on
/// `node` (1.20's server-side apply leaves `null` behind when the last entry goes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentReport {
    /// The Kubernetes node the agent runs on.
    pub node: String,
    /// The constellation generation the agent applies.
    #[serde(default)]
    pub observed_generation: i64,
    /// Pods of this constellation the agent has wired.
    #[serde(default)]
    pub pods: u32,
    #[serde(default)]
    pub links_built: u32,
    #[serde(default)]
    pub links_up: u32,
    #[serde(default)]
    pub errors: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How far behind the emulation clock the last tick was applied, in milliseconds.
    #[serde(default)]
    pub lag_ms: u32,
    /// The objectives of the flows received on this node, judged on what arrived (at most
    /// every 10 s while the run lasts, and once at its end).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub objectives: Vec<ObjectiveStatus>,
}

/// A CEL rule (`x-kubernetes-validations`) on the schema at `path`.
struct CelRule {
    /// Dot-separated properties; `[]` steps into array items.
    path: &'static str,
    rule: String,
    message: String,
}

fn cel(path: &'static str, rule: impl Into<String>, message: impl Into<String>) -> CelRule {
    CelRule { path, rule: rule.into(), message: message.into() }
}

/// Cross-field rules the schema alone cannot say, for servers that evaluate CEL (1.25+).
/// The operator makes the same checks (the model's `compile`), so an older server's users
/// still get an `Invalid` condition naming the field. `tests/data/rule-cases.yaml` has a spec
/// each rule refuses and one it lets through.
fn cel_rules() -> Vec<CelRule> {
    vec![
        cel(
            "spec.shells[]",
            "has(self.walker) != has(self.tles)",
            "a shell has either `walker` or `tles`, not both and not neither",
        ),
        cel(
            "spec.shells[]",
            "!has(self.walker) || (has(self.altitudeKm) && has(self.inclinationDeg))",
            "a Walker shell needs `altitudeKm` and `inclinationDeg`",
        ),
        cel(
            "spec.shells[]",
            "!has(self.tles) || !(has(self.altitudeKm) || has(self.inclinationDeg))",
            "a TLE shell takes no `altitudeKm` or `inclinationDeg`: the TLEs give the orbits",
        ),
        cel(
            "spec.shells[]",
            "!has(self.tles) || !has(self.isl) || (has(self.isl.grid) && self.isl.grid == 'none')",
            "a TLE shell has no inter-satellite grid: leave out `isl` or set `grid: none`",
        ),
        cel(
            "spec.shells[]",
            format!(
                "!has(self.walker) || size(self.name) + size(string(self.walker.planes - 1)) \
                 + size(string(self.walker.satsPerPlane - 1)) + 2 <= {MAX_NAME_LEN}"
            ),
            format!("a Walker shell's satellite names `<name>-<plane>-<index>` have at most {MAX_NAME_LEN} characters"),
        ),
        cel(
            "spec.shells[].walker",
            "!has(self.phasing) || self.phasing < self.planes",
            "`phasing` must be below `planes`",
        ),
        cel(
            "spec.shells[].walker",
            format!("self.planes * self.satsPerPlane <= {MAX_NODES}"),
            format!("a Walker shell has at most {MAX_NODES} satellites (`planes` x `satsPerPlane`)"),
        ),
        cel(
            "spec.faults[]",
            "!(self.kind in ['nodeDown', 'stationDown']) || has(self.node)",
            "nodeDown and stationDown faults need `node`",
        ),
        cel(
            "spec.faults[]",
            "self.kind != 'linkDown' || (has(self.a) && has(self.b))",
            "linkDown faults need `a` and `b`",
        ),
        cel(
            "spec.faults[]",
            "self.kind != 'degraded' || (has(self.node) ? !has(self.a) && !has(self.b) : has(self.a) && has(self.b))",
            "degraded faults need `node`, or `a` and `b`, not both",
        ),
        cel(
            "spec.faults[]",
            "self.kind != 'degraded' || has(self.extraDelayUs) || has(self.lossPct) || has(self.rateMbps)",
            "degraded faults need `extraDelayUs`, `lossPct` or `rateMbps`",
        ),
        cel(
            "spec.faults[]",
            "self.kind != 'jamming' || (has(self.latDeg) && has(self.lonDeg) && has(self.radiusKm) && has(self.lossPct))",
            "jamming faults need `latDeg`, `lonDeg`, `radiusKm` and `lossPct`",
        ),
    ]
    .into_iter()
    .chain(FaultKind::ALL.into_iter().map(fields_of_fault_kind))
    .chain([
        cel(
            "spec.traffic[]",
            "has(self.packetsPerSecond) != has(self.rateMbps)",
            "a flow has a rate: `packetsPerSecond` or `rateMbps`, not both",
        ),
        cel(
            "spec.traffic[]",
            "self.from.lowerAscii() != self.to.lowerAscii()",
            "a flow joins two different nodes: `from` and `to` differ",
        ),
        cel(
            "spec",
            "!has(self.objectives) || self.objectives.all(o, o.kind in ['convergence', 'stretch'] ? \
             !has(o.flow) : (has(o.flow) && has(self.traffic) && self.traffic.exists(f, f.name == o.flow)))",
            "an objective's `flow` names a flow of `traffic`; `convergence` and `stretch` objectives take none",
        ),
        cel(
            "spec.objectives[].window",
            "(has(self.from) || has(self.to) ? 1 : 0) + (has(self.during) ? 1 : 0) + (has(self.after) ? 1 : 0) == 1",
            "a window is `from`/`to`, `during` a fault, or `after` a fault: exactly one",
        ),
        cel(
            "spec.objectives[].window",
            "!has(self.settle) || has(self.after)",
            "a window's `settle` goes with `after`",
        ),
        cel(
            "spec",
            "!has(self.routingProtocol) || (has(self.routing) && self.routing in ['ospf', 'isis'])",
            "`routingProtocol` goes with `routing: ospf` or `routing: isis`",
        ),
        cel(
            "spec",
            "!(has(self.routing) && self.routing == 'isis' && has(self.routingProtocol) \
             && has(self.routingProtocol.daemon) && self.routingProtocol.daemon == 'bird')",
            "BIRD 2 does not speak IS-IS: `routing: isis` needs `daemon: frr`",
        ),
        cel(
            "spec.routingProtocol",
            "(has(self.deadIntervalS) ? self.deadIntervalS : 4) > (has(self.helloIntervalS) ? self.helloIntervalS : 1)",
            "`deadIntervalS` is longer than `helloIntervalS`",
        ),
        cel(
            "spec.routingProtocol.spf",
            "(has(self.holdMs) ? self.holdMs : 200) <= (has(self.maxHoldMs) ? self.maxHoldMs : 5000)",
            "`spf.maxHoldMs` is at least `spf.holdMs`",
        ),
    ])
    .chain(ObjectiveKind::ALL.into_iter().map(fields_of_objective_kind))
    .collect()
}

/// `has(self.<field>)` for each field some kind uses and `used` does not, and `used` named
/// for a message.
fn fields_outside(
    every: impl Iterator<Item = &'static [&'static str]>,
    used: &[&str],
) -> (Vec<String>, Vec<String>) {
    let mut unused: Vec<&str> = every.flatten().copied().collect();
    unused.sort_unstable();
    unused.dedup();
    unused.retain(|f| !used.contains(f));
    let set = unused.iter().map(|f| format!("has(self.{f})")).collect();
    let named = used.iter().map(|f| format!("`{f}`")).collect();
    (set, named)
}

/// An objective of `kind` sets the bound that kind needs, and only the fields it uses.
fn fields_of_objective_kind(kind: ObjectiveKind) -> CelRule {
    let used = kind.fields();
    let (set, named) = fields_outside(ObjectiveKind::ALL.iter().map(|k| k.fields()), used);
    let unused_rule = if set.is_empty() { String::new() } else { format!(" && !({})", set.join(" || ")) };
    cel(
        "spec.objectives[]",
        format!("self.kind != '{}' || has(self.{}){unused_rule}", kind.as_str(), used[0]),
        format!(
            "{} objectives need `{}` and set only {} of the bounds",
            kind.as_str(),
            used[0],
            named.join(", ")
        ),
    )
}

/// A fault of `kind` sets only the fields that kind uses.
fn fields_of_fault_kind(kind: FaultKind) -> CelRule {
    let used = kind.fields();
    let (set, named) = fields_outside(FaultKind::ALL.iter().map(|k| k.fields()), used);
    cel(
        "spec.faults[]",
        format!("self.kind != '{}' || !({})", kind.as_str(), set.join(" || ")),
        format!("{} faults set only {}, `at` and `duration`", kind.as_str(), named.join(", ")),
    )
}

/// The CRD, exactly as committed in `crds/constellation.yaml`.
pub fn crd() -> CustomResourceDefinition {
    let mut schema = root_schema();
    for rule in cel_rules() {
        add_rule(&mut schema, &rule);
    }
    let schema: JSONSchemaProps =
        serde_json::from_value(schema).expect("the generated schema is a JSONSchemaProps (tested)");
    let column = |name: &str, type_: &str, path: &str, description: &str| CustomResourceColumnDefinition {
        name: name.into(),
        type_: type_.into(),
        json_path: path.into(),
        description: Some(description.into()),
        ..CustomResourceColumnDefinition::default()
    };
    CustomResourceDefinition {
        metadata: ObjectMeta { name: Some(format!("{PLURAL}.{GROUP}")), ..ObjectMeta::default() },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: KIND.into(),
                plural: PLURAL.into(),
                singular: Some("constellation".into()),
                short_names: Some(vec![SHORT_NAME.into()]),
                list_kind: Some(format!("{KIND}List")),
                categories: Some(vec!["orbitnet".into()]),
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(json!({}))),
                    scale: None,
                }),
                additional_printer_columns: Some(vec![
                    column(
                        "Phase",
                        "string",
                        ".status.phase",
                        "Pending, Creating, Running, Degraded or Failed",
                    ),
                    column("Nodes", "integer", ".status.nodes", "Nodes in the spec, one pod each"),
                    column("Links Up", "integer", ".status.linksUp", "Links up now by the model"),
                    column(
                        "Sim Time",
                        "string",
                        ".status.simTime",
                        "Emulation time at the last status update",
                    ),
                    column("Age", "date", ".metadata.creationTimestamp", ""),
                ]),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

/// The CRD as YAML, with a header saying where it comes from.
pub fn crd_yaml() -> String {
    let body = serde_yaml::to_string(&crd()).expect("a CRD serializes (plain data)");
    format!("# Generated by `orbitnet crd` from operator/api/src/crd.rs; do not edit.\n{body}")
}

/// The OpenAPI schema of the whole object, generated as kube-derive does: inline, structural,
/// with nullable optionals.
fn root_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(KubernetesFormats)
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .into_generator();
    let spec = generator.clone().into_root_schema_for::<ConstellationSpec>();
    let status = generator.into_root_schema_for::<ConstellationStatus>();
    let mut spec = serde_json::to_value(spec).expect("schemas serialize");
    let mut status = serde_json::to_value(status).expect("schemas serialize");
    for schema in [&mut spec, &mut status] {
        if let Some(object) = schema.as_object_mut() {
            object.remove("title");
            object.remove("$schema");
        }
    }
    // Writers of the status always send whole entries; a default there only trips servers
    // (1.20 rejects an empty string default).
    strip_defaults(&mut status);
    json!({
        "type": "object",
        "description": "A constellation: satellites, ground stations and platforms, one pod each, \
                        linked as orbital geometry allows.",
        "properties": {
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    })
}

/// schemars names unsigned integer formats by their width (`uint32`); Kubernetes knows only
/// `int32` and `int64` (1.36 warns `unrecognized format "uint32"` and checks nothing). Such a
/// schema gets whichever holds the type, and the type's largest value as its maximum where
/// it states none lower (schemars states the minimum, 0), so the API server refuses what the
/// Rust type cannot hold.
#[derive(Clone)]
struct KubernetesFormats;

impl Transform for KubernetesFormats {
    fn transform(&mut self, schema: &mut Schema) {
        let bits = schema.get("format").and_then(Value::as_str).and_then(|f| f.strip_prefix("uint"));
        if let Some(bits) = bits.and_then(|b| b.parse::<i32>().ok()) {
            let max = 2f64.powi(bits) - 1.0;
            let format = if max <= f64::from(i32::MAX) { "int32" } else { "int64" };
            schema.insert("format".into(), format.into());
            if schema.get("maximum").and_then(Value::as_f64).is_none_or(|stated| stated > max) {
                schema.insert("maximum".into(), max.into());
            }
        }
        transform_subschemas(self, schema);
    }
}

fn strip_defaults(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            map.remove("default");
            map.values_mut().for_each(strip_defaults);
        }
        Value::Array(list) => list.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

fn add_rule(schema: &mut Value, CelRule { path, rule, message }: &CelRule) {
    let mut at = schema;
    for step in path.split('.') {
        let (name, items) = match step.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (step, false),
        };
        at = &mut at["properties"][name];
        assert!(at.is_object(), "CEL rule path {path}: no property {name} in the schema");
        if items {
            at = &mut at["items"];
        }
    }
    let rules = at.as_object_mut().expect("a property's schema is an object (asserted above)");
    let list = rules.entry("x-kubernetes-validations").or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut() {
        list.push(json!({"rule": rule, "message": message}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_crd_is_the_generated_one() {
        let committed = include_str!("../../../crds/constellation.yaml");
        assert!(
            committed == crd_yaml(),
            "crds/constellation.yaml differs from the generated CRD; regenerate it with: \
             cargo run -p orbitnet -- crd > crds/constellation.yaml"
        );
    }

    #[test]
    fn the_spec_schema_has_the_documents_fields_bounds_and_enums() {
        let crd = serde_json::to_value(crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], json!(["epoch"]));
        let station = &spec["properties"]["groundStations"]["items"]["properties"];
        assert_eq!(station["latDeg"]["minimum"], json!(-90.0));
        assert_eq!(station["latDeg"]["maximum"], json!(90.0));
        let walker = &spec["properties"]["shells"]["items"]["properties"]["walker"];
        assert_eq!(walker["properties"]["type"]["enum"], json!(["delta", "star"]));
        assert_eq!(
            spec["properties"]["faults"]["items"]["properties"]["kind"]["enum"].as_array().unwrap().len(),
            5
        );
        assert_eq!(spec["additionalProperties"], Value::Null, "structural schemas may not forbid fields");
    }

    #[test]
    fn cel_rules_sit_where_their_paths_say() {
        let crd = serde_json::to_value(crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let shell = &spec["properties"]["shells"]["items"];
        assert_eq!(shell["x-kubernetes-validations"].as_array().unwrap().len(), 5);
        let walker = &shell["properties"]["walker"]["x-kubernetes-validations"];
        assert_eq!(walker.as_array().unwrap().len(), 2);
        let fault_rules = &spec["properties"]["faults"]["items"]["x-kubernetes-validations"];
        assert_eq!(fault_rules.as_array().unwrap().len(), 10);
    }

    fn open_api_schema() -> Value {
        let crd = serde_json::to_value(crd()).unwrap();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
    }

    /// Calls `visit` with the path (`[]` for array items) and schema of every field under
    /// `schema` (objects' properties and arrays' items; maps' values are not fields).
    fn each_field(schema: &Value, path: &str, visit: &mut impl FnMut(&str, &Value)) {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let path = format!("{path}.{name}");
                visit(&path, property);
                each_field(property, &path, visit);
            }
        }
        if let Some(items) = schema.get("items") {
            let path = format!("{path}[]");
            visit(&path, items);
            each_field(items, &path, visit);
        }
    }

    /// Every field set; see the file's header.
    const EVERY_FIELD: &str = include_str!("../tests/data/every-field.yaml");

    /// The schema of the field at `path`, e.g. `spec.groundStations[0].latDeg`: an index
    /// steps into the array's items.
    fn schema_at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
        let mut at = root;
        for step in path.split('.') {
            let (name, index) = match step.split_once('[') {
                Some((name, _)) => (name, true),
                None => (step, false),
            };
            at = at.get("properties")?.get(name)?;
            if index {
                at = at.get("items")?;
            }
        }
        Some(at)
    }

    /// `path` with every array index written `[]`: the same field of every item.
    fn any_item(path: &str) -> String {
        let mut out = String::new();
        let mut in_index = false;
        for c in path.chars() {
            match c {
                '[' => in_index = true,
                ']' => {
                    in_index = false;
                    out.push_str("[]");
                }
                _ if in_index => {}
                _ => out.push(c),
            }
        }
        out
    }

    /// A schema's or a model's bounds as `[min, max]`, `(min, max]` when min is exclusive.
    fn interval(min: Option<f64>, min_exclusive: bool, max: Option<f64>) -> String {
        let show = |v: Option<f64>| v.map_or("none".to_owned(), |v| v.to_string());
        let open = if min_exclusive { '(' } else { '[' };
        format!("{open}{}, {}]", show(min), show(max))
    }

    fn stated_interval(schema: &Value) -> String {
        interval(
            schema["minimum"].as_f64(),
            schema["exclusiveMinimum"].as_bool().unwrap_or(false),
            schema["maximum"].as_f64(),
        )
    }

    /// The model's numeric checks, run over a spec that sets every field, are the schema's
    /// bounds: every check is in the schema, at the same field, with the same minimum,
    /// maximum and exclusiveness; and the schema bounds nothing the model does not, but for
    /// the range of the field's type (a `phasing` is a u32; the model checks it against
    /// `planes`, a CEL rule).
    #[test]
    fn the_schema_bounds_what_the_model_bounds_and_no_more() {
        let cst: Constellation = serde_yaml::from_str(EVERY_FIELD).unwrap();
        orbitnet_model::compile("every-field", &cst.spec).unwrap_or_else(|e| panic!("every-field.yaml: {e}"));
        let bounds = orbitnet_model::compile::bounds(&cst.spec);
        let root = open_api_schema();
        let mut wrong = Vec::new();
        for b in &bounds {
            let checked = interval(Some(b.min), b.min_exclusive, Some(b.max));
            match schema_at(&root, &b.path) {
                None => {
                    wrong.push(format!("{}: the model checks {checked}; no such field in the schema", b.path))
                }
                Some(schema) if stated_interval(schema) != checked => wrong.push(format!(
                    "{}: the model checks {checked}, the schema says {}",
                    b.path,
                    stated_interval(schema)
                )),
                Some(_) => {}
            }
        }
        let checked: std::collections::BTreeSet<String> = bounds.iter().map(|b| any_item(&b.path)).collect();
        let type_range = interval(Some(0.0), false, Some(f64::from(u32::MAX)));
        each_field(&root["properties"]["spec"], "spec", &mut |path, schema| {
            let stated = stated_interval(schema);
            let bounded = schema.get("minimum").is_some() || schema.get("maximum").is_some();
            if bounded && !checked.contains(path) && stated != type_range {
                wrong.push(format!("{path}: the schema says {stated}; the model checks no bound"));
            }
        });
        assert!(bounds.len() >= 40, "only {} bounds: does every-field.yaml set every field?", bounds.len());
        assert!(
            wrong.is_empty(),
            "the CRD's schema and the model's checks differ (bounds go in spec.rs, #[schemars(range)]):\n{}",
            wrong.join("\n")
        );
    }

    /// The fields the model checks as names (`compile::names` over every-field.yaml) have the
    /// schema's name pattern and lengths, and no other field has the name pattern.
    #[test]
    fn the_schema_checks_names_where_the_model_does() {
        use orbitnet_model::compile::{MAX_NAME_LEN, NAME_PATTERN};
        let cst: Constellation = serde_yaml::from_str(EVERY_FIELD).unwrap();
        let names = orbitnet_model::compile::names(&cst.spec);
        assert!(names.len() >= 4, "only {names:?}: does every-field.yaml have every kind of name?");
        let root = open_api_schema();
        let mut wrong = Vec::new();
        for path in &names {
            match schema_at(&root, path) {
                None => wrong.push(format!("{path}: the model checks a name; no such field in the schema")),
                Some(schema)
                    if schema["pattern"] != NAME_PATTERN
                        || schema["minLength"] != 1
                        || schema["maxLength"] != MAX_NAME_LEN =>
                {
                    wrong.push(format!("{path}: the model checks a name, the schema says {schema}"))
                }
                Some(_) => {}
            }
        }
        let checked: std::collections::BTreeSet<String> = names.iter().map(|p| any_item(p)).collect();
        each_field(&root["properties"]["spec"], "spec", &mut |path, schema| {
            if schema["pattern"] == NAME_PATTERN && !checked.contains(path) {
                wrong.push(format!("{path}: the schema has the name pattern; the model checks no name"));
            }
        });
        assert!(
            wrong.is_empty(),
            "the CRD's schema and the model's names differ (spec.rs: #[schemars(length, pattern)]):\n{}",
            wrong.join("\n")
        );
    }

    /// tests/data/name-cases.yaml: at every name field, the model refuses each bad name there
    /// and finds nothing wrong there with a good one.
    #[test]
    fn the_model_judges_names_as_the_cases_say() {
        let base: Value = serde_yaml::from_str(EVERY_FIELD).unwrap();
        let cases: Value = serde_yaml::from_str(include_str!("../tests/data/name-cases.yaml")).unwrap();
        let cst: Constellation = serde_json::from_value(base.clone()).unwrap();
        for path in orbitnet_model::compile::names(&cst.spec) {
            let pointer: String =
                path.split(['.', '[']).map(|s| format!("/{}", s.trim_end_matches(']'))).collect();
            for (list, bad) in [("bad", true), ("good", false)] {
                for name in cases[list].as_array().unwrap() {
                    let mut doc = base.clone();
                    *doc.pointer_mut(&pointer).unwrap_or_else(|| panic!("{pointer} in every-field.yaml")) =
                        name.clone();
                    let cst: Constellation = serde_json::from_value(doc).unwrap();
                    let problems =
                        orbitnet_model::compile("every-field", &cst.spec).err().map(|e| e.problems());
                    let refused = problems.iter().flatten().any(|p| p.starts_with(&format!("{path}:")));
                    assert_eq!(refused, bad, "{path} = {name}: the model says {problems:?}");
                }
            }
        }
    }

    /// A field every-field.yaml leaves out would have its bounds go unchecked above.
    #[test]
    fn every_field_yaml_sets_every_field_of_the_spec() {
        let doc: Value = serde_yaml::from_str(EVERY_FIELD).unwrap();
        let root = open_api_schema();
        let mut missing = Vec::new();
        each_field(&root["properties"]["spec"], "spec", &mut |path, _| {
            if !values_at(&doc, path).iter().any(|v| !v.is_null()) {
                missing.push(path.to_owned());
            }
        });
        assert!(missing.is_empty(), "tests/data/every-field.yaml does not set {missing:?}");
    }

    /// The values at `path` (`[]`: in every item of the array).
    fn values_at<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
        let mut at = vec![doc];
        for step in path.split('.') {
            let (name, items) = match step.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (step, false),
            };
            at = at.into_iter().map(|v| &v[name]).collect();
            if items {
                at = at.into_iter().filter_map(Value::as_array).flatten().collect();
            }
        }
        at
    }

    /// Formats Kubernetes checks, by type (1.36, k8s.io/apiextensions-apiserver
    /// pkg/apiserver/validation/formats.go, `supportedVersionedFormats` and
    /// `GetUnrecognizedFormats`); others it ignores, with a warning at install.
    fn kubernetes_knows(type_: &str, format: &str) -> bool {
        const STRING_FORMATS: &[&str] = &[
            "bsonobjectid",
            "uri",
            "email",
            "hostname",
            "ipv4",
            "ipv6",
            "cidr",
            "mac",
            "uuid",
            "uuid3",
            "uuid4",
            "uuid5",
            "isbn",
            "isbn10",
            "isbn13",
            "creditcard",
            "ssn",
            "hexcolor",
            "rgbcolor",
            "byte",
            "password",
            "date",
            "duration",
            "datetime",
        ];
        match type_ {
            "integer" => ["int32", "int64"].contains(&format),
            "number" => ["float", "double"].contains(&format),
            // Compared without dashes, as go-openapi names them: `date-time` is `datetime`.
            "string" => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
            _ => false,
        }
    }

    #[test]
    fn every_format_is_one_kubernetes_recognizes() {
        let root = open_api_schema();
        let mut unknown = Vec::new();
        let mut formats = 0;
        each_field(&root, "", &mut |path, schema| {
            if let Some(format) = schema.get("format").and_then(Value::as_str) {
                formats += 1;
                let type_ = schema["type"].as_str().unwrap_or("");
                if !kubernetes_knows(type_, format) {
                    unknown.push(format!("{path}: {type_} {format}"));
                }
            }
        });
        assert!(formats > 0);
        assert!(unknown.is_empty(), "formats Kubernetes does not recognize: {unknown:?}");
    }

    #[test]
    fn unsigned_fields_say_what_their_type_holds() {
        let root = open_api_schema();
        let pods = &root["properties"]["status"]["properties"]["pods"];
        assert_eq!(
            (&pods["format"], &pods["minimum"], &pods["maximum"]),
            (&json!("int64"), &json!(0.0), &json!(4294967295.0))
        );
        let antennas = schema_at(&root, "spec.groundLinks.antennas").unwrap();
        assert_eq!(antennas["maximum"], json!(64.0), "a lower maximum is kept");
    }

    #[test]
    fn agents_and_conditions_merge_by_key() {
        let crd = serde_json::to_value(crd()).unwrap();
        let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
        assert_eq!(status["properties"]["agents"]["x-kubernetes-list-type"], json!("map"));
        assert_eq!(status["properties"]["agents"]["x-kubernetes-list-map-keys"], json!(["node"]));
        assert_eq!(status["properties"]["conditions"]["x-kubernetes-list-map-keys"], json!(["type"]));
    }

    #[test]
    fn a_scenario_file_is_a_custom_resource() {
        let yaml = include_str!("../../../scenarios/backbone.yaml");
        let cst: Constellation = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(cst.metadata.name.as_deref(), Some("backbone"));
        assert_eq!(cst.spec.shells.len(), 2);
        orbitnet_model::compile("backbone", &cst.spec).unwrap();
    }

    /// tests/data/rule-cases.yaml: every case's `bad` spec is refused by the model, at the
    /// case's field (and maybe elsewhere too: faults name the satellites of a broken shell),
    /// and its `good` one accepted; every CEL rule has a case.
    #[test]
    fn the_model_agrees_with_every_cel_rule_on_its_cases() {
        let base: Value = serde_yaml::from_str(EVERY_FIELD).unwrap();
        let cases: Vec<Value> = serde_yaml::from_str(include_str!("../tests/data/rule-cases.yaml")).unwrap();
        let compiled = |patch: &Value| {
            let mut doc = base.clone();
            let patch: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
            json_patch::patch(&mut doc, &patch).unwrap();
            let cst: Constellation = serde_json::from_value(doc).unwrap();
            orbitnet_model::compile("every-field", &cst.spec)
        };
        for case in &cases {
            let (rule, field) = (case["rule"].as_str().unwrap(), case["field"].as_str().unwrap());
            let problems = compiled(&case["bad"]).map(|_| ()).expect_err(rule).problems();
            assert!(
                problems.iter().any(|p| p.starts_with(field)),
                "{rule}: the model finds no problem under {field}, only {problems:?}"
            );
            if let Err(e) = compiled(&case["good"]) {
                panic!("{rule}: the good spec is refused by the model: {e}");
            }
        }
        for rule in cel_rules() {
            assert!(
                cases.iter().any(|c| c["rule"] == rule.message.as_str()),
                "rule-cases.yaml has no case for the CEL rule {:?}",
                rule.message
            );
        }
    }
}
