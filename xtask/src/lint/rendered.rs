//! Tests of what a cluster would really get: the app's chart and the upstream Traefik chart
//! rendered by the real Helm 3 and Helm 4 (`cargo xtask tools install`) with the values the
//! plan passes, and the objects checked. Skipped loudly where the tools are missing.

use std::{collections::BTreeMap, path::Path};

use yaml_rust2::{Yaml, YamlLoader};

use super::render;
use crate::{
    cluster::{
        APP_NAMESPACE, FIRST_CLUSTER_CHAPTER, Ingress, NGINX_NAMESPACE, Options, TRAEFIK_NAMESPACE,
        stack::{self, APP_RELEASE},
        versions::Versions,
    },
    project, tools,
};

const KUBERNETES: &str = "1.31.0";

/// Every Helm installed here (both, where CI requires them), or none after saying why.
fn helms(test: &str) -> Vec<std::path::PathBuf> {
    if !testkit::real::tools(&[tools::HELM3, tools::HELM4], test) {
        return Vec::new();
    }
    [tools::HELM3, tools::HELM4].iter().filter_map(|helm| tools::installed(helm)).collect()
}

fn objects(text: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(text).unwrap().into_iter().filter(|doc| !doc.is_null()).collect()
}

fn of_kind<'a>(objects: &'a [Yaml], kind: &str) -> impl Iterator<Item = &'a Yaml> {
    objects.iter().filter(move |object| object["kind"].as_str() == Some(kind))
}

fn named<'a>(objects: &'a [Yaml], kind: &str, name: &str) -> &'a Yaml {
    of_kind(objects, kind)
        .find(|object| object["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// The app's chart as the plan installs it for `options` (plus `extra` values).
fn render_app(helm: &Path, options: &Options, extra: &[&str]) -> Vec<Yaml> {
    let root = project::root();
    let mut values = stack::values_of(options, APP_RELEASE, &root).unwrap();
    values.extend(extra.iter().map(|value| (*value).to_owned()));
    let chart = root.join(stack::APP_CHART);
    objects(&render::template(helm, &chart, APP_RELEASE, APP_NAMESPACE, KUBERNETES, &values).unwrap())
}

/// The upstream Traefik chart (the version the plan installs) with the plan's values.
fn render_traefik(helm: &Path, chart: &Path) -> Vec<Yaml> {
    let root = project::root();
    let values = stack::traefik_values(&root).unwrap();
    objects(&render::template(helm, chart, "traefik", TRAEFIK_NAMESPACE, KUBERNETES, &values).unwrap())
}

fn string_map(yaml: &Yaml) -> BTreeMap<String, String> {
    yaml.as_hash()
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| Some((key.as_str()?.to_owned(), value.as_str()?.to_owned())))
        .collect()
}

#[test]
fn traefik_gets_a_cluster_ip_service_and_strips_l5d_dst_override() {
    let test = "Traefik's rendered Service and edge middleware";
    let Some(chart) = testkit::real::tool(tools::TRAEFIK_CHART, test) else { return };
    for helm in helms(test) {
        let objects = render_traefik(&helm, &chart);
        // Defect 1: `service.type` was a stray key; the chart's is `service.spec.type`.
        let service = named(&objects, "Service", "traefik");
        assert_eq!(service["spec"]["type"].as_str(), Some("ClusterIP"), "{}", helm.display());
        // Defect 4: every request on the web entry point goes through a middleware that removes
        // `l5d-dst-override` (a header set to "" is removed).
        let deployment = named(&objects, "Deployment", "traefik");
        let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        let wanted = "--entryPoints.web.http.middlewares=traefik-strip-l5d-dst-override@kubernetescrd";
        assert!(args.contains(&wanted), "{args:#?}");
        let middleware = named(&objects, "Middleware", "strip-l5d-dst-override");
        assert_eq!(middleware["metadata"]["namespace"].as_str(), Some(TRAEFIK_NAMESPACE));
        assert_eq!(middleware["spec"]["headers"]["customRequestHeaders"]["l5d-dst-override"].as_str(), Some(""));
        // The image is the one pinned.
        let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
        let versions = Versions::read(&project::root()).unwrap();
        assert!(image.ends_with(&format!("traefik:{}", versions.images["traefik"].tag)), "{image}");
        // Its proxy's spans are named for chapter 10.
        let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations["linkerd.io/inject"].as_str(), Some("ingress"));
        assert_eq!(annotations["resource.opentelemetry.io/service.name"].as_str(), Some("traefik-linkerd-proxy"));
    }
}

