//! What the bare cluster changes on this machine, and how `down` puts it back.
//!
//! Before the first change, `up` records how the host was (`.state/bare/host-before.json`):
//! the sysctls the kubelet and kube-proxy set, the nftables tables (iptables here is the nft
//! backend), the network namespaces, the cgroups, and whether the folders the cluster makes
//! outside `.state/` existed. `down` removes what was not there then and restores the values.
//! Everything else the cluster writes is under `.state/bare/` (containerd's root and state, the
//! kubelet's root and Pod logs, the CNI configuration and its address allocations).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::cmd;

/// Set by the kubelet (pkg/kubelet/cm/container_manager_linux.go, setupKernelTunables, unless
/// protectKernelDefaults) and needed by Pod routing (forwarding, bridged traffic through
/// iptables for Services between Pods on one bridge).
pub const SYSCTLS: [&str; 5] = [
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
];

/// Folders the cluster's programs make outside `.state/` (paths they do not let us choose):
/// containerd's shim sockets (/run/containerd/s), the Pods' network namespaces, libcni's cache,
/// the kubelet's links to container logs, and the kubelet's device plugin socket, whose folder
/// is fixed whatever its --root-dir (k8s.io/kubelet pkg/apis/deviceplugin/v1beta1/constants.go,
/// `DevicePluginPath`): the parent goes too when it was not there before.
pub const OUTSIDE_STATE: [&str; 7] = [
    "/run/containerd",
    "/run/netns",
    "/var/lib/cni",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/kubelet/device-plugins",
    "/var/lib/kubelet",
];

/// The cgroup hierarchies whose new top-level groups `down` removes.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How the host was before the cluster.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Before {
    pub sysctls: BTreeMap<String, String>,
    /// `family name` of every nftables table.
    pub nft_tables: BTreeSet<String>,
    pub netns: BTreeSet<String>,
    /// Folders of [`OUTSIDE_STATE`] that existed.
    pub existing: BTreeSet<String>,
    /// `controller/group` of every top-level cgroup.
    pub cgroups: BTreeSet<String>,
    /// Whether the node's address was on `lo` already.
    pub node_address: bool,
}

impl Before {
    /// Looks at the host now.
    pub fn observe(node_ip: &str) -> Self {
        Self {
            sysctls: SYSCTLS.iter().filter_map(|name| Some((name.to_string(), read_sysctl(name)?))).collect(),
            nft_tables: nft_tables(),
            netns: list_dir(Path::new("/run/netns")),
            existing: OUTSIDE_STATE
                .iter()
                .filter(|path| Path::new(path).exists())
                .map(|path| path.to_string())
                .collect(),
            cgroups: cgroups(),
            node_address: has_address(node_ip),
        }
    }

    /// Reads the record of `up`, or records the host now if there is none (the first `up`).
    pub fn record_once(file: &Path, node_ip: &str) -> anyhow::Result<Self> {
        if let Ok(text) = std::fs::read_to_string(file) {
            return serde_json::from_str(&text).with_context(|| format!("{} is damaged", file.display()));
        }
        let before = Self::observe(node_ip);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(file, serde_json::to_string_pretty(&before)?)
            .with_context(|| format!("cannot write {}", file.display()))?;
        Ok(before)
    }
}

pub fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(Path::new("/proc/sys").join(name)).ok().map(|value| value.trim().to_owned())
}

pub fn write_sysctl(name: &str, value: &str) -> anyhow::Result<()> {
    std::fs::write(Path::new("/proc/sys").join(name), value).with_context(|| format!("cannot set sysctl {name}"))
}

/// `family name` of every nftables table (`nft list tables` prints `table ip nat`).
pub fn nft_tables() -> BTreeSet<String> {
    cmd!("nft", "list", "tables")
        .read()
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().strip_prefix("table ").map(str::to_owned))
        .collect()
}

pub fn has_address(ip: &str) -> bool {
    cmd!("ip", "-o", "address", "show", "dev", "lo").read().is_some_and(|out| out.contains(&format!(" {ip}/32 ")))
}

pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn list_dir(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn cgroups() -> BTreeSet<String> {
    let mut groups = BTreeSet::new();
    for controller in list_dir(Path::new(CGROUP_ROOT)) {
        let dir = Path::new(CGROUP_ROOT).join(&controller);
        if dir.is_symlink() {
            continue; // cpu,cpuacct → cpu: one hierarchy, two names
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                groups.insert(format!("{controller}/{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    groups
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo, field 5).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(point.replace("\\040", " ")))
        .filter(|point| point.starts_with(dir))
        .collect();
    mounts.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    mounts.dedup();
    mounts
}

/// Puts the host back as `before` says, after the cluster's programs stopped. Each undo is
/// attempted; the errors are collected, so one failure does not leave the rest in place.
pub fn restore(before: &Before, state: &Path, node_ip: &str, bridge: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let mut attempt = |what: String, result: anyhow::Result<()>| match &result {
        Ok(()) => println!("  ✓ {what}"),
        Err(error) => {
            println!("  ✗ {what}: {error:#}");
            errors.push(format!("{what}: {error:#}"));
        }
    };
    // The Pods' network namespaces: bind mounts in /run/netns (the veth pairs go with them).
    for name in list_dir(Path::new("/run/netns")).difference(&before.netns) {
        let path = Path::new("/run/netns").join(name);
        attempt(format!("remove network namespace {name}"), unmount_and_remove(&path));
    }
    // Overlay root filesystems, the kubelet's root bind mount, secret and token volumes.
    for point in mounts_under(state) {
        attempt(format!("unmount {}", point.display()), unmount(&point));
    }
    for path in OUTSIDE_STATE.iter().filter(|path| !before.existing.contains(**path)) {
        if Path::new(path).exists() {
            for point in mounts_under(Path::new(path)) {
                attempt(format!("unmount {}", point.display()), unmount(&point));
            }
            attempt(
                format!("remove {path} (made by the cluster)"),
                std::fs::remove_dir_all(path).with_context(|| format!("cannot remove {path}")),
            );
        }
    }
    // iptables (nft backend): tables that were not there go whole; in tables that were, only
    // the chains Kubernetes and the CNI plugins name KUBE-* and CNI-*.
    for table in nft_tables() {
        let mut words = table.split_whitespace();
        let (Some(family), Some(name)) = (words.next(), words.next()) else { continue };
        if before.nft_tables.contains(&table) {
            attempt(format!("remove KUBE-* and CNI-* chains of table {table}"), remove_chains(family, name));
        } else {
            attempt(
                format!("remove nftables table {table}"),
                cmd!("nft", "delete", "table", family, name).run("see `nft list tables`"),
            );
        }
    }
    if link_exists(bridge) {
        attempt(format!("remove the CNI bridge {bridge}"), cmd!("ip", "link", "delete", bridge).run("see `ip link`"));
    }
    if !before.node_address && has_address(node_ip) {
        attempt(
            format!("remove {node_ip}/32 from lo"),
            cmd!("ip", "address", "delete", format!("{node_ip}/32"), "dev", "lo").run("see `ip address show dev lo`"),
        );
    }
    for group in cgroups().difference(&before.cgroups) {
        let path = Path::new(CGROUP_ROOT).join(group);
        attempt(format!("remove cgroup {group}"), remove_cgroup(&path));
    }
    for (name, value) in &before.sysctls {
        if read_sysctl(name).as_deref() != Some(value) {
            attempt(format!("restore sysctl {name} = {value}"), write_sysctl(name, value));
        }
    }
    errors
}

fn unmount(point: &Path) -> anyhow::Result<()> {
    // A lazy unmount when busy: the mount goes from the namespace now, the kernel frees it later.
    cmd!("umount", point.display())
        .run("see `findmnt`")
        .or_else(|_| cmd!("umount", "--lazy", point.display()).run("see `findmnt`"))
}

fn unmount_and_remove(path: &Path) -> anyhow::Result<()> {
    if mounts_under(path).contains(&path.to_path_buf()) {
        unmount(path)?;
    }
    std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))
}

/// Empty cgroups only can go, children first.
fn remove_cgroup(path: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(path)?.flatten() {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            remove_cgroup(&entry.path())?;
        }
    }
    std::fs::remove_dir(path).with_context(|| format!("cannot remove cgroup {}", path.display()))
}

/// In an iptables table that was there before: first the rules that jump to a KUBE-*/CNI-*
/// chain from elsewhere, then those chains (flushed, deleted).
fn remove_chains(family: &str, table: &str) -> anyhow::Result<()> {
    let program = match family {
        "ip" => "iptables",
        "ip6" => "ip6tables",
        _ => return Ok(()),
    };
    let ours = |chain: &str| chain.starts_with("KUBE-") || chain.starts_with("CNI-");
    let rules = cmd!(program, "-t", table, "-S").read().unwrap_or_default();
    let mut chains = Vec::new();
    for line in rules.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["-N", chain] if ours(chain) => chains.push(chain.to_string()),
            ["-A", chain, rest @ ..]
                if !ours(chain) && rest.windows(2).any(|pair| pair[0] == "-j" && ours(pair[1])) =>
            {
                cmd!(program, "-t", table, "-D", chain).args(rest.iter()).run("see `iptables-save`")?;
            }
            _ => {}
        }
    }
    for chain in &chains {
        cmd!(program, "-t", table, "-F", chain).run("see `iptables-save`")?;
    }
    for chain in &chains {
        cmd!(program, "-t", table, "-X", chain).run("see `iptables-save`")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("host-before.json");
        let first = Before::record_once(&file, "10.200.0.1").unwrap();
        let mut changed = first;
        changed.node_address = !changed.node_address;
        std::fs::write(&file, serde_json::to_string(&changed).unwrap()).unwrap();
        assert_eq!(Before::record_once(&file, "10.200.0.1").unwrap(), changed, "the first record wins");
    }

    #[test]
    fn mounts_are_listed_deepest_first() {
        let mounts = mounts_under(Path::new("/"));
        assert_eq!(mounts.last().map(PathBuf::as_path), Some(Path::new("/")));
        let depths: Vec<usize> = mounts.iter().map(|point| point.components().count()).collect();
        assert!(depths.windows(2).all(|pair| pair[0] >= pair[1]), "{mounts:?}");
    }
}
