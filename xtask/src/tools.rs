//! `cargo xtask tools`: the real programs a workshop's cluster runs — Jaeger v2, an OpenTelemetry
//! Collector, Helm 3 and Helm 4, and for the bare provider Kubernetes itself, etcd, CoreDNS and
//! the Pods' sandbox program — built from their official Go modules into `.state/tools/bin/`,
//! plus the Kubernetes schema validator from PyPI. Local mode's `--stack real`, `lint`, the bare
//! cluster and the tests use them from there.
//!
//! Every version is pinned once, under `tools/`: each Go program in a module of its own
//! (`tools/<tool>/go.mod`, a `tool` line), so that it builds with exactly the dependencies its
//! release was built with (one module for all would let Minimal Version Selection raise Jaeger's
//! OpenTelemetry and Prometheus libraries to Helm's, making a Jaeger nobody released); the
//! collector's components in `tools/otelcol/builder-config.yaml`, at the builder's release; the
//! validator in `tools/requirements.txt`. A build is skipped when none of its inputs changed.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::project;

#[derive(clap::Args)]
pub struct Options {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Build the tools into .state/tools/bin/ (skips those already built from the same inputs).
    Install {
        /// Only these tools (by name, as `list` shows them).
        names: Vec<String>,
    },
    /// The tools, their pinned versions, and whether they are installed.
    List {
        /// Print the table of docs/real-tools.md instead.
        #[arg(long)]
        markdown: bool,
    },
}

