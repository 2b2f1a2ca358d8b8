//! Cluster mode for real, on the bare provider: `cargo xtask up --provider bare --charts
//! ../shared/charts --mesh off` installs the real collector, Jaeger, Traefik (their upstream
//! charts) and the app (its chart) from the images xtask writes, and `--check` verifies the
//! chapters through the port-forwards: a POST through the edge is one trace in the cluster's
//! Jaeger, Traefik's spans above apiserver's, through the collector. Then chapter 11 (failure
//! injection), the chart's `helm test`, a second `up` that changes nothing, `images` after a
//! code change (new Pods that serve), Linkerd as far as it goes offline (the API server accepts
//! every object of its charts; its Pods cannot pull their images), and `down`.
//!
//! Needs what `bare.rs` needs, Helm and `../shared/charts`: skipped loudly without them,
//! required in CI.

mod common;

use std::path::PathBuf;

use common::{Down, from_nothing, kubectl, last_lines, text, xtask};

const TEST: &str = "cluster mode on the bare cluster";

/// A code change for the length of the test: a line appended to a file of the services, the
/// file put back as it was when dropped (even on a failure).
struct CodeChange {
    file: PathBuf,
    original: String,
}

impl CodeChange {
    fn append(file: PathBuf, line: &str) -> Self {
        let original = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{original}{line}\n")).unwrap();
        CodeChange { file, original }
    }
}

impl Drop for CodeChange {
    fn drop(&mut self) {
        std::fs::write(&self.file, &self.original).unwrap();
    }
}

