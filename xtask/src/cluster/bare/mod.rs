//! The bare provider: a one-node Kubernetes as processes on this Linux machine, offline, as
//! root. etcd, the control plane, containerd, the kubelet and kube-proxy run in the background
//! ([`daemon`]), started in order with the flags of [`components`]; certificates come from
//! [`pki`]; every change to the host is recorded first and undone by `down` ([`host`]).
//! CoreDNS runs as a Deployment from an image xtask wrote (`cluster/images`).
//!
//! Everything lives under `.state/bare/`: the kubeconfig (`.state/bare/kubeconfig`), the
//! components' logs (`logs/`) and pids (`run/`), their data and configuration.

mod components;
pub mod daemon;
pub mod host;
pub mod pki;

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
pub use components::Component;

use super::images;
use crate::{
    cmd, project,
    steps::{Action, Cmd, Step},
    tools,
};

/// The node's address: a /32 on `lo`. Not loopback: the API server refuses 127.0.0.1 as the
/// `kubernetes` Service's endpoint, and the kubelet wants a routable node IP.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const NODE_NAME: &str = "workshop-node";
pub const API_PORT: u16 = 6443;
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The `kubernetes` Service: the first address of the range.
pub const API_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
pub const DNS_IP: &str = "10.96.0.10";
pub const POD_CIDR: &str = "10.244.0.0/24";
/// The CNI bridge (made by the bridge plugin on the first Pod, removed by `down`).
pub const BRIDGE: &str = "workshop0";
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The kube context of `.state/bare/kubeconfig`.
pub const CONTEXT: &str = "tracing-workshop-bare";
/// CoreDNS, as a Deployment with its Service, RBAC and Corefile.
pub const COREDNS_MANIFEST: &str = "config/bare/coredns.yaml";

/// The programs of this machine the cluster needs (Debian: containerd, runc,
/// containernetworking-plugins, iptables, conntrack, nftables, iproute2).
pub const HOST_PROGRAMS: [(&str, &str); 7] = [
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("runc", "runc"),
    ("iptables", "iptables"),
    ("conntrack", "conntrack"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
];
/// The CNI plugins it uses, from containernetworking-plugins.
pub const CNI_PLUGINS: [&str; 3] = ["/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"];

/// Where everything of the bare cluster is.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    /// `.state/bare` of this checkout.
    pub fn new() -> Self {
        Self { root: project::root().join(".state/bare") }
    }
    pub fn pki(&self) -> pki::Pki {
        pki::Pki { dir: self.root.join("pki") }
    }
    /// The admin's kubeconfig: what the user and every later command use.
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }
    pub fn component_kubeconfig(&self, identity: pki::Identity) -> PathBuf {
        self.root.join("kubeconfigs").join(format!("{}.kubeconfig", identity.file()))
    }
    pub fn etcd_data(&self) -> PathBuf {
        self.root.join("etcd")
    }
    pub fn containerd_config(&self) -> PathBuf {
        self.root.join("containerd/config.toml")
    }
    pub fn containerd_socket(&self) -> PathBuf {
        self.root.join("containerd/containerd.sock")
    }
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.root.join("cni/net.d")
    }
    pub fn kubelet_config(&self) -> PathBuf {
        self.root.join("kubelet/config.yaml")
    }
    pub fn kubelet_root(&self) -> PathBuf {
        self.root.join("kubelet/root")
    }
    pub fn kube_proxy_config(&self) -> PathBuf {
        self.root.join("kube-proxy/config.yaml")
    }
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }
    /// The folders of the PersistentVolumes (the node has no provisioner).
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }
    pub fn volumes_manifest(&self) -> PathBuf {
        self.volumes().join("persistentvolumes.yaml")
    }
    pub fn host_before(&self) -> PathBuf {
        self.root.join("host-before.json")
    }
    pub fn daemon(&self, component: Component) -> daemon::Daemon {
        daemon::Daemon {
            name: component.name(),
            command: component.command(self),
            log: self.root.join("logs").join(format!("{}.log", component.name())),
            pid_file: self.root.join("run").join(format!("{}.pid", component.name())),
        }
    }
}

/// `kubectl` against the bare cluster.
pub fn kubectl(layout: &Layout) -> Cmd {
    cmd!(tools::bin_dir().join(tools::KUBECTL).display(), "--kubeconfig", layout.kubeconfig().display())
}