/// How a tool is made.
#[derive(Clone, Copy)]
enum Recipe {
    /// `go build` of the programs that `tools/<dir>/go.mod` names in its `tool` lines (several:
    /// one release, each program under its own name), linked with `ldflags`.
    GoBuild { dir: &'static str, packages: &'static [&'static str], ldflags: Ldflags },
    /// The OpenTelemetry Collector builder of `tools/otelcol/go.mod`, with its `builder-config.yaml`.
    CollectorBuilder,
    /// A Python program installed with pip into its own virtual environment.
    Pip { package: &'static str },
    /// A folder of a Go module that `tools/<dir>/go.mod` requires (a Helm chart whose release
    /// tags the module proxy serves), linked from the module cache.
    ModuleFolder { dir: &'static str, module: &'static str, folder: &'static str },
}

/// The `-ldflags` of a build, from the pinned version.
#[derive(Clone, Copy)]
enum Ldflags {
    /// Go's defaults.
    None,
    /// Strip the symbol table and debug information.
    Strip,
    /// Stripped, with the release's version written into this string variable (`-X`), as the
    /// upstream release build does.
    StampVersion(&'static str),
    /// Kubernetes stamps its version at link time; unstamped, `/version` answers
    /// `v0.0.0-master+$Format:%H$` and charts with a `kubeVersion` refuse the cluster.
    Kubernetes,
}

impl Ldflags {
    fn render(self, version: &str) -> anyhow::Result<String> {
        Ok(match self {
            Ldflags::None => String::new(),
            Ldflags::Strip => "-s -w".into(),
            Ldflags::StampVersion(variable) => format!("-s -w -X {variable}={version}"),
            Ldflags::Kubernetes => {
                let mut parts = version.trim_start_matches('v').split('.');
                let (major, minor) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                anyhow::ensure!(!minor.is_empty(), "unexpected Kubernetes version {version}");
                let mut flags = String::from("-s -w");
                for package in ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"] {
                    flags.push_str(&format!(
                        " -X {package}.gitVersion={version} -X {package}.gitMajor={major} \
                         -X {package}.gitMinor={minor} -X {package}.gitTreeState=clean"
                    ));
                }
                flags
            }
        })
    }
}

/// One of the real tools.
pub struct Tool {
    /// The file name in `.state/tools/bin/`.
    pub name: &'static str,
    pub what: &'static str,
    /// Whose pinned version it is: a module of its `go.mod`, a package of `tools/requirements.txt`.
    pin: &'static str,
    /// The files under `tools/` that pin what it is built from (the first holds `pin`'s
    /// version); a build is current while they are unchanged.
    pin_files: &'static [&'static str],
    recipe: Recipe,
    /// What to do without Go or Python: the upstream release downloads and images.
    elsewhere: &'static str,
}

pub const JAEGER: &str = "jaeger";
pub const COLLECTOR: &str = "otelcol-workshop";
pub const HELM3: &str = "helm3";
pub const HELM4: &str = "helm4";
pub const KUBERNETES_VALIDATE: &str = "kubernetes-validate";
/// Not a program: the upstream Traefik chart, a folder, for the tests to render.
pub const TRAEFIK_CHART: &str = "traefik-chart";
pub const KUBERNETES: &str = "kubernetes";
pub const ETCD: &str = "etcd";
pub const COREDNS: &str = "coredns";
pub const PAUSE: &str = "pause";
pub const TRAEFIK: &str = "traefik";
/// The programs of the Kubernetes release, as `.state/tools/bin/` names them.
pub const KUBE_APISERVER: &str = "kube-apiserver";
pub const KUBE_CONTROLLER_MANAGER: &str = "kube-controller-manager";
pub const KUBE_SCHEDULER: &str = "kube-scheduler";
pub const KUBELET: &str = "kubelet";
pub const KUBE_PROXY: &str = "kube-proxy";
pub const KUBECTL: &str = "kubectl";

pub const TOOLS: [Tool; 11] = [
    Tool {
        name: JAEGER,
        what: "Jaeger v2, all-in-one (OTLP in, in-memory storage, query API v3)",
        pin: "github.com/jaegertracing/jaeger",
        pin_files: &["jaeger/go.mod", "jaeger/go.sum"],
        recipe: Recipe::GoBuild {
            dir: "jaeger",
            packages: &["github.com/jaegertracing/jaeger/cmd/jaeger"],
            ldflags: Ldflags::None,
        },
        elsewhere: "https://github.com/jaegertracing/jaeger/releases (the jaeger binary of the same v2 release), \
                    or the image jaegertracing/jaeger",
    },
    Tool {
        name: COLLECTOR,
        what: "OpenTelemetry Collector, built by the official builder from tools/otelcol/builder-config.yaml",
        pin: "go.opentelemetry.io/collector/cmd/builder",
        pin_files: &["otelcol/go.mod", "otelcol/go.sum", "otelcol/builder-config.yaml"],
        recipe: Recipe::CollectorBuilder,
        elsewhere: "https://github.com/open-telemetry/opentelemetry-collector-releases/releases (otelcol-contrib \
                    of the same release holds every component we use), or the image \
                    otel/opentelemetry-collector-contrib",
    },
    Tool {
        name: HELM3,
        what: "Helm 3",
        pin: "helm.sh/helm/v3",
        pin_files: &["helm3/go.mod", "helm3/go.sum"],
        recipe: Recipe::GoBuild { dir: "helm3", packages: &["helm.sh/helm/v3/cmd/helm"], ldflags: Ldflags::Strip },
        elsewhere: "https://github.com/helm/helm/releases (helm-v3.*-<os>-<arch>.tar.gz)",
    },
    Tool {
        name: HELM4,
        what: "Helm 4",
        pin: "helm.sh/helm/v4",
        pin_files: &["helm4/go.mod", "helm4/go.sum"],
        recipe: Recipe::GoBuild { dir: "helm4", packages: &["helm.sh/helm/v4/cmd/helm"], ldflags: Ldflags::Strip },
        elsewhere: "https://github.com/helm/helm/releases (helm-v4.*-<os>-<arch>.tar.gz)",
    },
    Tool {
        name: KUBERNETES_VALIDATE,
        what: "Kubernetes schema validation, offline (PyPI)",
        pin: "kubernetes-validate",
        pin_files: &["requirements.txt"],
        recipe: Recipe::Pip { package: "kubernetes-validate" },
        elsewhere: "pip install kubernetes-validate (the version in tools/requirements.txt)",
    },
    Tool {
        name: TRAEFIK_CHART,
        what: "the Traefik Helm chart (a folder, not a program), rendered by the tests with config/traefik.yaml",
        pin: "github.com/traefik/traefik-helm-chart",
        pin_files: &["traefik-chart/go.mod", "traefik-chart/go.sum"],
        recipe: Recipe::ModuleFolder {
            dir: "traefik-chart",
            module: "github.com/traefik/traefik-helm-chart",
            folder: "traefik",
        },
        elsewhere: "helm pull traefik/traefik --version <the chart version of config/versions.toml> --untar, \
                    then move the traefik/ folder here",
    },
    Tool {
        name: KUBERNETES,
        what: "Kubernetes, one release: the control plane, the kubelet, kube-proxy and kubectl (the bare provider)",
        pin: "k8s.io/kubernetes",
        pin_files: &["kubernetes/go.mod", "kubernetes/go.sum"],
        recipe: Recipe::GoBuild {
            dir: "kubernetes",
            packages: &[
                "k8s.io/kubernetes/cmd/kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "k8s.io/kubernetes/cmd/kube-scheduler",
                "k8s.io/kubernetes/cmd/kubelet",
                "k8s.io/kubernetes/cmd/kube-proxy",
                "k8s.io/kubernetes/cmd/kubectl",
            ],
            ldflags: Ldflags::Kubernetes,
        },
        elsewhere: "https://kubernetes.io/releases/download/ (the server and node binaries of the same release)",
    },
    Tool {
        name: ETCD,
        what: "etcd, the control plane's store (the bare provider)",
        pin: "go.etcd.io/etcd/server/v3",
        pin_files: &["etcd/go.mod", "etcd/go.sum"],
        recipe: Recipe::GoBuild { dir: "etcd", packages: &["go.etcd.io/etcd/server/v3"], ldflags: Ldflags::Strip },
        elsewhere: "https://github.com/etcd-io/etcd/releases (etcd-v3.*-linux-amd64.tar.gz, the etcd binary)",
    },
    Tool {
        name: COREDNS,
        what: "CoreDNS, the bare cluster's DNS (in an image xtask writes)",
        pin: "github.com/coredns/coredns",
        pin_files: &["coredns/go.mod", "coredns/go.sum"],
        recipe: Recipe::GoBuild { dir: "coredns", packages: &["github.com/coredns/coredns"], ldflags: Ldflags::None },
        elsewhere: "https://github.com/coredns/coredns/releases (coredns_*_linux_amd64.tgz)",
    },
    Tool {
        name: PAUSE,
        what: "the Pods' sandbox program, our own (tools/pause/main.go), in an image xtask writes",
        pin: "workshop/tools/pause",
        pin_files: &["pause/go.mod", "pause/main.go"],
        recipe: Recipe::GoBuild { dir: "pause", packages: &["."], ldflags: Ldflags::Strip },
        elsewhere: "CGO_ENABLED=0 go build -o .state/tools/bin/pause ./tools/pause (Go is needed; it is our own program)",
    },
    Tool {
        name: TRAEFIK,
        what: "Traefik, the ingress of cluster mode (in an image xtask writes for the bare provider)",
        pin: "github.com/traefik/traefik/v3",
        pin_files: &["traefik/go.mod", "traefik/go.sum", "traefik/ext/go.mod", "traefik/ext/ext.go"],
        recipe: Recipe::GoBuild {
            dir: "traefik",
            packages: &["github.com/traefik/traefik/v3/cmd/traefik"],
            // As upstream's release build (its Makefile's binary target).
            ldflags: Ldflags::StampVersion("github.com/traefik/traefik/v3/pkg/version.Version"),
        },
        elsewhere: "https://github.com/traefik/traefik/releases (traefik_v3.*_linux_amd64.tar.gz), or the image traefik",
    },
];

/// Where the tools are installed.
pub fn bin_dir() -> PathBuf {
    project::root().join(".state/tools/bin")
}

impl Tool {
    /// The programs it puts into `.state/tools/bin/` when it builds several (`go build -o DIR`
    /// names each after its package's last element); empty when it makes one file, `name`.
    fn programs(&self) -> Vec<&'static str> {
        match self.recipe {
            Recipe::GoBuild { packages, .. } if packages.len() > 1 => {
                packages.iter().map(|package| package.rsplit('/').next().unwrap_or(package)).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The installed tool (or chart folder), if it is: for a tool of several programs, all of them.
pub fn installed(name: &str) -> Option<PathBuf> {
    let programs = TOOLS.iter().find(|tool| tool.name == name).map(Tool::programs).unwrap_or_default();
    if programs.iter().any(|program| !bin_dir().join(program).is_file()) {
        return None;
    }
    Some(bin_dir().join(name))
        .filter(|path| !programs.is_empty() || path.is_file() || path.join("Chart.yaml").is_file())
}

/// The tool of that name in [`TOOLS`].
pub fn tool(name: &str) -> anyhow::Result<&'static Tool> {
    TOOLS.iter().find(|tool| tool.name == name).with_context(|| format!("no tool named {name}"))
}

/// The tool, or an error that says how to get it.
pub fn require(name: &str) -> anyhow::Result<PathBuf> {
    installed(name).with_context(|| {
        format!("{name} is not installed: run `cargo xtask tools install` (needs Go; `cargo xtask tools list` shows the versions)")
    })
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    match &options.command {
        Command::List { markdown: true } => print!("{}", markdown_table()?),
        Command::List { markdown: false } => list()?,
        Command::Install { names } => install(names)?,
    }
    Ok(())
}

fn list() -> anyhow::Result<()> {
    let pins = Pins::read()?;
    for tool in &TOOLS {
        let stamp = Stamp::of(tool, &pins)?;
        let state = match installed(tool.name) {
            Some(path) if stamp.is_current() => format!("installed: {}", path.display()),
            Some(path) if !stamp.path.exists() => format!("put there by hand: {}", path.display()),
            Some(path) => format!("out of date: {} (run `cargo xtask tools install`)", path.display()),
            None => "not installed".to_owned(),
        };
        println!("{:<20} {:<52} {state}", tool.name, format!("{} {}", tool.pin, pins.version(tool)?));
    }
    Ok(())
}

/// The table of the real tools in docs/real-tools.md and their versions (a test keeps both in step).
pub fn markdown_table() -> anyhow::Result<String> {
    let pins = Pins::read()?;
    let mut table = String::from("| tool | what | pinned module and version |\n| --- | --- | --- |\n");
    for tool in &TOOLS {
        let mut version = pins.version(tool)?.to_owned();
        if tool.name == JAEGER {
            version.push_str(&format!(" (Jaeger {})", jaeger_release(&version)?));
        }
        table.push_str(&format!("| `{}` | {} | `{}` {version} |\n", tool.name, tool.what, tool.pin));
    }
    Ok(table)
}

/// Jaeger v2's releases are tagged twice, and the Go module carries the v1 tag: v1.76.0 is
/// Jaeger v2.13.0 (its CHANGELOG heads each release "v1.76.0 / v2.13.0").
pub fn jaeger_release(module_version: &str) -> anyhow::Result<String> {
    let minor: u32 = module_version
        .strip_prefix("v1.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|minor| minor.parse().ok())
        .with_context(|| format!("unexpected Jaeger module version {module_version}"))?;
    Ok(format!("v2.{}.0", minor - 63))
}

fn install(names: &[String]) -> anyhow::Result<()> {
    for name in names {
        anyhow::ensure!(
            TOOLS.iter().any(|tool| tool.name == name),
            "no tool named {name}; `cargo xtask tools list` shows them"
        );
    }
    let chosen: Vec<&Tool> =
        TOOLS.iter().filter(|tool| names.is_empty() || names.contains(&tool.name.to_owned())).collect();
    let pins = Pins::read()?;
    std::fs::create_dir_all(bin_dir()).with_context(|| format!("cannot create {}", bin_dir().display()))?;
    let mut missing_runtimes = Vec::new();
    for (n, tool) in chosen.iter().enumerate() {
        let progress = format!("[{}/{}] {} {}", n + 1, chosen.len(), tool.name, pins.version(tool)?);
        let stamp = Stamp::of(tool, &pins)?;
        if installed(tool.name).is_some() && stamp.is_current() {
            println!("✓ {progress}: up to date");
            continue;
        }
        let runtime = match tool.recipe {
            Recipe::Pip { .. } => "python3",
            _ => "go",
        };
        if crate::path::find(runtime, &crate::path::search_path()).is_none() {
            println!("✗ {progress}: needs `{runtime}`, which is not installed here");
            missing_runtimes.push(*tool);
            continue;
        }
        println!("… {progress}: building (minutes the first time; Go caches the rest)");
        let started = std::time::Instant::now();
        build(tool, &pins).with_context(|| format!("building {} failed (see the output above)", tool.name))?;
        stamp.write()?;
        println!("✓ {progress}: built in {:.0?} → {}", started.elapsed(), bin_dir().join(tool.name).display());
    }
    anyhow::ensure!(missing_runtimes.is_empty(), without_runtimes(&missing_runtimes));
    Ok(())
}

/// What to do when Go (or Python) is missing: where the official release binaries are.
fn without_runtimes(tools: &[&Tool]) -> String {
    let mut advice = String::from(
        "some tools could not be built: they are built from their official modules with Go \
         (https://go.dev/doc/install, 1.26 or newer) and Python 3 (for kubernetes-validate).\n\
         Instead, put the official release binaries, at the versions `cargo xtask tools list` shows, \
         into .state/tools/bin/ under these names:",
    );
    for tool in tools {
        advice.push_str(&format!("\n  {:<20} {}", tool.name, tool.elsewhere));
    }
    advice
}

fn build(tool: &Tool, pins: &Pins) -> anyhow::Result<()> {
    let root = project::root();
    let output = bin_dir().join(tool.name);
    match tool.recipe {
        Recipe::GoBuild { dir, packages, ldflags } => {
            let ldflags = ldflags.render(pins.version(tool)?)?;
            // Several packages with -o DIR put each program there under its own name.
            let target =
                if packages.len() > 1 { format!("{}/", bin_dir().display()) } else { output.display().to_string() };
            let linking = if ldflags.is_empty() { vec![] } else { vec!["-ldflags".to_owned(), ldflags] };
            let go = crate::cmd!("go", "build", "-trimpath").args(linking).args(["-o", &target]).args(packages.iter());
            println!("$ (cd tools/{dir} && {})", go.shell());
            duct::cmd(&go.program, &go.args).dir(root.join("tools").join(dir)).run()?;
            let programs = tool.programs();
            if !programs.is_empty() {
                // The tool's own name marks the whole release as built.
                std::fs::write(&output, format!("{}\n", programs.join("\n")))
                    .with_context(|| format!("cannot write {}", output.display()))?;
            }
        }
        Recipe::CollectorBuilder => {
            // The builder writes a Go module for the distribution and builds it (output_path in
            // the config, relative to tools/otelcol), which must exist.
            let build = root.join(".state/tools/build/otelcol");
            std::fs::create_dir_all(&build).with_context(|| format!("cannot create {}", build.display()))?;
            println!("$ (cd tools/otelcol && go tool builder --config builder-config.yaml)");
            duct::cmd!("go", "tool", "builder", "--config", "builder-config.yaml")
                .dir(root.join("tools/otelcol"))
                .run()?;
            let built = build.join(tool.name);
            std::fs::copy(&built, &output)
                .with_context(|| format!("copying {} to {}", built.display(), output.display()))?;
        }
        Recipe::ModuleFolder { dir, module, folder } => {
            println!("$ (cd tools/{dir} && go mod download -json {module})");
            let json = duct::cmd!("go", "mod", "download", "-json", module)
                .dir(root.join("tools").join(dir))
                .stdout_capture()
                .read()?;
            let downloaded: serde_json::Value = serde_json::from_str(&json).context("go mod download -json")?;
            let source = downloaded["Dir"].as_str().context("go mod download named no folder")?;
            let _ = std::fs::remove_file(&output);
            std::os::unix::fs::symlink(Path::new(source).join(folder), &output)
                .with_context(|| format!("linking {}", output.display()))?;
        }
        Recipe::Pip { package } => {
            let venv = root.join(".state/tools/venv");
            println!("$ python3 -m venv {}", venv.display());
            duct::cmd!("python3", "-m", "venv", &venv).run()?;
            println!("$ {}/bin/pip install --quiet -r tools/requirements.txt", venv.display());
            duct::cmd!(venv.join("bin/pip"), "install", "--quiet", "-r", "tools/requirements.txt").dir(&root).run()?;
            let _ = std::fs::remove_file(&output);
            std::os::unix::fs::symlink(venv.join("bin").join(package), &output)
                .with_context(|| format!("linking {}", output.display()))?;
        }
    }
    Ok(())
}

/// The pinned versions, as the files under `tools/` say.
pub struct Pins {
    files: std::collections::BTreeMap<&'static str, String>,
}

impl Pins {
    pub fn read() -> anyhow::Result<Self> {
        let mut files = std::collections::BTreeMap::new();
        for file in TOOLS.iter().flat_map(|tool| tool.pin_files) {
            let path = project::root().join("tools").join(file);
            files.insert(
                *file,
                std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?,
            );
        }
        Ok(Self { files })
    }

    pub fn version(&self, tool: &Tool) -> anyhow::Result<&str> {
        let first = &self.files[tool.pin_files[0]];
        match tool.recipe {
            // Our own program: its version is ours too (the tag of its image).
            Recipe::GoBuild { dir: "pause", .. } => Ok("v1"),
            Recipe::Pip { .. } => first
                .lines()
                .find_map(|line| line.trim().strip_prefix(tool.pin)?.strip_prefix("=="))
                .with_context(|| format!("tools/requirements.txt pins no version of {}", tool.pin)),
            _ => go_mod_version(first, tool.pin),
        }
    }

    /// Everything a tool's build depends on, as one string.
    fn inputs(&self, tool: &Tool) -> String {
        tool.pin_files.iter().map(|file| self.files[file].as_str()).collect()
    }
}

/// The version `go.mod` requires of `module`.
pub fn go_mod_version<'a>(go_mod: &'a str, module: &str) -> anyhow::Result<&'a str> {
    go_mod
        .lines()
        .map(|line| line.trim().trim_start_matches("require").trim())
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(module)).then(|| words.next()).flatten()
        })
        .with_context(|| format!("its go.mod requires no version of {module}"))
}

/// What a build was made from: when it matches the inputs of now, the build is current.
struct Stamp {
    path: PathBuf,
    inputs: String,
}

impl Stamp {
    fn of(tool: &Tool, pins: &Pins) -> anyhow::Result<Self> {
        let inputs = format!("{} {}\n{}", tool.name, pins.version(tool)?, pins.inputs(tool));
        Ok(Self { path: bin_dir().join(format!(".{}.stamp", tool.name)), inputs })
    }

