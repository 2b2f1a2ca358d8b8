//! The bare provider for real: `cargo xtask up --provider bare --cluster-only` brings a node to
//! Ready on this machine, CoreDNS runs from the image xtask wrote, a Pod from another image
//! xtask wrote reaches it through a Service by its DNS name, a second `up` changes nothing,
//! `down` leaves the host as it found it (processes, mounts, nftables, links, addresses,
//! cgroups, sysctls, folders), and an `up` over the data a plain `down` kept works again.
//! `xtask images --provider bare` writes the workshop's images: MariaDB's keeps the chart's
//! contract, Traefik's is the pinned release.
//!
//! Needs root, the Kubernetes tools (`cargo xtask tools install`) and Debian's containerd, runc,
//! CNI plugins, iptables, conntrack and nftables: skipped loudly without them, required in CI.

mod common;

use std::{collections::BTreeSet, path::Path, process::Command, time::Duration};

use common::{Down, kubectl, last_lines, text, wait_until, xtask_ok};

const TEST: &str = "the bare cluster test";

fn run(program: &str, args: &[&str]) -> String {
    Command::new(program).args(args).output().map(|output| text(&output)).unwrap_or_default()
}

/// What the cluster could leave behind on the host, seen by the test on its own (not through
/// xtask's record).
#[derive(Debug, PartialEq, Eq)]
struct Host {
    processes: BTreeSet<String>,
    mounts: BTreeSet<String>,
    nft_tables: BTreeSet<String>,
    iptables: BTreeSet<String>,
    links: BTreeSet<String>,
    addresses: BTreeSet<String>,
    sysctls: Vec<(String, String)>,
    folders: Vec<(String, bool)>,
    cgroups: BTreeSet<String>,
}

impl Host {
    fn now() -> Self {
        let state = testkit::real::workspace_root().join(".state");
        let mut processes = BTreeSet::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let command_line = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let command_line = String::from_utf8_lossy(&command_line).replace('\0', " ");
            let ours = ["etcd", "kube-", "kubelet", "containerd", "coredns", "/pause"]
                .iter()
                .any(|name| command_line.split(' ').next().is_some_and(|argv0| argv0.contains(name)));
            if ours || command_line.contains(state.to_str().unwrap()) {
                processes.insert(command_line);
            }
        }
        let lines = |output: String| output.lines().map(str::to_owned).collect::<BTreeSet<_>>();
        Host {
            processes,
            mounts: std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .filter_map(|line| line.split(' ').nth(4).map(str::to_owned))
                .collect(),
            nft_tables: lines(run("nft", &["list", "tables"])),
            // Rules and chains, without packet counters.
            iptables: lines(run("iptables-save", &[]))
                .into_iter()
                .filter(|line| line.starts_with("-A") || line.starts_with(':'))
                .map(|line| line.split(" [").next().unwrap().to_owned())
                .collect(),
            links: run("ip", &["-o", "link", "show"])
                .lines()
                .filter_map(|line| line.split(": ").nth(1).map(|name| name.split('@').next().unwrap().to_owned()))
                .collect(),
            addresses: run("ip", &["-o", "address", "show"])
                .lines()
                .map(|line| line.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
                .collect(),
            sysctls: [
                "vm/overcommit_memory",
                "kernel/panic",
                "kernel/panic_on_oops",
                "net/ipv4/ip_forward",
                "net/bridge/bridge-nf-call-iptables",
            ]
            .iter()
            .map(|name| {
                (name.to_string(), std::fs::read_to_string(Path::new("/proc/sys").join(name)).unwrap_or_default())
            })
            .collect(),
            folders: [
                "/run/containerd",
                "/run/netns",
                "/var/lib/cni",
                "/var/log/containers",
                "/var/log/pods",
                "/var/lib/kubelet",
                "/etc/cni",
                "/opt/containerd",
            ]
            .iter()
            .map(|path| (path.to_string(), Path::new(path).exists()))
            .collect(),
            cgroups: ["memory", "cpu", "pids", "devices"]
                .iter()
                .flat_map(|controller| {
                    std::fs::read_dir(Path::new("/sys/fs/cgroup").join(controller))
                        .into_iter()
                        .flatten()
                        .flatten()
                        .filter(|entry| entry.path().is_dir())
                        .map(move |entry| format!("{controller}/{}", entry.file_name().to_string_lossy()))
                })
                .collect(),
        }
    }
}

/// What the client Pod, CoreDNS and the host's bridge settings say, for a failure's message.
fn explain_client() -> String {
    let describe = |namespace: &str, what: &str| text(&kubectl(&["--namespace", namespace, "describe", what]));
    format!(
        "client's log:\n{}\n{}\n{}\nCoreDNS's log:\n{}\nbridge-nf-call-iptables: {:?}",
        text(&kubectl(&["logs", "ask-dns-health"])),
        describe("default", "pod/ask-dns-health"),
        describe("kube-system", "endpoints/dns-health"),
        text(&kubectl(&["--namespace", "kube-system", "logs", "deployment/coredns"])),
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables"),
    )
}