/// The work of the plan that xtask does itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Work {
    Preflight,
    RecordHost,
    BridgedTrafficThroughIptables,
    Certificates,
    WriteConfig,
    Start(Component),
    WriteImage(&'static str),
    WaitForNode,
    /// The PersistentVolumes of the workshop's claims, as folders of the node.
    Volumes,
    RemoveContainers,
    Stop(Component),
    RestoreHost,
}

impl Work {
    /// What it does, for the plan.
    fn describe_in(&self, layout: &Layout) -> Vec<String> {
        match self {
            Work::Preflight => vec![
                "check: root, the tools of `cargo xtask tools install`, Debian's containerd, runc, CNI plugins, iptables, \
                 conntrack, nftables"
                    .into(),
            ],
            Work::RecordHost => vec![format!("record sysctls, nftables tables, netns, cgroups in {}", layout.host_before().display())],
            Work::BridgedTrafficThroughIptables => vec![
                format!("modprobe br_netfilter, unless /proc/sys/{BRIDGE_NETFILTER} is there"),
                format!("write 1 to /proc/sys/{BRIDGE_NETFILTER} (`down` puts back the value recorded)"),
            ],
            Work::Certificates => vec![format!(
                "make a CA, the API server's certificate, one client certificate per component and the service \
                 account key with rcgen, in {}; kubeconfigs embedding them",
                layout.pki().dir.display()
            )],
            Work::WriteConfig => components::config_files(layout)
                .into_iter()
                .map(|(path, _)| format!("write {}", path.display()))
                .collect(),
            Work::Start(component) => {
                let daemon = layout.daemon(*component);
                vec![
                    format!("start in the background: {} > {} 2>&1", daemon.command.shell(), daemon.log.display()),
                    format!("wait until {}", readiness(*component)),
                ]
            }
            Work::WriteImage(name) => {
                let Ok(image) = images::find(name) else { return vec![format!("no image named {name}")] };
                let file = image.file(&layout.images()).map(|file| file.display().to_string()).unwrap_or_default();
                let stands_in_for = image.stands_in_for.split_whitespace().collect::<Vec<_>>().join(" ");
                vec![format!("write the image {name} (OCI layout) to {file}"), format!("  in place of {stands_in_for}")]
            }
            Work::WaitForNode => vec![format!("wait until node {NODE_NAME} is Ready")],
            Work::Volumes => components::volumes(layout)
                .iter()
                .map(|volume| format!("make {} (owned by uid {}), then apply {}", volume.folder.display(), volume.owner, layout.volumes_manifest().display()))
                .collect(),
            Work::RemoveContainers => vec![
                "kill and delete every container of the k8s.io namespace (ctr tasks kill/delete, ctr containers delete)".into(),
            ],
            Work::Stop(component) => {
                vec![format!("stop {} (SIGTERM, its pid from {})", component.name(), layout.daemon(*component).pid_file.display())]
            }
            Work::RestoreHost => vec![format!(
                "undo every host change as {} recorded: Pod network namespaces, mounts under {}, nftables tables and \
                 KUBE-*/CNI-* chains, the bridge {BRIDGE}, {NODE_IP}/32 on lo, new cgroups, sysctls",
                layout.host_before().display(),
                layout.root.display()
            )],
        }
    }

    /// Does it.
    fn run_in(&self, layout: &Layout) -> anyhow::Result<()> {
        match self {
            Work::Preflight => preflight(),
            Work::RecordHost => host::Before::record_once(&layout.host_before(), &NODE_IP.to_string()).map(drop),
            Work::BridgedTrafficThroughIptables => bridged_traffic_through_iptables(),
            Work::Certificates => certificates(layout),
            Work::WriteConfig => {
                for (path, contents) in components::config_files(layout) {
                    std::fs::create_dir_all(path.parent().expect("a folder"))?;
                    std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
                }
                Ok(())
            }
            Work::Start(component) => start(layout, *component),
            Work::WriteImage(name) => images::find(name)?.write(&layout.images()).map(drop),
            Work::WaitForNode => {
                wait_for(Duration::from_secs(120), &format!("node {NODE_NAME} to be Ready"), || Ok(node_ready(layout)))
            }
            Work::Volumes => {
                for volume in components::volumes(layout) {
                    std::fs::create_dir_all(&volume.folder)
                        .with_context(|| format!("cannot create {}", volume.folder.display()))?;
                    std::os::unix::fs::chown(&volume.folder, Some(volume.owner), Some(volume.owner))
                        .with_context(|| format!("cannot give {} to uid {}", volume.folder.display(), volume.owner))?;
                }
                std::fs::write(layout.volumes_manifest(), components::volumes_manifest(layout))?;
                kubectl(layout)
                    .args(["apply", "--filename"])
                    .args([layout.volumes_manifest().display()])
                    .run("see `kubectl get persistentvolumes`")
            }
            Work::RemoveContainers => remove_containers(layout),
            Work::Stop(component) => layout.daemon(*component).stop().map(drop),
            Work::RestoreHost => restore_host(layout),
        }
    }
}

