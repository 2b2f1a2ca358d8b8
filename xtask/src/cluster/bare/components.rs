//! The bare cluster's programs and their configuration, each written out once: etcd, the
//! control plane, containerd, the kubelet and kube-proxy, in the order they start.
//!
//! Flags checked against Kubernetes v1.34 (`kube-apiserver --help` and the component
//! configuration types `kubelet.config.k8s.io/v1beta1` and `kubeproxy.config.k8s.io/v1alpha1`)
//! and containerd 1.6's CRI plugin configuration (`docs/cri/config.md` of that release).

use std::path::{Path, PathBuf};

use super::{
    API_PORT, BRIDGE, CLUSTER_DOMAIN, DNS_IP, Layout, NODE_IP, NODE_NAME, POD_CIDR, SERVICE_CIDR, pki::Identity,
};
use crate::{cmd, steps::Cmd, tools};

/// One program of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Etcd,
    ApiServer,
    ControllerManager,
    Scheduler,
    Containerd,
    Kubelet,
    KubeProxy,
}

impl Component {
    /// In the order they start (and stop the other way round).
    pub const ALL: [Component; 7] = [
        Component::Etcd,
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
        Component::Containerd,
        Component::Kubelet,
        Component::KubeProxy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => tools::ETCD,
            Component::ApiServer => tools::KUBE_APISERVER,
            Component::ControllerManager => tools::KUBE_CONTROLLER_MANAGER,
            Component::Scheduler => tools::KUBE_SCHEDULER,
            Component::Containerd => "containerd",
            Component::Kubelet => tools::KUBELET,
            Component::KubeProxy => tools::KUBE_PROXY,
        }
    }

    /// The program: Debian's containerd from PATH, the rest from `cargo xtask tools install`.
    pub fn program(self) -> PathBuf {
        match self {
            Component::Containerd => PathBuf::from("containerd"),
            other => tools::bin_dir().join(other.name()),
        }
    }

    /// What it is, for the plan.
    pub fn what(self) -> &'static str {
        match self {
            Component::Etcd => "etcd, the cluster's store (plain HTTP on loopback only)",
            Component::ApiServer => "the API server",
            Component::ControllerManager => "the controller manager",
            Component::Scheduler => "the scheduler",
            Component::Containerd => "containerd, the node's container runtime (its own config and folders)",
            Component::Kubelet => "the kubelet: the node",
            Component::KubeProxy => "kube-proxy: Services, in iptables",
        }
    }

    /// The command line.
    pub fn command(self, layout: &Layout) -> Cmd {
        let program = self.program().display().to_string();
        let path = |path: PathBuf| path.display().to_string();
        let pki = layout.pki();
        match self {
            Component::Etcd => cmd!(
                program,
                "--name",
                NODE_NAME,
                "--data-dir",
                path(layout.etcd_data()),
                "--listen-client-urls",
                ETCD_URL,
                "--advertise-client-urls",
                ETCD_URL,
                "--listen-peer-urls",
                ETCD_PEER_URL,
                "--initial-advertise-peer-urls",
                ETCD_PEER_URL,
                "--initial-cluster",
                format!("{NODE_NAME}={ETCD_PEER_URL}")
            ),
            Component::ApiServer => {
                let (certificate, key) = pki.apiserver();
                let (kubelet_certificate, kubelet_key) = pki.client(Identity::ApiServerToKubelet);
                cmd!(
                    program,
                    // A non-loopback address: the `kubernetes` Service's endpoint may not be 127.0.0.1.
                    format!("--advertise-address={NODE_IP}"),
                    format!("--bind-address={NODE_IP}"),
                    format!("--secure-port={API_PORT}"),
                    format!("--etcd-servers={ETCD_URL}"),
                    format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                    format!("--client-ca-file={}", path(pki.ca())),
                    format!("--tls-cert-file={}", path(certificate)),
                    format!("--tls-private-key-file={}", path(key)),
                    format!("--kubelet-client-certificate={}", path(kubelet_certificate)),
                    format!("--kubelet-client-key={}", path(kubelet_key)),
                    "--kubelet-preferred-address-types=InternalIP",
                    format!("--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}"),
                    format!("--service-account-key-file={}", path(pki.service_account_public_key())),
                    format!("--service-account-signing-key-file={}", path(pki.service_account_key())),
                    "--authorization-mode=Node,RBAC",
                    "--allow-privileged=true"
                )
            }
            Component::ControllerManager => control_plane_client(program, layout, Identity::ControllerManager).args([
                "--use-service-account-credentials=true".to_owned(),
                format!("--service-account-private-key-file={}", path(pki.service_account_key())),
                format!("--root-ca-file={}", path(pki.ca())),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            ]),
            Component::Scheduler => control_plane_client(program, layout, Identity::Scheduler),
            Component::Containerd => cmd!(program, "--config", path(layout.containerd_config())),
            Component::Kubelet => cmd!(
                program,
                format!("--config={}", path(layout.kubelet_config())),
                format!("--kubeconfig={}", path(layout.component_kubeconfig(Identity::Kubelet))),
                format!("--root-dir={}", path(layout.kubelet_root())),
                format!("--cert-dir={}", path(layout.root.join("kubelet/pki"))),
                format!("--node-ip={NODE_IP}"),
                format!("--hostname-override={NODE_NAME}")
            ),
            Component::KubeProxy => cmd!(program, format!("--config={}", path(layout.kube_proxy_config()))),
        }
    }
}