/// A Pod from the curl image xtask wrote asks CoreDNS's health endpoint through a Service, by
/// its DNS name: DNS, kube-proxy's ClusterIP, bridged traffic and both images at work.
fn a_pod_reaches_coredns_through_a_service_by_its_name() {
    let curl_image = text(&Command::new("curl").arg("--version").output().unwrap());
    let curl_image = format!("workshop.local/curl:{}", curl_image.split_whitespace().nth(1).unwrap());
    let manifest = format!(
        r#"apiVersion: v1
kind: Service
metadata: {{ name: dns-health, namespace: kube-system }}
spec:
  selector: {{ k8s-app: kube-dns }}
  ports: [{{ port: 8080, targetPort: 8080 }}]
---
apiVersion: v1
kind: Pod
metadata: {{ name: ask-dns-health, namespace: default }}
spec:
  restartPolicy: Never
  containers:
    - name: curl
      image: {curl_image}
      imagePullPolicy: Never
      command: ["curl", "--silent", "--show-error", "--fail", "--retry", "20", "--retry-all-errors", "--retry-delay", "1",
                "--connect-timeout", "2", "--max-time", "4", "http://dns-health.kube-system.svc.cluster.local:8080/health"]
"#
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    // A Pod left by an earlier run that failed would keep its phase: start afresh.
    let _ = kubectl(&["delete", "pod", "ask-dns-health", "--ignore-not-found", "--wait=true"]);
    let applied = kubectl(&["apply", "--filename", file.path().to_str().unwrap()]);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
    wait_until(
        "the client Pod to finish",
        Duration::from_secs(150),
        || {
            let phase = text(&kubectl(&["get", "pod", "ask-dns-health", "--output", "jsonpath={.status.phase}"]));
            assert_ne!(phase, "Failed", "{}", explain_client());
            phase == "Succeeded"
        },
        explain_client,
    );
    // curl retries while the new Service reaches CoreDNS; its last word is the answer.
    let answer = text(&kubectl(&["logs", "ask-dns-health"]));
    assert_eq!(answer.lines().last(), Some("OK"), "{answer}");
}

/// Applies `manifest` (a Pod that a failed earlier run may have left is replaced).
fn apply(pod: &str, manifest: &str) {
    let _ = kubectl(&["delete", "pod", pod, "--ignore-not-found", "--wait=true"]);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    let applied = kubectl(&["apply", "--filename", file.path().to_str().unwrap()]);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));
}

/// The reference of the image `name` that `xtask images` wrote (its file is
/// NAME-TAG-RECIPE.tar).
fn image(name: &str) -> String {
    let written = testkit::real::workspace_root().join(".state/bare/images");
    std::fs::read_dir(&written)
        .unwrap()
        .flatten()
        .find_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let tag = file.strip_prefix(&format!("{name}-"))?.strip_suffix(".tar")?.rsplit_once('-')?.0.to_owned();
            Some(format!("workshop.local/{name}:{tag}"))
        })
        .unwrap_or_else(|| panic!("no image {name} in {}", written.display()))
}

/// The MariaDB image xtask writes, run the way helm/todo-app/templates/mariadb.yaml runs the
/// official one: the same environment, user 999, a read-only root, its healthcheck.sh as the
/// readiness probe; then the database's user logs in over TCP with its password.
fn mariadb_keeps_the_charts_contract() {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{ name: mariadb, namespace: default }}
spec:
  securityContext: {{ runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999 }}
  containers:
    - name: mariadb
      image: {image}
      imagePullPolicy: Never
      env:
        - {{ name: MARIADB_DATABASE, value: todo }}
        - {{ name: MARIADB_USER, value: todo }}
        - {{ name: MARIADB_PASSWORD, value: todo-password }}
        - {{ name: MARIADB_ROOT_PASSWORD, value: root-password }}
      readinessProbe:
        exec: {{ command: ["healthcheck.sh", "--connect", "--innodb_initialized"] }}
        periodSeconds: 2
      securityContext: {{ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true }}
      volumeMounts:
        - {{ name: data, mountPath: /var/lib/mysql }}
        - {{ name: run, mountPath: /run/mysqld }}
        - {{ name: tmp, mountPath: /tmp }}
  volumes:
    - {{ name: data, emptyDir: {{}} }}
    - {{ name: run, emptyDir: {{}} }}
    - {{ name: tmp, emptyDir: {{}} }}