impl Action for Work {
    fn describe(&self) -> Vec<String> {
        self.describe_in(&Layout::new())
    }

    fn run(&self) -> anyhow::Result<()> {
        self.run_in(&Layout::new())
    }
}

/// Pod to Service to Pod on one bridge: the request leaves the client's Pod, is rewritten by
/// kube-proxy's DNAT (ClusterIP to the server Pod's IP) as it is routed, and reaches the server
/// on the same bridge. The answer goes back over the bridge, switched, not routed: unless bridged
/// frames pass through iptables, conntrack never rewrites its source back to the ClusterIP and
/// the client drops it. DNS from a Pod to CoreDNS is the first to hang. kube-proxy only warns
/// about it (pkg/proxy/iptables/proxier.go, "Missing br-netfilter module or unset sysctl");
/// kubeadm's preflight requires it (cmd/kubeadm/app/preflight/checks.go, bridge-nf-call-iptables).
const BRIDGE_NETFILTER: &str = "net/bridge/bridge-nf-call-iptables";

fn bridged_traffic_through_iptables() -> anyhow::Result<()> {
    if host::read_sysctl(BRIDGE_NETFILTER).is_none() {
        cmd!("modprobe", "br_netfilter").run(
            "the kernel's br_netfilter is not loaded and could not be: without it Pods cannot reach each other \
             through Services. Load it yourself, or use minikube: cargo xtask up",
        )?;
    }
    host::write_sysctl(BRIDGE_NETFILTER, "1")
}

fn readiness(component: Component) -> &'static str {
    match component {
        Component::Etcd => "GET http://127.0.0.1:2379/health says healthy",
        Component::ApiServer => "kubectl get --raw /readyz answers ok",
        Component::Containerd => "ctr version answers on its socket",
        _ => "it still runs after 2 s",
    }
}

/// `doctor`'s checks of the bare provider (root, Debian's programs, the CNI plugins, the tools),
/// printed when one fails; then the socket's path.
fn preflight() -> anyhow::Result<()> {
    let checks = crate::cluster::doctor::bare_checks(&crate::path::search_path());
    let missing = crate::cluster::doctor::missing(&checks);
    if !missing.is_empty() {
        crate::cluster::doctor::print(&checks);
        anyhow::bail!(
            "the bare provider cannot start here: fix {} (see above). It runs Kubernetes itself (mounts, \
             network namespaces, iptables) as root; without that, use minikube: cargo xtask up",
            missing.join(", ")
        );
    }
    // A unix socket's path has room for 107 bytes.
    let socket = Layout::new().containerd_socket();
    anyhow::ensure!(
        socket.as_os_str().len() < 100,
        "containerd's socket would be {} ({} bytes), too long for a unix socket: clone the workshop into a shorter path",
        socket.display(),
        socket.as_os_str().len()
    );
    Ok(())
}

fn certificates(layout: &Layout) -> anyhow::Result<()> {
    layout.pki().ensure()?;
    std::fs::create_dir_all(layout.root.join("kubeconfigs"))?;
    for identity in pki::Identity::ALL {
        let text = components::kubeconfig(layout, identity, CONTEXT)?;
        let path =
            if identity == pki::Identity::Admin { layout.kubeconfig() } else { layout.component_kubeconfig(identity) };
        crate::cluster::certs::write_private(&path, &text)?;
    }
    Ok(())
}