/// A pod of the rendered app, or a client elsewhere.
#[derive(Debug)]
struct Pod {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    meshed: bool,
}

fn pods(objects: &[Yaml]) -> Vec<Pod> {
    let mut pods: Vec<Pod> = ["Deployment", "StatefulSet"]
        .iter()
        .flat_map(|kind| of_kind(objects, kind))
        .map(|workload| {
            let template = &workload["spec"]["template"]["metadata"];
            Pod {
                name: workload["metadata"]["name"].as_str().unwrap().to_owned(),
                namespace: APP_NAMESPACE.into(),
                labels: string_map(&template["labels"]),
                meshed: template["annotations"]["linkerd.io/inject"].as_str() == Some("enabled"),
            }
        })
        .collect();
    for test in of_kind(objects, "Pod") {
        pods.push(Pod {
            name: test["metadata"]["name"].as_str().unwrap().to_owned(),
            namespace: APP_NAMESPACE.into(),
            labels: string_map(&test["metadata"]["labels"]),
            meshed: test["metadata"]["annotations"]["linkerd.io/inject"].as_str() == Some("enabled"),
        });
    }
    pods
}

/// Whether a peer of a NetworkPolicy rule (in `policy_namespace`) matches `from`.
fn peer_matches(peer: &Yaml, policy_namespace: &str, from: &Pod) -> bool {
    let subset = |selector: &Yaml, labels: &BTreeMap<String, String>| {
        string_map(&selector["matchLabels"]).iter().all(|(key, value)| labels.get(key) == Some(value))
    };
    let namespace_labels = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), from.namespace.clone())]);
    match (peer["namespaceSelector"].is_badvalue(), peer["podSelector"].is_badvalue()) {
        (false, true) => subset(&peer["namespaceSelector"], &namespace_labels),
        (true, false) => from.namespace == policy_namespace && subset(&peer["podSelector"], &from.labels),
        (false, false) => {
            subset(&peer["namespaceSelector"], &namespace_labels) && subset(&peer["podSelector"], &from.labels)
        }
        (true, true) => false,
    }
}

/// Whether the NetworkPolicies let `from` connect to `to` on `port` (Kubernetes' rules: a pod
/// no policy selects takes everything; else some rule of a selecting policy must allow it).
fn allowed(policies: &[&Yaml], from: &Pod, to: &Pod, port: i64) -> bool {
    let selecting: Vec<&&Yaml> = policies
        .iter()
        .filter(|policy| {
            string_map(&policy["spec"]["podSelector"]["matchLabels"])
                .iter()
                .all(|(key, value)| to.labels.get(key) == Some(value))
        })
        .collect();
    selecting.is_empty()
        || selecting.iter().any(|policy| {
            policy["spec"]["ingress"].as_vec().into_iter().flatten().any(|rule| {
                let peers = rule["from"].as_vec().cloned().unwrap_or_default();
                let ports = rule["ports"].as_vec().cloned().unwrap_or_default();
                (peers.is_empty() || peers.iter().any(|peer| peer_matches(peer, &to.namespace, from)))
                    && (ports.is_empty() || ports.iter().any(|allowed| allowed["port"].as_i64() == Some(port)))
            })
        })
}

/// Where a connection really goes: a meshed client's proxy connects to a meshed server's
/// inbound proxy port, 4143 (https://linkerd.io/2/common-errors/network-policy/).
fn port_used(from: &Pod, to: &Pod, app_port: i64) -> i64 {
    if from.meshed && to.meshed { 4143 } else { app_port }
}