"#,
        image = image("mariadb")
    );
    apply("mariadb", &manifest);
    let explain =
        || format!("{}\n{}", text(&kubectl(&["logs", "mariadb"])), text(&kubectl(&["describe", "pod", "mariadb"])));
    wait_until(
        "MariaDB to be Ready",
        Duration::from_secs(120),
        || {
            text(&kubectl(&["get", "pod", "mariadb", "--output", "jsonpath={.status.containerStatuses[0].ready}"]))
                == "true"
        },
        explain,
    );
    // The database's user, over TCP, with a password.
    let login = |password: &str| {
        let password = format!("--password={password}");
        let sql = "--execute=SELECT CURRENT_USER()";
        let client = ["mariadb", "--no-defaults", "--host=127.0.0.1", "--user=todo", &password, "--batch", sql];
        kubectl(&[["exec", "mariadb", "--"].as_slice(), &client, &["--skip-column-names", "todo"]].concat())
    };
    let who = login("todo-password");
    assert_eq!(text(&who).trim(), "todo@%", "{}\n{}", String::from_utf8_lossy(&who.stderr), explain());
    let wrong = login("wrong");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("Access denied"), "a wrong password is refused");
    let _ = kubectl(&["delete", "pod", "mariadb", "--wait=false"]);
}

/// The Traefik image xtask built runs and is the release config/versions.toml pins.
fn traefik_is_the_pinned_release() {
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{ name: traefik-version, namespace: default }}
spec:
  restartPolicy: Never
  securityContext: {{ runAsNonRoot: true, runAsUser: 65532 }}
  containers:
    - {{ name: traefik, image: {image}, imagePullPolicy: Never, args: ["version"] }}
"#,
        image = image("traefik")
    );
    apply("traefik-version", &manifest);
    wait_until(
        "traefik version to finish",
        Duration::from_secs(60),
        || text(&kubectl(&["get", "pod", "traefik-version", "--output", "jsonpath={.status.phase}"])) == "Succeeded",
        || text(&kubectl(&["describe", "pod", "traefik-version"])),
    );
    let versions = std::fs::read_to_string(testkit::real::workspace_root().join("config/versions.toml")).unwrap();
    let pinned = versions.split("[images.traefik]").nth(1).and_then(|rest| rest.split("tag = \"").nth(1)).unwrap();
    let pinned = pinned.split('"').next().unwrap();
    let said = text(&kubectl(&["logs", "traefik-version"]));
    assert!(said.lines().any(|line| line.starts_with("Version:") && line.trim_end().ends_with(pinned)), "{said}");
}

#[test]
fn a_bare_cluster_runs_pods_from_our_images_and_down_leaves_the_host_as_it_was() {
    if !common::can_run_a_bare_cluster(TEST) {
        return;
    }
    // The first `up` starts from nothing.
    common::from_nothing();
    let before = Host::now();
    let down = Down;

    let up = xtask_ok(&["up", "--provider", "bare", "--cluster-only"]);
    assert!(up.contains(".state/bare/kubeconfig"), "up names the kubeconfig");

    // CoreDNS runs from the image xtask wrote.
    let pods = text(&kubectl(&[
        "get",
        "pods",
        "--all-namespaces",
        "--output",
        "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.spec.containers[0].image}{\"\\n\"}{end}",
    ]));
    assert!(
        pods.lines()
            .any(|line| line.starts_with("coredns-") && line.ends_with(" Running workshop.local/coredns:1.15.0")),
        "{pods}"
    );

    a_pod_reaches_coredns_through_a_service_by_its_name();

    // Every image of the workshop, written and imported; MariaDB's keeps the chart's contract.
    xtask_ok(&["images", "--provider", "bare"]);
    mariadb_keeps_the_charts_contract();
    traefik_is_the_pinned_release();

    // A second `up` finds everything running and changes nothing.
    let again = xtask_ok(&["up", "--provider", "bare", "--cluster-only"]);
    let ran: Vec<&str> =
        again.lines().filter(|line| line.starts_with("✓ [") && !line.contains("already done")).collect();
    assert_eq!(ran.len(), 1, "only the check of the machine runs again:\n{}", last_lines(&again, 40));
    assert!(ran[0].contains("Check this machine"), "{}", last_lines(&again, 40));

    let status = xtask_ok(&["status", "--provider", "bare"]);
    assert!(
        status.contains("kubelet")
            && status.contains("running, pid")
            && status.contains(".state/bare/logs/kubelet.log"),
        "{status}"
    );

    // A plain `down` puts the host back and keeps the data; the next `up` runs on it.
    xtask_ok(&["down", "--provider", "bare"]);
    assert_eq!(before, Host::now(), "down (keeping the data) left the host changed");
    assert!(testkit::real::workspace_root().join(".state/bare/etcd").is_dir(), "a plain down keeps the data");
    xtask_ok(&["up", "--provider", "bare", "--cluster-only"]);
    a_pod_reaches_coredns_through_a_service_by_its_name();

    xtask_ok(&["down", "--provider", "bare", "--delete-cluster", "--yes"]);
    drop(down);
    let after = Host::now();
    assert_eq!(before, after, "down left the host changed");
    assert!(!testkit::real::workspace_root().join(".state/bare").exists(), "--delete-cluster removes the data");
}