fn start(layout: &Layout, component: Component) -> anyhow::Result<()> {
    let daemon = layout.daemon(component);
    let pid = daemon.start()?;
    let failed = |why: &str| {
        anyhow::anyhow!(
            "{} {why} (pid {pid}); the end of {}:\n{}\nhint: `cargo xtask status --provider bare` shows every log",
            component.name(),
            daemon.log.display(),
            daemon.log_tail(15)
        )
    };
    let timeout = Duration::from_secs(60);
    let started = Instant::now();
    loop {
        if !daemon::alive(nix::unistd::Pid::from_raw(pid)) {
            return Err(failed("exited"));
        }
        let ready = match component {
            Component::Etcd => reqwest::blocking::get(format!("{}/health", components::ETCD_URL))
                .and_then(|response| response.text())
                .is_ok_and(|body| body.contains(r#""health":"true""#)),
            Component::ApiServer => {
                kubectl(layout).args(["get", "--raw", "/readyz"]).read().is_some_and(|out| out.trim() == "ok")
            }
            Component::Containerd => {
                cmd!("ctr", "--address", layout.containerd_socket().display(), "version").read().is_some()
            }
            _ => started.elapsed() > Duration::from_secs(2),
        };
        if ready {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(failed(&format!("is not ready after {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn wait_for(timeout: Duration, what: &str, mut ready: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let started = Instant::now();
    while !ready()? {
        anyhow::ensure!(
            started.elapsed() < timeout,
            "waited {timeout:?} for {what}: see `cargo xtask status --provider bare`"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    Ok(())
}

fn node_ready(layout: &Layout) -> bool {
    kubectl(layout)
        .args(["get", "node", NODE_NAME, "--output", r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#])
        .read()
        .is_some_and(|status| status.trim() == "True")
}

/// Every container of the kubelet's namespace, killed and deleted while containerd still runs
/// (the shims exit with them; their sandboxes' network namespaces are left for [`host::restore`]).
fn remove_containers(layout: &Layout) -> anyhow::Result<()> {
    if layout.daemon(Component::Containerd).running().is_none() {
        return Ok(());
    }
    let ctr = || images::ctr(&layout.containerd_socket());
    let containers = ctr().args(["containers", "list", "--quiet"]).read().unwrap_or_default();
    for id in containers.lines().filter(|id| !id.trim().is_empty()) {
        let _ = ctr().args(["tasks", "kill", "--signal", "SIGKILL", id]).run("");
    }
    for id in containers.lines().filter(|id| !id.trim().is_empty()) {
        let _ = wait_for(Duration::from_secs(10), "the task to stop", || {
            Ok(ctr().args(["tasks", "delete", id]).run("").is_ok()
                || !ctr().args(["tasks", "list", "--quiet"]).read().unwrap_or_default().lines().any(|task| task == id))
        });
        ctr().args(["containers", "delete", id]).run("see `ctr --namespace k8s.io containers list`")?;
    }
    Ok(())
}

/// After every program stopped: the shims that outlived containerd, then the host's changes.
fn restore_host(layout: &Layout) -> anyhow::Result<()> {
    let socket = layout.containerd_socket().display().to_string();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let command_line = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&command_line);
        if text.starts_with("/usr/bin/containerd-shim") && text.contains(&socket) {
            println!("  ✓ kill a shim left by containerd (pid {pid})");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let Ok(text) = std::fs::read_to_string(layout.host_before()) else {
        println!("  (no record of the host in {}: nothing to undo)", layout.host_before().display());
        return Ok(());
    };
    let before: host::Before = serde_json::from_str(&text)?;
    let errors = host::restore(&before, &layout.root, &NODE_IP.to_string(), BRIDGE);
    anyhow::ensure!(errors.is_empty(), "some host changes could not be undone:\n  {}", errors.join("\n  "));
    std::fs::remove_file(layout.host_before())?;
    Ok(())
}

/// What is already there, looked at (read-only) before planning.
#[derive(Debug, Default)]
pub struct Observed {
    pub host_recorded: bool,
    pub node_address: bool,
    pub bridged_traffic_through_iptables: bool,
    pub certificates: bool,
    pub config_current: bool,
    /// The pid of each running component.
    pub running: Vec<(Component, i32)>,
    /// The images the node's containerd has as their current files say (same digest).
    pub images: Vec<String>,
    pub node_ready: bool,
    pub coredns_ready: bool,
    /// Every PersistentVolume of the workshop, with its folder.
    pub volumes: bool,
}

impl Observed {
    pub fn look(layout: &Layout) -> anyhow::Result<Self> {
        let coredns = images::find(images::COREDNS)?.reference()?;
        Ok(Self {
            host_recorded: layout.host_before().is_file(),
            node_address: host::has_address(&NODE_IP.to_string()),
            bridged_traffic_through_iptables: host::read_sysctl(BRIDGE_NETFILTER).as_deref() == Some("1"),
            certificates: layout.pki().exists() && layout.kubeconfig().is_file(),
            config_current: components::config_files(layout)
                .iter()
                .all(|(path, contents)| std::fs::read_to_string(path).is_ok_and(|now| now == *contents)),
            running: Component::ALL
                .into_iter()
                .filter_map(|component| Some((component, layout.daemon(component).running()?)))
                .collect(),
            images: {
                let imported = images::imported(&layout.containerd_socket());
                images::CATALOG
                    .iter()
                    .filter(|image| images::is_imported(image, &layout.images(), &imported))
                    .map(|image| image.reference())
                    .collect::<anyhow::Result<_>>()?
            },
            node_ready: node_ready(layout),
            volumes: components::volumes(layout).iter().all(|volume| {
                volume.folder.is_dir()
                    && kubectl(layout)
                        .args(["get", "persistentvolume", volume.name, "--output", "name"])
                        .read()
                        .is_some()
            }),
            coredns_ready: kubectl(layout)
                .args(["--namespace", "kube-system", "get", "deployment", "coredns"])
                .args(["--output", "jsonpath={.status.readyReplicas} {.spec.template.spec.containers[0].image}"])
                .read()
                .is_some_and(|out| out.trim() == format!("1 {coredns}")),
        })
    }
}

/// The steps that bring the bare cluster up (and find it up on a second run).
pub fn up_steps(layout: &Layout, observed: &Observed) -> anyhow::Result<Vec<Step>> {
    let running =
        |component: Component| observed.running.iter().find(|(running, _)| *running == component).map(|(_, pid)| *pid);
    let mut steps = vec![
        Step::new("Check this machine for the bare provider", "see `cargo xtask doctor`").action(Work::Preflight),
        Step::new("Record how the host is, for `down`", "the state folder must be writable")
            .action(Work::RecordHost)
            .done_if(observed.host_recorded.then(|| "recorded by an earlier `up`".into())),
        Step::new(format!("The node's address {NODE_IP}/32 on lo"), "see `ip address show dev lo`")
            .command(cmd!("ip", "address", "add", format!("{NODE_IP}/32"), "dev", "lo"))
            .done_if(observed.node_address.then(|| "it is there".into())),
        Step::new(
            "Bridged Pod traffic through iptables, for Services between Pods",
            "see `lsmod`, `sysctl net.bridge`",
        )
        .action(Work::BridgedTrafficThroughIptables)
        .done_if(observed.bridged_traffic_through_iptables.then(|| "it is on".into())),
        Step::new("The cluster's certificates and kubeconfigs", "the state folder must be writable")
            .action(Work::Certificates)
            .done_if(observed.certificates.then(|| "kept from an earlier run".into())),
        Step::new(
            "Configuration of containerd, the CNI bridge, the kubelet and kube-proxy",
            "the state folder must be writable",
        )
        .action(Work::WriteConfig)
        .done_if(observed.config_current.then(|| "written, unchanged".into())),
    ];
    for component in [
        Component::Etcd,
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Containerd,
    ] {
        steps.push(start_step(layout, component, running(component)));
    }
    steps.extend(image_steps(layout, observed, |image| image.cluster)?);
    steps.push(start_step(layout, Component::Kubelet, running(Component::Kubelet)));
    steps.push(
        Step::new(format!("Node {NODE_NAME} Ready"), "see the kubelet's log: cargo xtask status --provider bare")
            .action(Work::WaitForNode)
            .done_if(observed.node_ready.then(|| "it is".into())),
    );
    steps.push(start_step(layout, Component::KubeProxy, running(Component::KubeProxy)));
    let coredns = images::find(images::COREDNS)?.reference()?;
    steps.push(
        Step::new(
            format!("CoreDNS ({coredns}) answers for {CLUSTER_DOMAIN}"),
            "see `kubectl --namespace kube-system describe pods`",
        )
        .command(kubectl(layout).args(["apply", "--filename", COREDNS_MANIFEST]))
        .command(kubectl(layout).args([
            "--namespace",
            "kube-system",
            "rollout",
            "status",
            "deployment/coredns",
            "--timeout=3m",
        ]))
        .done_if(observed.coredns_ready.then(|| "CoreDNS runs".into())),
    );
    Ok(steps)
}

/// Write each image `which` picks and import it into the node's containerd, unless it is there.
fn image_steps(layout: &Layout, observed: &Observed, which: fn(&images::Image) -> bool) -> anyhow::Result<Vec<Step>> {
    let socket = layout.containerd_socket();
    let mut steps = Vec::new();
    for image in images::CATALOG.iter().filter(|image| which(image)) {
        let reference = image.reference()?;
        steps.push(
            Step::new(format!("The image {reference}, written and imported"), "see `cargo xtask tools list`")
                .action(Work::WriteImage(image.name))
                .command(images::import(&socket, &image.file(&layout.images())?))
                .done_if(observed.images.contains(&reference).then(|| "imported, as written".into())),
        );
    }
    Ok(steps)
}

/// The workshop's volumes, before its releases: the node has no provisioner.
pub fn volume_step(observed: &Observed) -> Step {
    Step::new("PersistentVolumes for the workshop's claims (folders of the node)", "see `kubectl get pv,pvc -A`")
        .action(Work::Volumes)
        .done_if(observed.volumes.then(|| "they are there".into()))
}

/// `cargo xtask images --provider bare`: every image of the catalog, the workshop's too (its
/// app's from a release build), in the running node's containerd.
pub fn images_steps(layout: &Layout, observed: &Observed) -> anyhow::Result<Vec<Step>> {
    image_steps(layout, observed, |_| true)
}

/// The workshop's images (the cluster's own come with the cluster), for `up`.
pub fn workshop_image_steps(layout: &Layout, observed: &Observed) -> anyhow::Result<Vec<Step>> {
    image_steps(layout, observed, |image| !image.cluster)
}

fn start_step(layout: &Layout, component: Component, running: Option<i32>) -> Step {
    Step::new(format!("Start {}", component.what()), format!("see {}", layout.daemon(component).log.display()))
        .action(Work::Start(component))
        .done_if(running.map(|pid| format!("it runs, pid {pid}")))
}

/// The steps of `down`: the node first, then the Pods' containers, the runtime and the control
/// plane, then the host as it was.
pub fn down_steps(delete: bool, layout: &Layout, observed: &Observed) -> Vec<Step> {
    let stop = |component: Component| {
        Step::new(format!("Stop {}", component.what()), "see `cargo xtask status --provider bare`")
            .action(Work::Stop(component))
            .done_if((!observed.running.iter().any(|(running, _)| *running == component)).then(|| "not running".into()))
    };
    let mut steps: Vec<Step> =
        [Component::KubeProxy, Component::Kubelet, Component::Scheduler, Component::ControllerManager]
            .into_iter()
            .map(stop)
            .collect();
    steps.push(
        Step::new("Remove the Pods' containers", "see `ctr --namespace k8s.io containers list`")
            .action(Work::RemoveContainers),
    );
    steps.extend([Component::Containerd, Component::ApiServer, Component::Etcd].into_iter().map(stop));
    steps.push(Step::new("Put the host back as it was", "see the lines above").action(Work::RestoreHost));
    if delete {
        steps.push(Step::new(format!("Delete {}", layout.root.display()), "").command(cmd!(
            "rm",
            "-rf",
            layout.root.display()
        )));
    }
    steps
}

/// `cargo xtask status --provider bare`.
pub fn status() -> anyhow::Result<()> {
    let layout = Layout::new();
    println!("The bare cluster ({}):", layout.root.display());
    for component in Component::ALL {
        let daemon = layout.daemon(component);
        let state = match daemon.running() {
            Some(pid) => format!("running, pid {pid}"),
            None => "stopped".to_owned(),
        };
        println!("  {:<24} {:<20} log: {}", component.name(), state, daemon.log.display());
    }
    println!("  kubeconfig: {}", layout.kubeconfig().display());
    let commands = [
        kubectl(&layout).args(["get", "nodes", "--output", "wide"]),
        kubectl(&layout).args(["get", "pods", "--all-namespaces", "--output", "wide"]),
    ];
    for command in commands {
        println!("\n$ {}", command.shell());
        println!("{}", command.read().unwrap_or_else(|| "  (no answer: is the cluster up?)".into()));
    }
    Ok(())
}
