//! What a constellation owns in the cluster, as pure functions of the resource and its plan:
//! one Pod per node, a headless Service (DNS names `<node>.<constellation>`), and a ConfigMap
//! with the hosts table of the emulated addresses (and, in `routing: ospf | isis`, the
//! constellation itself, from which each pod's `routing` container writes its node's
//! daemon configuration). No API calls here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, EnvVar, Pod, PodAffinity,
    PodAffinityTerm, PodAntiAffinity, PodSpec, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use kube::Resource;
use orbitnet_model::spec::{self, NodeTemplate, RoutingDaemon};
use orbitnet_model::{NodeIdx, NodeKind, Plan};

use orbitnet_api::Constellation;
use orbitnet_api::labels::{
    ANNOTATION_ADDRESS, ANNOTATION_TEMPLATE_HASH, LABEL_CONSTELLATION, LABEL_GROUP, LABEL_NODE, LABEL_ROLE,
};

/// The image pods run when the spec names none for their role.
pub const DEFAULT_NODE_IMAGE: &str = concat!("orbitnet/node:", env!("CARGO_PKG_VERSION"));
/// Where pods find the hosts table of the emulated addresses.
pub const HOSTS_DIR: &str = "/etc/orbitnet";
/// The port the default node program serves its status page on.
pub const STATUS_PORT: i32 = 8080;
/// The container that runs a node's routing daemons (`routing: ospf | isis`).
pub const ROUTING_CONTAINER: &str = "routing";
/// The constellation as a file (`orbitnet run`'s form, in JSON), beside the hosts table.
pub const CONSTELLATION_FILE: &str = "constellation.json";

/// The name of a node's pod: `<constellation>-<node>`.
pub fn pod_name(constellation: &str, node: &str) -> String {
    format!("{constellation}-{node}")
}

pub fn hosts_config_map_name(constellation: &str) -> String {
    format!("{constellation}-hosts")
}

/// The label selector of everything a constellation owns.
pub fn selector(constellation: &str) -> String {
    format!("{LABEL_CONSTELLATION}={constellation}")
}

/// Labels and owner reference every child carries.
fn child_meta(cst: &Constellation, name: String) -> ObjectMeta {
    let owner = cst.controller_owner_ref(&()).map(|mut o| {
        o.block_owner_deletion = Some(true);
        o
    });
    ObjectMeta {
        name: Some(name),
        namespace: cst.metadata.namespace.clone(),
        labels: Some(BTreeMap::from([
            ("app.kubernetes.io/name".to_owned(), "orbitnet-node".to_owned()),
            ("app.kubernetes.io/managed-by".to_owned(), "orbitnet".to_owned()),
            (LABEL_CONSTELLATION.to_owned(), constellation_name(cst).to_owned()),
        ])),
        owner_references: owner.map(|o: OwnerReference| vec![o]),
        ..ObjectMeta::default()
    }
}

fn constellation_name(cst: &Constellation) -> &str {
    cst.metadata.name.as_deref().unwrap_or_default()
}