/// The image of the app's Deployment `name`, and the names of its Pods (but those terminating).
fn deployed(name: &str) -> (String, Vec<String>) {
    let image = text(&kubectl(&[
        "--namespace",
        "todo",
        "get",
        "deployment",
        name,
        "--output",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]));
    let selector = format!("app.kubernetes.io/name={name}");
    let pods = text(&kubectl(&["--namespace", "todo", "get", "pods", "--selector", &selector, "--output", "json"]));
    let pods: serde_json::Value = serde_json::from_str(&pods).unwrap();
    let running = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null()) // not those terminating
        .map(|pod| pod["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    (image, running)
}

fn out(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn chapters_10_and_11_hold_on_a_real_cluster_without_the_mesh() {
    let Some(charts) = testkit::real::shared("charts", TEST) else { return };
    if !(common::can_run_a_bare_cluster(TEST) & testkit::real::tools(&["traefik-chart"], TEST)) {
        return;
    }
    from_nothing();
    let down = Down;
    let charts = charts.display().to_string();
    let up = |chapter: &str| {
        let args = ["up", "--provider", "bare", "--charts", &charts, "--mesh", "off", "--chapter", chapter, "--check"];
        let output = xtask(&args);
        let said = out(&output);
        assert!(output.status.success(), "up --chapter {chapter} --check failed:\n{}", last_lines(&said, 30));
        said
    };

    // Chapter 10: Traefik's server and client spans, apiserver's straight below, todomanager's.
    let edge = up("10");
    for line in ["✓ traefik  *  (server)", "✓   traefik  *  (client)", "✓     apiserver  POST /v1/todo  (server)"]
    {
        assert!(edge.contains(line), "chapter 10 did not see `{line}`:\n{}", last_lines(&edge, 30));
    }
    assert!(edge.contains("✓ every expectation holds"), "{}", last_lines(&edge, 30));

    // The chart's own test, against the release on the cluster.
    let root = testkit::real::workspace_root();
    let helm_test = std::process::Command::new(root.join(".state/tools/bin/helm3"))
        .args(["test", "todo", "--namespace", "todo", "--kubeconfig"])
        .arg(root.join(".state/bare/kubeconfig"))
        .output()
        .unwrap();
    assert!(helm_test.status.success() && out(&helm_test).contains("Phase:          Succeeded"), "{}", out(&helm_test));

    // Chapter 11: failure injection on (an upgrade of the app), its traces marked.
    let faults = up("11");
    assert!(
        faults.contains("Install the todo app") && !faults.contains("Install the todo app (already done"),
        "chapter 11 upgrades the app"
    );
    assert!(
        faults.contains("── Chapter 11") && faults.contains("✓ every expectation holds"),
        "{}",
        last_lines(&faults, 30)
    );

    // Again: every release up to date; only the checks run (the machine's, the app's readiness).
    let again = up("11");
    let changed: Vec<&str> = again
        .lines()
        .filter(|line| line.starts_with("✓ [") && !line.contains("already done"))
        .filter(|line| !line.contains("Check this machine") && !line.contains("Wait until the app is ready"))
        .collect();
    assert!(changed.is_empty(), "a second up changes nothing, yet: {changed:#?}");
    assert!(again.contains("✓ every expectation holds"), "{}", last_lines(&again, 30));

    // A code change: `images` writes new images and rolls the app out with them, as chapter 11
    // installed it; the new Pods serve chapter 11, and `up` finds the app as it would install it.
    let (old_image, old_pods) = deployed("apiserver");
    let change = CodeChange::append(root.join("services/apiserver/src/main.rs"), "// changed by cluster_bare.rs");
    let images = xtask(&["images", "--provider", "bare"]);
    let said = out(&images);
    assert!(images.status.success(), "images failed:\n{}", last_lines(&said, 30));
    assert!(said.contains("The app runs the new images (chapter 11, mesh Off, Traefik"), "{}", last_lines(&said, 30));
    let (new_image, new_pods) = deployed("apiserver");
    assert_ne!(new_image, old_image, "the Deployment runs the new image");
    assert!(
        !new_pods.is_empty() && new_pods.iter().all(|pod| !old_pods.contains(pod)),
        "new Pods: {old_pods:?} → {new_pods:?}"
    );
    let served = up("11");
    assert!(served.contains("Install the todo app (already done"), "{}", last_lines(&served, 30));
    assert!(served.contains("✓ every expectation holds"), "{}", last_lines(&served, 30));
    drop(change);

    // Linkerd, meshed chapter 9: its CRDs and control plane are installed from the charts, and
    // the wait stops at once on the images no offline node can pull.
    let args = ["up", "--provider", "bare", "--charts", &charts, "--chapter", "9"];
    let linkerd = xtask(&args);
    assert!(!linkerd.status.success(), "Linkerd's Pods cannot start offline");
    let said = out(&linkerd);
    assert!(
        said.contains("the images of linkerd cannot be pulled") && said.contains("cr.l5d.io/linkerd/proxy:edge-26.8.3"),
        "{}",
        last_lines(&said, 30)
    );
    // Every CRD of linkerd-crds is Established, Linkerd's and the Gateway API's.
    let crds: serde_json::Value = serde_json::from_str(&text(&kubectl(&["get", "crds", "--output", "json"]))).unwrap();
    let ours: Vec<&serde_json::Value> = crds["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|crd| crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "linkerd-crds")
        .collect();
    let named = |group: &str| ours.iter().filter(|crd| crd["spec"]["group"].as_str().unwrap().ends_with(group)).count();
    assert!(named("linkerd.io") >= 8 && named("gateway.networking.k8s.io") >= 2, "{ours:#?}");
    for crd in &ours {
        let established = crd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|condition| condition["type"] == "Established" && condition["status"] == "True");
        assert!(established, "{} is not Established", crd["metadata"]["name"]);
    }
    // Linkerd's three webhooks are registered, each with the CA that signs its server.
    let webhooks: serde_json::Value = serde_json::from_str(&text(&kubectl(&[
        "get",
        "mutatingwebhookconfigurations,validatingwebhookconfigurations",
        "--output",
        "json",
    ])))
    .unwrap();
    let mut registered: Vec<&str> = Vec::new();
    for configuration in webhooks["items"].as_array().unwrap() {
        for webhook in configuration["webhooks"].as_array().unwrap() {
            assert!(!webhook["clientConfig"]["caBundle"].as_str().unwrap_or_default().is_empty(), "{webhook}");
            assert_eq!(webhook["clientConfig"]["service"]["namespace"], "linkerd", "{webhook}");
        }
        registered.push(configuration["metadata"]["name"].as_str().unwrap());
    }
    registered.sort();
    assert_eq!(
        registered,
        [
            "linkerd-policy-validator-webhook-config",
            "linkerd-proxy-injector-webhook-config",
            "linkerd-sp-validator-webhook-config"
        ]
    );
    // Every object of both releases' manifests is in the API server, as rendered.
    let helm = root.join(".state/tools/bin/helm3");
    let kubeconfig = root.join(".state/bare/kubeconfig");
    for release in ["linkerd-crds", "linkerd-control-plane"] {
        let manifest = std::process::Command::new(&helm)
            .args(["get", "manifest", release, "--namespace", "linkerd", "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
            .unwrap();
        let file = std::env::temp_dir().join(format!("{release}-manifest.yaml"));
        std::fs::write(&file, &manifest.stdout).unwrap();
        let objects = manifest.stdout.split(|byte| *byte == b'\n').filter(|line| line.starts_with(b"kind: ")).count();
        let found = kubectl(&["get", "--filename", file.to_str().unwrap(), "--output", "name"]);
        assert!(found.status.success(), "{release}: {}", out(&found));
        assert_eq!(text(&found).lines().count(), objects, "{release}: every object is there");
        assert!(objects > 10, "{release}: {objects} objects");
    }

    let stopped = xtask(&["down", "--provider", "bare", "--delete-cluster", "--yes"]);
    assert!(stopped.status.success(), "down failed:\n{}", last_lines(&out(&stopped), 30));
    drop(down);
}
