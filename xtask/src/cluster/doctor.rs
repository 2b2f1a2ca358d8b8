//! `cargo xtask doctor`: is this machine ready for cluster mode? Checks every tool and its
//! version, the container engine, CPUs and memory, and says how to fix what is missing.

use std::path::PathBuf;

use crate::{
    cluster::versions::{self, Minimum, Versions},
    cmd,
    path::find,
    project,
};

/// What the minikube profile gets (see `cluster`), and so what the machine needs.
pub const MIN_CPUS: usize = 4;
pub const MIN_MEMORY_GIB: u64 = 10;

struct Tool {
    name: &'static str,
    version: &'static [&'static str],
    /// The oldest version cluster mode works with, from config/versions.toml.
    minimum: fn(&Minimum) -> &str,
    linux: &'static str,
    macos: &'static str,
}

const TOOLS: [Tool; 3] = [
    Tool {
        name: "minikube",
        version: &["version", "--short"],
        minimum: |minimum| &minimum.minikube,
        linux: "curl -LO https://github.com/kubernetes/minikube/releases/latest/download/minikube-linux-amd64 && sudo install minikube-linux-amd64 /usr/local/bin/minikube",
        macos: "brew install minikube",
    },
    Tool {
        name: "kubectl",
        version: &["version", "--client"],
        minimum: |minimum| &minimum.kubernetes,
        linux: "see https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ (or: minikube kubectl -- …)",
        macos: "brew install kubectl",
    },
    Tool {
        name: "helm",
        version: &["version", "--short"],
        minimum: |minimum| &minimum.helm,
        linux: "curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash",
        macos: "brew install helm",
    },
];

/// One line of the report.
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub found: String,
    pub fix: String,
}

/// The checks, with programs looked for in `path`.
pub fn checks(path: &[PathBuf]) -> Vec<Check> {
    let mut checks = Vec::new();
    let versions = Versions::read(&project::root());
    for tool in &TOOLS {
        let found = find(tool.name, path);
        let version = found.as_ref().and_then(|program| {
            cmd!(program.display())
                .args(tool.version)
                .read()
                .map(|out| out.lines().next().unwrap_or_default().to_owned())
        });
        let minimum = versions.as_ref().map(|versions| (tool.minimum)(&versions.minimum)).unwrap_or("0.0.0");
        let recent = |found: &str| meets(found, minimum);
        checks.push(Check {
            name: tool.name.into(),
            ok: version.as_deref().is_some_and(recent),
            found: match version {
                Some(version) if !recent(&version) => {
                    format!("{version} (older than {minimum}, which cluster mode needs)")
                }
                Some(version) => version,
                None => "not found".into(),
            },
            fix: format!("{minimum} or newer. Linux: {}\n      macOS: {}", tool.linux, tool.macos),
        });
    }

    let engine = ["docker", "podman"].into_iter().find_map(|runtime| {
        let program = find(runtime, path)?;
        let version = cmd!(program.display(), "info", "--format", "{{.ServerVersion}}").read()?;
        Some(format!("{runtime} {}", version.trim()))
    });
    checks.push(Check {
        name: "container engine".into(),
        ok: engine.is_some(),
        found: engine.unwrap_or_else(|| "no docker or podman engine answers".into()),
        fix: "Linux: install Docker Engine (https://docs.docker.com/engine/install/) and start it, or podman\n      \
              macOS: install Docker Desktop, Colima or OrbStack and start it"
            .into(),
    });

    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    checks.push(Check {
        name: "CPUs".into(),
        ok: cpus >= MIN_CPUS,
        found: cpus.to_string(),
        fix: format!("minikube gets {MIN_CPUS} CPUs: use a machine with at least {MIN_CPUS}"),
    });
    let memory = memory_gib();
    checks.push(Check {
        name: "memory".into(),
        ok: memory.is_some_and(|gib| gib >= MIN_MEMORY_GIB),
        found: memory.map_or("unknown".into(), |gib| format!("{gib} GiB")),
        fix: format!("minikube gets 8 GiB: the machine needs about {MIN_MEMORY_GIB} GiB in all"),
    });
    checks
}

/// Whether the version a tool printed (`found`) is at least `minimum`; a version that cannot be
/// read does not block.
fn meets(found: &str, minimum: &str) -> bool {
    match (versions::numeric(found), versions::numeric(minimum)) {
        (Some(found), Some(minimum)) => found >= minimum,
        _ => true,
    }
}