/// The controller manager and the scheduler alike: one kubeconfig for the API and for checking
/// who calls their own endpoints, those on loopback only, and no leader election on one node.
fn control_plane_client(program: String, layout: &Layout, identity: Identity) -> Cmd {
    let kubeconfig = layout.component_kubeconfig(identity).display().to_string();
    cmd!(
        program,
        format!("--kubeconfig={kubeconfig}"),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--bind-address=127.0.0.1",
        "--leader-elect=false"
    )
}

pub const ETCD_URL: &str = "http://127.0.0.1:2379";
const ETCD_PEER_URL: &str = "http://127.0.0.1:2380";

/// The configuration files the components read, with their contents.
pub fn config_files(layout: &Layout) -> Vec<(PathBuf, String)> {
    vec![
        (layout.containerd_config(), containerd_config(layout)),
        (layout.cni_conf_dir().join("10-workshop.conflist"), cni_config(layout)),
        (layout.kubelet_config(), kubelet_config(layout)),
        (layout.kube_proxy_config(), kube_proxy_config(layout)),
    ]
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// containerd 1.6 (config version 2), every folder of its own under `.state/bare/containerd`.
fn containerd_config(layout: &Layout) -> String {
    let dir = layout.root.join("containerd");
    let pause = crate::cluster::images::find(crate::cluster::images::PAUSE)
        .and_then(|image| image.reference())
        .unwrap_or_default();
    format!(
        r#"# Written by `cargo xtask up --provider bare`: containerd for the workshop's node only.
version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  # xtask's own pause image (tools/pause), imported before the kubelet starts.
  sandbox_image = "{pause}"
  # root here lacks CAP_SYS_RESOURCE: without this, every sandbox fails with
  # "runc create failed: ... can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # The Pods' network namespaces under the state folder, not in /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroups v1 with the cgroupfs driver, as the kubelet's cgroupDriver says.
        SystemdCgroup = false
        Root = "{runc}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
"#,
        root = display(&dir.join("root")),
        state = display(&dir.join("state")),
        socket = display(&layout.containerd_socket()),
        opt = display(&dir.join("opt")),
        runc = display(&dir.join("runc")),
        cni = display(&layout.cni_conf_dir()),
    )
}

/// The bridge plugin with host-local addresses: Pods on a bridge of their own, no masquerade
/// (nothing outside this machine is reachable, and nothing should be).
fn cni_config(layout: &Layout) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "workshop",
        "plugins": [{
            "type": "bridge",
            "bridge": BRIDGE,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": POD_CIDR }]],
                // The Pods' default route, through the bridge (the host): Services' ClusterIPs
                // are no Pod's neighbours.
                "routes": [{ "dst": "0.0.0.0/0" }],
                "dataDir": display(&layout.root.join("cni/ipam")),
            },
        }],
    }))
    .expect("JSON")
}