    fn fingerprint(&self) -> String {
        format!("{:016x}\n", project::fnv1a(self.inputs.as_bytes()))
    }

    fn is_current(&self) -> bool {
        read_or_empty(&self.path) == self.fingerprint()
    }

    fn write(&self) -> anyhow::Result<()> {
        std::fs::write(&self.path, self.fingerprint()).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_versions_from_go_mod() {
        let go_mod = "module x\n\ngo 1.26\n\ntool helm.sh/helm/v4/cmd/helm\n\nrequire (\n\thelm.sh/helm/v3 v3.22.0\n\
                      \thelm.sh/helm/v4 v4.3.1\n)\n\nrequire github.com/jaegertracing/jaeger v1.76.0\n";
        assert_eq!(go_mod_version(go_mod, "helm.sh/helm/v4").unwrap(), "v4.3.1");
        assert_eq!(go_mod_version(go_mod, "helm.sh/helm/v3").unwrap(), "v3.22.0");
        assert_eq!(go_mod_version(go_mod, "github.com/jaegertracing/jaeger").unwrap(), "v1.76.0");
        assert!(go_mod_version(go_mod, "helm.sh/helm").is_err());
    }

    #[test]
    fn the_docs_show_the_pinned_versions() {
        let page = std::fs::read_to_string(project::root().join("docs/real-tools.md")).unwrap();
        let table = markdown_table().unwrap();
        assert!(page.contains(&table), "docs/real-tools.md must show `cargo xtask tools list --markdown`:\n{table}");
    }

    #[test]
    fn every_collector_module_is_at_the_builders_release() {
        let pins = Pins::read().unwrap();
        let collector = TOOLS.iter().find(|tool| tool.name == COLLECTOR).unwrap();
        let release = pins.version(collector).unwrap();
        let config = &pins.files["otelcol/builder-config.yaml"];
        let modules: Vec<&str> = config.lines().filter_map(|line| line.trim().strip_prefix("- gomod: ")).collect();
        assert!(modules.len() >= 6, "{modules:?}");
        for module in modules {
            let version = module.split_whitespace().nth(1).unwrap();
            // Stable modules (providers) carry v1 tags: v0.N.x goes with v1.(N-94).x.
            let expected = match version.starts_with("v1.") {
                false => release.to_owned(),
                true => {
                    let minor: u32 = release.split('.').nth(1).unwrap().parse().unwrap();
                    format!("v1.{}.0", minor - 94)
                }
            };
            assert_eq!(version, expected, "{module}: keep every collector module at {release}");
        }
    }

    #[test]
    fn without_go_it_says_where_the_release_binaries_are() {
        let advice = without_runtimes(&TOOLS.iter().collect::<Vec<_>>());
        assert!(advice.contains("https://go.dev/doc/install"), "{advice}");
        for tool in &TOOLS {
            assert!(advice.contains(&format!("\n  {:<20} {}", tool.name, tool.elsewhere)), "{advice}");
        }
        assert!(advice.contains("jaegertracing/jaeger/releases") && advice.contains("helm/helm/releases"), "{advice}");
    }

    /// The bare provider runs the Kubernetes programs by these names: `go build -o DIR` must
    /// give them.
    #[test]
    fn the_kubernetes_release_builds_the_programs_the_bare_provider_runs() {
        assert_eq!(
            tool(KUBERNETES).unwrap().programs(),
            [KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KUBELET, KUBE_PROXY, KUBECTL]
        );
        assert!(tool(ETCD).unwrap().programs().is_empty(), "one program, named after the tool");
    }

    #[test]
    fn names_jaegers_v2_release() {
        assert_eq!(jaeger_release("v1.76.0").unwrap(), "v2.13.0");
        assert_eq!(jaeger_release("v1.75.0").unwrap(), "v2.12.0");
        assert!(jaeger_release("v2.13.0").is_err());
    }
}