/// Total memory: /proc/meminfo on Linux, sysctl on macOS.
fn memory_gib() -> Option<u64> {
    if let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") {
        let kib: u64 =
            meminfo.lines().find(|line| line.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
        return Some(kib / 1024 / 1024);
    }
    let bytes: u64 = cmd!("sysctl", "-n", "hw.memsize").read()?.trim().parse().ok()?;
    Some(bytes / 1024 / 1024 / 1024)
}

pub fn print(checks: &[Check]) {
    let width = checks.iter().map(|check| check.name.len()).max().unwrap_or(0);
    for check in checks {
        let mark = if check.ok { "✓" } else { "✗" };
        println!("{mark} {:<width$}  {}", check.name, check.found);
        if !check.ok {
            println!("    fix: {}", check.fix);
        }
    }
}

/// The names of the tools that are missing, for messages.
pub fn missing(checks: &[Check]) -> Vec<String> {
    checks.iter().filter(|check| !check.ok).map(|check| check.name.clone()).collect()
}

/// What `up --provider bare` needs (Linux, as root): Debian's packages and the tools built by
/// `cargo xtask tools install`. Reported apart: minikube's checks decide `doctor`'s verdict.
pub fn bare_checks(path: &[PathBuf]) -> Vec<Check> {
    use crate::{cluster::bare, tools};
    let mut checks = vec![Check {
        name: "root".into(),
        ok: nix::unistd::geteuid().is_root(),
        found: format!("euid {}", nix::unistd::geteuid()),
        fix: "the bare provider mounts, makes network namespaces and iptables rules: run it as root".into(),
    }];
    for (program, package) in bare::HOST_PROGRAMS {
        let found = find(program, path);
        checks.push(Check {
            name: program.into(),
            ok: found.is_some(),
            found: found.map_or("not found".into(), |path| path.display().to_string()),
            fix: format!("apt-get install {package}"),
        });
    }
    for plugin in bare::CNI_PLUGINS {
        let found = std::path::Path::new(plugin).is_file();
        checks.push(Check {
            name: plugin.into(),
            ok: found,
            found: if found { "found".into() } else { "not found".into() },
            fix: "apt-get install containernetworking-plugins".into(),
        });
    }
    for tool in [tools::KUBERNETES, tools::ETCD, tools::COREDNS, tools::PAUSE] {
        let found = tools::installed(tool);
        checks.push(Check {
            name: tool.into(),
            ok: found.is_some(),
            found: found.map_or("not installed".into(), |path| path.display().to_string()),
            fix: format!("cargo xtask tools install {tool} (needs Go)"),
        });
    }
    checks
}

pub fn run() -> anyhow::Result<()> {
    let bare = bare_checks(&crate::path::search_path());
    println!("The bare provider (`up --provider bare`, Linux as root; optional):");
    print(&bare);
    println!();
    let checks = checks(&crate::path::search_path());
    print(&checks);
    let missing = missing(&checks);
    anyhow::ensure!(missing.is_empty(), "not ready for cluster mode: fix {} (see above)", missing.join(", "));
    println!("\nReady: `cargo xtask up` starts the cluster.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tools_are_named_with_a_fix() {
        let checks = checks(&crate::path::empty());
        let missing = missing(&checks);
        for tool in ["minikube", "kubectl", "helm", "container engine"] {
            assert!(missing.contains(&tool.to_string()), "{missing:?}");
        }
        let helm = checks.iter().find(|check| check.name == "helm").unwrap();
        assert!(helm.fix.starts_with("3.19.0 or newer"), "the minimum of config/versions.toml: {}", helm.fix);
        assert!(helm.fix.contains("brew install helm") && helm.fix.contains("get-helm-3"));
    }

    #[test]
    fn tools_older_than_the_minimum_are_not_ok() {
        assert!(meets("v3.19.0+g3d8990f", "3.19.0"));
        assert!(meets("v4.1.4", "3.19.0"));
        assert!(!meets("v3.18.6+gabc", "3.19.0"));
        assert!(!meets("minikube version: v1.36.0", "1.37.0"));
        assert!(meets("Client Version: v1.35.2", "1.31.0"));
        assert!(meets("something else", "1.31.0"), "unreadable: not blocking");
    }
}