fn kubelet_config(layout: &Layout) -> String {
    format!(
        r#"# Written by `cargo xtask up --provider bare`.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: {ca}
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://{socket}
# cgroups v1 here: the cgroupfs driver, and v1 allowed (from 1.35 the default refuses it).
cgroupDriver: cgroupfs
failCgroupV1: false
# No QoS cgroup tree (kubepods/...): nothing of the kubelet's left in /sys/fs/cgroup after `down`.
cgroupsPerQOS: false
enforceNodeAllocatable: []
clusterDomain: {CLUSTER_DOMAIN}
clusterDNS: [{DNS_IP}]
# The Pods get no resolver of the host: nothing outside this machine is theirs to ask.
resolvConf: ""
podLogsDir: {pod_logs}
failSwapOn: false
# The images are imported, never pulled: never collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: "1%"
  imagefs.available: "1%"
"#,
        ca = display(&layout.pki().ca()),
        socket = display(&layout.containerd_socket()),
        pod_logs = display(&layout.root.join("pod-logs")),
    )
}

fn kube_proxy_config(layout: &Layout) -> String {
    format!(
        r#"# Written by `cargo xtask up --provider bare`.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {kubeconfig}
hostnameOverride: {NODE_NAME}
clusterCIDR: {POD_CIDR}
bindAddress: {NODE_IP}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  # NodePorts on 127.0.0.1 would need net.ipv4.conf.all.route_localnet=1: a host change we do not make.
  localhostNodePorts: false
conntrack:
  # Leave the host's nf_conntrack_max alone.
  maxPerCore: 0
"#,
        kubeconfig = display(&layout.component_kubeconfig(Identity::KubeProxy)),
    )
}

/// A kubeconfig for `identity`, certificates embedded.
pub fn kubeconfig(layout: &Layout, identity: Identity, context: &str) -> anyhow::Result<String> {
    use base64::Engine;
    let pki = layout.pki();
    let encode = |path: &Path| -> anyhow::Result<String> {
        let bytes = std::fs::read(path).map_err(|error| anyhow::anyhow!("cannot read {}: {error}", path.display()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    let (certificate, key) = pki.client(identity);
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: https://{NODE_IP}:{API_PORT}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {certificate}\n    \
         client-key-data: {key}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {user}\n\
         current-context: {context}\n",
        ca = encode(&pki.ca())?,
        user = identity.file(),
        certificate = encode(&certificate)?,
        key = encode(&key)?,
    ))
}

/// A PersistentVolume of the node: a folder under `.state/bare/volumes/`, bound to one claim.
pub struct Volume {
    pub name: &'static str,
    /// The claim it is for: `namespace/name`.
    pub claim: (&'static str, &'static str),
    pub folder: PathBuf,
    /// Who may write it: the Pod's user (fsGroup does not apply to a hostPath volume).
    pub owner: u32,
    pub size: &'static str,
}

/// The app's MariaDB claim (its StatefulSet's `data` template, Pod 0: helm/todo-app), as its
/// image's user 999. `down` keeps the folder, as it keeps the rest of the cluster's data.
pub fn volumes(layout: &Layout) -> Vec<Volume> {
    vec![Volume {
        name: "workshop-mariadb-data",
        claim: (crate::cluster::APP_NAMESPACE, "data-mariadb-0"),
        folder: layout.volumes().join("mariadb-data"),
        owner: 999,
        size: "1Gi",
    }]
}

/// The PersistentVolumes, each reserved for its claim (`claimRef`) and of no StorageClass, as a
/// claim that names none asks when the cluster has no default class.
pub fn volumes_manifest(layout: &Layout) -> String {
    volumes(layout)
        .iter()
        .map(|volume| {
            format!(
                "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\nspec:\n  capacity: {{ storage: {size} }}\n  \
                 accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: \"\"\n  \
                 claimRef: {{ namespace: {namespace}, name: {claim} }}\n  hostPath: {{ path: {path}, type: Directory }}\n",
                name = volume.name,
                size = volume.size,
                namespace = volume.claim.0,
                claim = volume.claim.1,
                path = volume.folder.display(),
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}