#[test]
fn network_policies_allow_every_hop_of_the_app_meshed_and_not() {
    let test = "the app's NetworkPolicies against every hop";
    for helm in helms(test) {
        for options in stack::variants() {
            for mesh in ["mesh.enabled=true", "mesh.enabled=false"] {
                let objects = render_app(&helm, &options, &["--set", mesh]);
                let policies: Vec<&Yaml> = of_kind(&objects, "NetworkPolicy").collect();
                assert!(policies.len() >= 3, "the chart has its policies on");
                for policy in &policies {
                    let types = policy["spec"]["policyTypes"].as_vec().unwrap();
                    assert!(
                        types.iter().all(|kind| kind.as_str() == Some("Ingress")),
                        "only what comes in is restricted: the spans go out to the collector freely"
                    );
                }
                let pods = pods(&objects);
                let pod = |name: &str| pods.iter().find(|pod| pod.name == name).unwrap();
                let test_pod = pods.iter().find(|pod| pod.name.contains("test")).expect("helm test's pod");
                let meshed = mesh.ends_with("true");
                let controller = match options.ingress {
                    Ingress::Traefik => Pod {
                        name: "traefik".into(),
                        namespace: TRAEFIK_NAMESPACE.into(),
                        labels: BTreeMap::new(),
                        meshed, // in ingress mode (config/traefik.yaml) when the mesh is on
                    },
                    Ingress::Nginx => Pod {
                        name: "ingress-nginx".into(),
                        namespace: NGINX_NAMESPACE.into(),
                        labels: BTreeMap::new(),
                        meshed: false, // minikube's addon is not meshed
                    },
                };
                let mut hops = vec![
                    (test_pod, pod("apiserver"), 8080),
                    (pod("apiserver"), pod("todomanager"), 8090),
                    (pod("todomanager"), pod("mariadb"), 3306),
                ];
                if options.has_edge() {
                    hops.push((&controller, pod("apiserver"), 8080));
                }
                for (from, to, app_port) in hops {
                    assert_eq!(pod(&to.name).meshed, meshed, "{mesh}: {} is meshed as asked", to.name);
                    let port = port_used(from, to, app_port);
                    assert!(
                        allowed(&policies, from, to, port),
                        "{} with {mesh}, {}: {} → {} on port {port} is blocked",
                        helm.display(),
                        options.chapter(),
                        from.name,
                        to.name
                    );
                }
                // And what is not a hop of the app stays closed: the ingress cannot reach MariaDB.
                assert!(!allowed(&policies, &controller, pod("mariadb"), port_used(&controller, pod("mariadb"), 3306)));
            }
        }
    }
}

/// The evaluator itself: a policy selecting a pod admits only what a rule names.
#[test]
fn the_policy_evaluator_follows_kubernetes_rules() {
    let policy = YamlLoader::load_from_str(
        "spec:\n  podSelector:\n    matchLabels: {app: db}\n  ingress:\n    - from:\n        - podSelector:\n            matchLabels: {app: api}\n      ports:\n        - port: 3306\n",
    )
    .unwrap()
    .remove(0);
    let pod = |app: &str, namespace: &str| Pod {
        name: app.into(),
        namespace: namespace.into(),
        labels: BTreeMap::from([("app".to_owned(), app.to_owned())]),
        meshed: false,
    };
    let (api, db, web) = (pod("api", "todo"), pod("db", "todo"), pod("web", "todo"));
    assert!(allowed(&[&policy], &api, &db, 3306));
    assert!(!allowed(&[&policy], &api, &db, 4143), "another port");
    assert!(!allowed(&[&policy], &web, &db, 3306), "another pod");
    assert!(!allowed(&[&policy], &pod("api", "elsewhere"), &db, 3306), "a podSelector alone means this namespace");
    assert!(allowed(&[&policy], &web, &api, 8080), "no policy selects api");
}

#[test]
fn probes_ask_liveness_of_the_process_and_readiness_of_the_service() {
    let test = "the rendered probes of todomanager";
    for helm in helms(test) {
        let objects = render_app(&helm, &Options::planned(Some(9), Ingress::Traefik), &[]);
        let container = &named(&objects, "Deployment", "todomanager")["spec"]["template"]["spec"]["containers"][0];
        // The server's own health ("", or no service): SERVING while the process answers
        // (services/todomanager/tests/grpc.rs: a_database_outage_is_not_ready_but_alive).
        let liveness = &container["livenessProbe"]["grpc"];
        assert!(liveness["service"].is_badvalue() || liveness["service"].as_str() == Some(""), "{liveness:?}");
        // The todo service: NOT_SERVING while the database is unreachable.
        assert_eq!(container["readinessProbe"]["grpc"]["service"].as_str(), Some("todo_mgr.TodoManager"));
    }
}