/// The headless Service that gives each node pod a DNS name, `<node>.<constellation>`.
pub fn service(cst: &Constellation) -> Service {
    let name = constellation_name(cst).to_owned();
    Service {
        metadata: child_meta(cst, name.clone()),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(BTreeMap::from([(LABEL_CONSTELLATION.to_owned(), name)])),
            // Pods are addressable before they are ready: links come up after the pods.
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![ServicePort {
                name: Some("status".to_owned()),
                port: STATUS_PORT,
                // Server-side apply on 1.20 needs the list key spelled out.
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The hosts table (`address<TAB>node`) of the emulated network, mounted in every pod; in
/// `routing: ospf | isis` also the constellation, for the pods' routing containers. The
/// spec is small at any scale, where every node's configuration would not be: a ground
/// station's FRR file names an interface for every satellite.
pub fn hosts_config_map(cst: &Constellation, plan: &Plan) -> ConfigMap {
    let mut data = BTreeMap::from([("hosts".to_owned(), plan.hosts_table())]);
    if plan.routing_protocol.is_some() {
        let document = spec::Document {
            api_version: spec::API_VERSION.to_owned(),
            kind: spec::KIND.to_owned(),
            metadata: spec::Metadata {
                name: constellation_name(cst).to_owned(),
                ..spec::Metadata::default()
            },
            spec: cst.spec.clone(),
        };
        // Plain data with string keys: serializing cannot fail.
        let json = serde_json::to_string(&document).expect("a spec serializes");
        data.insert(CONSTELLATION_FILE.to_owned(), json);
    }
    ConfigMap {
        metadata: child_meta(cst, hosts_config_map_name(constellation_name(cst))),
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// The hosts ConfigMap's volume, read-only at `HOSTS_DIR`, in every container of a pod.
fn hosts_mount(volume: &str) -> VolumeMount {
    VolumeMount {
        name: volume.to_owned(),
        mount_path: HOSTS_DIR.to_owned(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

/// A node's `routing` container: the default node image's `orbitnet routing`, as root in
/// the container with the capabilities its daemons ask for and nothing more (never
/// privileged): NET_ADMIN and NET_RAW for routes and routing packets, and for FRR also
/// SYS_ADMIN, without which its daemons refuse to start (FRR 8.4's privileges code asks for
/// it; MetalLB's FRR container is given the same).
fn routing_container(plan: &Plan, node: &str, volume: &str) -> Option<Container> {
    let p = plan.routing_protocol.as_ref()?;
    let mut add = vec!["NET_ADMIN", "NET_RAW"];
    if p.daemon == RoutingDaemon::Frr {
        add.push("SYS_ADMIN");
    }
    Some(Container {
        name: ROUTING_CONTAINER.to_owned(),
        image: Some(DEFAULT_NODE_IMAGE.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: Some(
            [
                "/usr/local/bin/orbitnet",
                "routing",
                "--file",
                &format!("{HOSTS_DIR}/{CONSTELLATION_FILE}"),
                "--node",
                node,
            ]
            .map(String::from)
            .to_vec(),
        ),
        volume_mounts: Some(vec![hosts_mount(volume)]),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(add.into_iter().map(String::from).collect()),
                drop: None,
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    })
}

/// Every node's pod, in node order.
pub fn pods(cst: &Constellation, plan: &Plan) -> Vec<Pod> {
    let neighbours = isl_neighbours(plan);
    let groups = (plan.placement_groups > 1).then(|| orbitnet_model::placement::groups(plan));
    (0..plan.nodes.len() as NodeIdx)
        .map(|i| {
            let group = groups.as_ref().and_then(|g| g[i as usize]);
            pod(cst, plan, i, &neighbours[i as usize], group)
        })
        .collect()
}

/// Where a satellite of placement group `group` may run: with the pods of its group
/// (required: the first of a group goes where the scheduler likes, the rest follow it), and
/// preferably not with pods of other groups (so groups spread over the nodes).
fn group_affinity(cst_name: &str, group: u32) -> Affinity {
    let hostname = "kubernetes.io/hostname".to_owned();
    let group = group.to_string();
    let same = LabelSelector {
        match_labels: Some(BTreeMap::from([
            (LABEL_CONSTELLATION.to_owned(), cst_name.to_owned()),
            (LABEL_GROUP.to_owned(), group.clone()),
        ])),
        ..LabelSelector::default()
    };
    let others = LabelSelector {
        match_labels: Some(BTreeMap::from([(LABEL_CONSTELLATION.to_owned(), cst_name.to_owned())])),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: LABEL_GROUP.to_owned(),
                operator: "Exists".to_owned(),
                values: None,
            },
            LabelSelectorRequirement {
                key: LABEL_GROUP.to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(vec![group]),
            },
        ]),
    };
    Affinity {
        pod_affinity: Some(PodAffinity {
            required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                label_selector: Some(same),
                topology_key: hostname.clone(),
                ..PodAffinityTerm::default()
            }]),
            ..PodAffinity::default()
        }),
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    label_selector: Some(others),
                    topology_key: hostname,
                    ..PodAffinityTerm::default()
                },
            }]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// The satellites each node has an inter-satellite link to (ground links change with time,
/// so they are not in a pod's fixed environment).
fn isl_neighbours(plan: &Plan) -> Vec<Vec<NodeIdx>> {
    let mut neighbours = vec![Vec::new(); plan.nodes.len()];
    for isl in &plan.isls {
        neighbours[isl.a as usize].push(isl.b);
        neighbours[isl.b as usize].push(isl.a);
    }
    neighbours
}

fn pod(cst: &Constellation, plan: &Plan, i: NodeIdx, neighbours: &[NodeIdx], group: Option<u32>) -> Pod {
    let node = plan.node(i);
    let cst_name = constellation_name(cst);
    let template = plan.node_templates.for_kind(node.kind).cloned().unwrap_or_default();
    let hosts = format!("{HOSTS_DIR}/hosts");
    let mut env: BTreeMap<String, String> = plan.node_env(i, neighbours, &hosts).into_iter().collect();
    env.extend(template.env.clone());
    let mut meta = child_meta(cst, pod_name(cst_name, &node.name));
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(LABEL_NODE.to_owned(), node.name.clone());
    labels.insert(LABEL_ROLE.to_owned(), role_label(node.kind).to_owned());
    if let Some(g) = group {
        labels.insert(LABEL_GROUP.to_owned(), g.to_string());
    }
    let hosts_volume = "orbitnet-hosts".to_owned();
    let container = Container {
        name: "node".to_owned(),
        image: Some(template.image.clone().unwrap_or_else(|| DEFAULT_NODE_IMAGE.to_owned())),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        command: template.command.clone(),
        env: Some(
            env.into_iter()
                .map(|(name, value)| EnvVar { name, value: Some(value), value_from: None })
                .collect(),
        ),
        volume_mounts: Some(vec![hosts_mount(&hosts_volume)]),
        ..Container::default()
    };
    let spec = PodSpec {
        hostname: Some(node.name.clone()),
        subdomain: Some(cst_name.to_owned()),
        containers: [Some(container), routing_container(plan, &node.name, &hosts_volume)]
            .into_iter()
            .flatten()
            .collect(),
        volumes: Some(vec![Volume {
            name: hosts_volume,
            config_map: Some(ConfigMapVolumeSource {
                name: hosts_config_map_name(cst_name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        }]),
        // Node programs do not talk to the API server.
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(5),
        affinity: group.map(|g| group_affinity(cst_name, g)),
        ..PodSpec::default()
    };
    meta.annotations = Some(BTreeMap::from([
        (
            ANNOTATION_TEMPLATE_HASH.to_owned(),
            template_hash(&template, &spec, &orbitnet_routing::files(plan, i)),
        ),
        (ANNOTATION_ADDRESS.to_owned(), plan.node_address(i).to_string()),
    ]));
    Pod { metadata: meta, spec: Some(spec), status: None }
}

/// A label value for a role (labels may not hold camelCase's meaning as well as kebab-case).
pub fn role_label(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Satellite => "satellite",
        NodeKind::GroundStation => "ground-station",
        NodeKind::Platform => "platform",
    }
}

/// A digest of what a pod is made of, the same from one build to the next (FNV-1a over the
/// JSON), its routing daemons' files included. A changed digest means the pod must be
/// rolled: most of a pod's spec cannot be changed in place, and the daemons read their
/// files once.
fn template_hash(template: &NodeTemplate, spec: &PodSpec, routing: &[(&str, String)]) -> String {
    // Plain data with string keys: serializing cannot fail.
    let json = serde_json::to_string(&(template, spec, routing)).expect("a pod spec serializes");
    format!("{:016x}", orbitnet_model::fnv1a_64(json.bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{TINY, constellation};

    #[test]
    fn one_pod_per_node_named_labelled_and_owned() {
        let (cst, plan) = constellation(TINY);
        let pods = pods(&cst, &plan);
        assert_eq!(pods.len(), plan.nodes.len());
        let first = &pods[0];
        let node = &plan.nodes[0].name;
        assert_eq!(first.metadata.name.as_deref(), Some(format!("tiny-{node}").as_str()));
        let labels = first.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_CONSTELLATION], "tiny");
        assert_eq!(&labels[LABEL_NODE], node);
        assert_eq!(labels[LABEL_ROLE], "satellite");
        let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("Constellation", "tiny", Some(true))
        );
        let spec = first.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(node.as_str()));
        assert_eq!(spec.subdomain.as_deref(), Some("tiny"));
        let env = spec.containers[0].env.as_ref().unwrap();
        let get = |name: &str| env.iter().find(|e| e.name == name).and_then(|e| e.value.clone()).unwrap();
        assert_eq!(get("ORBITNET_NODE"), *node);
        assert_eq!(get("ORBITNET_ADDR"), plan.node_address(0).to_string());
        assert_eq!(get("ORBITNET_HOSTS"), "/etc/orbitnet/hosts");
        assert!(!get("ORBITNET_NEIGHBOURS").is_empty(), "a satellite of a plus grid has ISL neighbours");
    }

    #[test]
    fn a_roles_template_gives_image_command_and_env_and_changes_the_hash() {
        let (cst, plan) = constellation(TINY);
        let before = pods(&cst, &plan);
        let ground = plan.ground_range().start;
        let yaml = format!(
            "{TINY}  nodes:\n    groundStation: {{image: example/probe:2, command: [probe, --all], env: {{MODE: fast}}}}\n"
        );
        let (cst, plan) = constellation(&yaml);
        let after = pods(&cst, &plan);
        let c = &after[ground].spec.as_ref().unwrap().containers[0];
        assert_eq!(c.image.as_deref(), Some("example/probe:2"));
        assert_eq!(c.command.as_ref().unwrap(), &vec!["probe".to_owned(), "--all".to_owned()]);
        assert!(
            c.env.as_ref().unwrap().iter().any(|e| e.name == "MODE" && e.value.as_deref() == Some("fast"))
        );
        let hash = |p: &Pod| p.metadata.annotations.as_ref().unwrap()[ANNOTATION_TEMPLATE_HASH].clone();
        assert_ne!(hash(&before[ground]), hash(&after[ground]), "the ground station's pods roll");
        assert_eq!(hash(&before[0]), hash(&after[0]), "satellites keep theirs");
        assert_eq!(before[0].spec.as_ref().unwrap().containers[0].image.as_deref(), Some(DEFAULT_NODE_IMAGE));
    }

    #[test]
    fn placement_groups_keep_a_groups_pods_together_and_groups_apart() {
        let (cst, plan) = constellation(TINY);
        let plain = pods(&cst, &plan);
        assert!(plain.iter().all(|p| p.spec.as_ref().unwrap().affinity.is_none()), "default: no hints");
        assert!(plain.iter().all(|p| !p.metadata.labels.as_ref().unwrap().contains_key(LABEL_GROUP)));

        let (cst, plan) = constellation(&format!("{TINY}  placement: {{groups: 2}}\n"));
        let placed = pods(&cst, &plan);
        let group = |p: &Pod| p.metadata.labels.as_ref().unwrap().get(LABEL_GROUP).cloned();
        let groups: Vec<Option<String>> = placed.iter().map(group).collect();
        let g = |s: &str| Some(s.to_owned());
        assert_eq!(groups, [g("0"), g("0"), g("0"), g("0"), g("1"), g("1"), g("1"), g("1"), None, None]);
        let affinity = placed[5].spec.as_ref().unwrap().affinity.clone().unwrap();
        let required =
            &affinity.pod_affinity.unwrap().required_during_scheduling_ignored_during_execution.unwrap()[0];
        assert_eq!(required.topology_key, "kubernetes.io/hostname");
        let labels = required.label_selector.as_ref().unwrap().match_labels.clone().unwrap();
        assert_eq!((labels[LABEL_CONSTELLATION].as_str(), labels[LABEL_GROUP].as_str()), ("tiny", "1"));
        let avoid = &affinity
            .pod_anti_affinity
            .unwrap()
            .preferred_during_scheduling_ignored_during_execution
            .unwrap()[0];
        let exprs =
            avoid.pod_affinity_term.label_selector.as_ref().unwrap().match_expressions.clone().unwrap();
        assert_eq!(exprs[1].values.as_deref(), Some(&["1".to_owned()][..]), "every group but its own");
        assert!(placed[8].spec.as_ref().unwrap().affinity.is_none(), "ground stations go anywhere");
        let hash = |p: &Pod| p.metadata.annotations.as_ref().unwrap()[ANNOTATION_TEMPLATE_HASH].clone();
        assert_ne!(hash(&plain[0]), hash(&placed[0]), "placing rolls the satellites");
        assert_eq!(hash(&plain[8]), hash(&placed[8]), "and not the stations");
    }

    #[test]
    fn the_service_is_headless_and_selects_the_constellations_pods() {
        let (cst, plan) = constellation(TINY);
        let svc = service(&cst);
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.selector.unwrap()[LABEL_CONSTELLATION], "tiny");
        let hosts = hosts_config_map(&cst, &plan).data.unwrap()["hosts"].clone();
        assert_eq!(hosts.lines().count(), plan.nodes.len());
    }

    #[test]
    fn routing_daemons_run_in_a_container_of_their_own_with_capabilities_not_privilege() {
        let ospf = TINY.replace("routing: shortestPath", "routing: ospf");
        let (cst, plan) = constellation(&ospf);
        let (_, central) = constellation(TINY);
        assert!(
            !hosts_config_map(&cst, &central).data.unwrap().contains_key(CONSTELLATION_FILE),
            "central routing runs no daemons"
        );
        let ospf_pods = pods(&cst, &plan);
        let spec = ospf_pods[0].spec.as_ref().unwrap();
        let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["node", ROUTING_CONTAINER]);
        let node = &spec.containers[0];
        assert!(node.security_context.is_none(), "the node's own container is left as the user made it");
        let routing = &spec.containers[1];
        assert_eq!(routing.image.as_deref(), Some(DEFAULT_NODE_IMAGE));
        let command = routing.command.as_ref().unwrap().join(" ");
        assert_eq!(
            command,
            format!(
                "/usr/local/bin/orbitnet routing --file /etc/orbitnet/constellation.json --node {}",
                plan.nodes[0].name
            )
        );
        let sc = routing.security_context.as_ref().unwrap();
        assert_eq!(sc.privileged, Some(false));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let caps = sc.capabilities.as_ref().unwrap().add.clone().unwrap();
        assert_eq!(caps, ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"], "FRR");
        let (cst_bird, plan_bird) = constellation(
            &TINY.replace("routing: shortestPath", "routing: ospf\n  routingProtocol: {daemon: bird}"),
        );
        let bird_pods = pods(&cst_bird, &plan_bird);
        let bird = &bird_pods[0].spec.as_ref().unwrap().containers[1];
        let caps =
            bird.security_context.as_ref().unwrap().capabilities.as_ref().unwrap().add.clone().unwrap();
        assert_eq!(caps, ["NET_ADMIN", "NET_RAW"], "BIRD");

        // The copy of the constellation compiles to the same plan, so every pod writes the
        // files the local runner would.
        let json = hosts_config_map(&cst, &plan).data.unwrap()[CONSTELLATION_FILE].clone();
        let copied = orbitnet_model::compile_yaml(&json).unwrap();
        assert_eq!(orbitnet_routing::files(&copied, 3), orbitnet_routing::files(&plan, 3));

        // A change in the daemons' files rolls the pods; the same spec again does not.
        let hash = |p: &Pod| p.metadata.annotations.as_ref().unwrap()[ANNOTATION_TEMPLATE_HASH].clone();
        let (cst2, plan2) = constellation(&TINY.replace(
            "routing: shortestPath",
            "routing: ospf\n  routingProtocol: {helloIntervalS: 2, deadIntervalS: 8}",
        ));
        let slower = pods(&cst2, &plan2);
        assert_ne!(hash(&ospf_pods[0]), hash(&slower[0]));
        assert_eq!(hash(&ospf_pods[0]), hash(&pods(&cst, &plan)[0]));
    }
}