#[test]
fn helm_test_opts_out_of_failure_injection_and_images_are_pinned() {
    let test = "helm test's requests and the app's images";
    let versions = Versions::read(&project::root()).unwrap();
    for helm in helms(test) {
        let chapter_11 = Options::planned(Some(11), Ingress::Traefik);
        let objects = render_app(&helm, &chapter_11, &[]);
        let faults = named(&objects, "Deployment", "apiserver")["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|env| env["name"].as_str() == Some("INJECT_FAILURES") && env["value"].as_str() == Some("true"));
        assert!(faults, "chapter 11 turns failure injection on");
        let test_pod = of_kind(&objects, "Pod").next().expect("helm test's pod");
        let script = test_pod["spec"]["containers"][0]["args"][0].as_str().unwrap();
        let requests = script.matches("curl ").count();
        assert!(requests >= 3, "{script}");
        assert_eq!(script.matches("-H 'X-Inject-Fault: none'").count(), requests, "every request opts out: {script}");
        let image = test_pod["spec"]["containers"][0]["image"].as_str().unwrap();
        assert_eq!(image, format!("{}:{}", versions.images["curl"].image, versions.images["curl"].tag));
        let mariadb = &named(&objects, "StatefulSet", "mariadb")["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            mariadb["image"].as_str().unwrap(),
            format!("{}:{}", versions.images["mariadb"].image, versions.images["mariadb"].tag)
        );
    }
}

/// The README calls the app's own containers "restricted" (Pod Security Standards): each of
/// them must meet the profile's rules. Linkerd's injected proxy-init is the exception the
/// README names; it is added at admission, never rendered here.
#[test]
fn the_apps_own_containers_meet_the_restricted_profile() {
    let test = "the app's containers against the restricted Pod Security Standard";
    for helm in helms(test) {
        let objects = render_app(&helm, &Options::planned(Some(9), Ingress::Traefik), &[]);
        let mut checked = 0;
        for workload in ["Deployment", "StatefulSet"].iter().flat_map(|kind| of_kind(&objects, kind)) {
            let spec = &workload["spec"]["template"]["spec"];
            let name = workload["metadata"]["name"].as_str().unwrap();
            assert_eq!(spec["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{name}");
            assert_eq!(spec["securityContext"]["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{name}");
            let containers = spec["containers"]
                .as_vec()
                .unwrap()
                .iter()
                .chain(spec["initContainers"].as_vec().into_iter().flatten());
            for container in containers {
                let security = &container["securityContext"];
                assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false), "{name}");
                let dropped: Vec<&str> =
                    security["capabilities"]["drop"].as_vec().unwrap().iter().filter_map(Yaml::as_str).collect();
                assert_eq!(dropped, ["ALL"], "{name}");
                assert!(security["capabilities"]["add"].is_badvalue(), "{name} adds no capability");
                checked += 1;
            }
        }
        assert!(checked >= 3, "apiserver, todomanager and MariaDB");
    }
}

/// Chapter 9 finds the proxies' spans by service name: every meshed pod names its proxy so
/// (Linkerd would otherwise name them all after the release, "todo").
#[test]
fn every_meshed_pod_names_its_proxy_as_chapter_9_expects() {
    let test = "the proxies' service names against chapter 9";
    let chapters = crate::expect::load_all(&project::root().join("chapters")).unwrap();
    let chapter_9 = chapters.iter().find(|chapter| chapter.number == FIRST_CLUSTER_CHAPTER).unwrap();
    let patterns: Vec<&str> = chapter_9
        .request
        .iter()
        .flat_map(|request| &request.span)
        .map(|span| span.service.as_str())
        .filter(|service| service.contains("linkerd-proxy"))
        .collect();
    assert!(!patterns.is_empty(), "chapter 9 expects proxy spans");
    for helm in helms(test) {
        let objects = render_app(&helm, &Options::planned(Some(9), Ingress::Traefik), &[]);
        for pod in pods(&objects).iter().filter(|pod| pod.meshed) {
            let workload = ["Deployment", "StatefulSet"]
                .iter()
                .flat_map(|kind| of_kind(&objects, kind))
                .find(|workload| workload["metadata"]["name"].as_str() == Some(&pod.name))
                .unwrap();
            let name =
                workload["spec"]["template"]["metadata"]["annotations"]["resource.opentelemetry.io/service.name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{} names no proxy service", pod.name));
            assert_eq!(name, format!("{}-linkerd-proxy", pod.name));
        }
        for pattern in &patterns {
            for component in ["apiserver", "todomanager"] {
                let name = format!("{component}-linkerd-proxy");
                if pattern.starts_with(component) || pattern.starts_with('*') {
                    assert!(crate::expect::glob(pattern, &name), "{pattern} vs {name}");
                }
            }
        }
    }
}
