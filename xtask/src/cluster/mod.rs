//! Cluster mode: `cargo xtask up` (and `images`, `down`, `status`). minikube, Linkerd with proxy
//! tracing, the OpenTelemetry Collector, Jaeger, an ingress, the app's images and chart. Every
//! step is a plan of real `minikube`, `helm` and `kubectl` commands, printed before it runs, and
//! skipped when it is already done, so running `up` twice changes nothing the second time.

//!
//! Where things are: [`stack`] says what is installed, in which order, with which values (and
//! [`versions`] at which versions, from `config/versions.toml`); [`state`] looks at what is
//! already there; [`plan`] turns both into the steps of `up`; [`commands`] carries them out.

pub mod bare;
pub mod certs;
pub mod charts;
mod commands;
pub mod doctor;
pub mod images;
mod plan;
pub mod rollout;
pub mod stack;
mod state;
pub mod versions;

use std::path::PathBuf;

pub use commands::{DownOptions, down, images, status, up};
pub use stack::app_chart_variants;

pub use crate::expect::Mesh;
use crate::{cmd, steps::Cmd};

pub const DEFAULT_PROFILE: &str = "tracing-workshop";
/// What the minikube profile gets: enough for Linkerd, the collector, Jaeger, Traefik and the app.
pub const CPUS: usize = 4;
pub const MEMORY: &str = "8g";

pub const LINKERD_NAMESPACE: &str = "linkerd";
pub const TRACING_NAMESPACE: &str = "tracing";
pub const TRAEFIK_NAMESPACE: &str = "traefik";
pub const NGINX_NAMESPACE: &str = "ingress-nginx";
pub const APP_NAMESPACE: &str = "todo";
pub const COLLECTOR_RELEASE: &str = "otel-collector";
pub const JAEGER_RELEASE: &str = "jaeger";
/// The host the ingress answers for: `curl -H "Host: todo.local" …`.
pub const APP_HOST: &str = "todo.local";
/// Local ports of the port-forwards.
pub const JAEGER_PORT: u16 = 16686;
pub const INGRESS_PORT: u16 = 8000;

pub const REPOSITORIES: [(&str, &str); 4] = [
    ("linkerd-edge", "https://helm.linkerd.io/edge"),
    ("open-telemetry", "https://open-telemetry.github.io/opentelemetry-helm-charts"),
    ("jaegertracing", "https://jaegertracing.github.io/helm-charts"),
    ("traefik", "https://traefik.github.io/charts"),
];

// The chapters' numbers are the workshop's map, shared with the local mode and the chapters'
// expectations: they live in support/project.rs.
pub use crate::project::{EDGE_CHAPTER, FAULTS_CHAPTER, FIRST_CLUSTER_CHAPTER, LAST_CHAPTER};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ingress {
    /// Traefik, maintained, exports OTLP itself (the default).
    Traefik,
    /// minikube's ingress addon (ingress-nginx), as in the original tutorial.
    Nginx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// A minikube profile of its own (the default: what a learner's laptop runs).
    Minikube,
    /// A one-node Kubernetes as processes on this Linux machine, offline, as root: built by
    /// `cargo xtask tools install`, images written by xtask (no Docker).
    Bare,
}

#[derive(clap::Args, Clone, Debug)]
#[group(skip)]
#[command(next_help_heading = "Cluster mode (without --local)")]
pub struct Options {
    /// Where the cluster runs.
    #[arg(long, value_enum, default_value = "minikube")]
    pub provider: Provider,

    /// Stop once the cluster is Ready, before the workshop's releases.
    #[arg(long)]
    pub cluster_only: bool,

    /// The minikube profile (a cluster of its own, apart from any other you have).
    #[arg(long, default_value = DEFAULT_PROFILE)]
    pub profile: String,

    /// Use this kube context instead of the profile's own. Without it, xtask talks only to the
    /// workshop's minikube profile, never to your current context.
    #[arg(long)]
    pub context: Option<String>,

    /// The chapter whose end state to reach (9: mesh, collector, Jaeger; 10: + the ingress;
    /// 11: + failure injection); set by `up --chapter`. Default: 10.
    #[arg(skip)]
    pub chapter: Option<u32>,

    /// The ingress controller.
    #[arg(long, value_enum, default_value = "traefik")]
    pub ingress: Ingress,

    /// Linkerd's service mesh.
    #[arg(long, value_enum, default_value = "on")]
    pub mesh: Mesh,

    /// Install the upstream charts from this folder of packaged charts (NAME-VERSION.tgz, as
    /// `helm pull` and `helm package` name them, or unpacked folders NAME) instead of the chart
    /// repositories: an air-gapped mirror. Each must be the version config/versions.toml pins.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,

    /// Print the plan (every command) and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Verify, stop the port-forwards and exit with the result (`up --check`).
    #[arg(skip)]
    pub check: bool,
}

impl Options {
    /// The options of a dry run on the workshop's own profile, for the `chapter` and `ingress`
    /// given: what `lint` and the tests plan and render.
    pub fn planned(chapter: Option<u32>, ingress: Ingress) -> Self {
        Self {
            provider: Provider::Minikube,
            cluster_only: false,
            profile: DEFAULT_PROFILE.into(),
            context: None,
            chapter,
            ingress,
            mesh: Mesh::On,
            charts: None,
            dry_run: true,
            check: false,
        }
    }

    pub fn kube_context(&self) -> &str {
        match self.provider {
            Provider::Bare => bare::CONTEXT,
            Provider::Minikube => self.context.as_deref().unwrap_or(&self.profile),
        }
    }

    /// `kubectl` at the workshop's cluster: minikube's context, or the bare cluster's own
    /// kubeconfig (with the kubectl of `cargo xtask tools install`).
    pub fn kubectl(&self) -> Cmd {
        match self.provider {
            Provider::Minikube => cmd!("kubectl", "--context", self.kube_context()),
            Provider::Bare => bare::kubectl(&bare::Layout::new()),
        }
    }

    /// `helm SUBCOMMAND…` at the workshop's cluster, as [`Options::kubectl`] (Helm 3 of
    /// `cargo xtask tools install` on the bare provider).
    pub fn helm<I: IntoIterator<Item = S>, S: ToString>(&self, subcommand: I) -> Cmd {
        match self.provider {
            Provider::Minikube => cmd!("helm").args(subcommand).args(["--kube-context", self.kube_context()]),
            Provider::Bare => cmd!(crate::tools::bin_dir().join(crate::tools::HELM3).display())
                .args(subcommand)
                .args(["--kubeconfig".to_owned(), bare::Layout::new().kubeconfig().display().to_string()]),
        }
    }

    pub fn chapter(&self) -> u32 {
        self.chapter.unwrap_or(EDGE_CHAPTER)
    }

    pub fn meshed(&self) -> bool {
        self.mesh == Mesh::On
    }

    /// Whether the ingress is installed and starts the traces (from [`EDGE_CHAPTER`] on): what
    /// the app's port-forward goes to, and which hops the network policies must let through.
    pub fn has_edge(&self) -> bool {
        self.chapter() >= EDGE_CHAPTER
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(".state/cluster").join(&self.profile)
    }

    pub fn certificates(&self) -> certs::Files {
        certs::Files::in_dir(&self.state_dir().join("linkerd"))
    }
}

#[cfg(test)]
mod tests {
    use super::{commands::check_context, plan::plan, state::State, *};
    use crate::expect::Mode;
    use crate::project;

    fn options(chapter: Option<u32>, ingress: Ingress) -> Options {
        Options::planned(chapter, ingress)
    }

    /// What `up --dry-run` prints (the plan and the port-forwards), with the release
    /// fingerprints masked (they follow every config edit).
    fn rendered(options: &Options, state: &State) -> String {
        let root = project::root();
        let text = commands::dry_run(options, &plan(options, state, "0.1.0-test", &root).unwrap());
        regex::Regex::new("xtask:[0-9a-f]{16}").unwrap().replace_all(&text, "xtask:<fingerprint>").into_owned()
    }

    /// Compares with `xtask/tests/golden/NAME.txt`; `UPDATE_GOLDEN=1` rewrites the file.
    fn golden(name: &str, actual: &str) {
        let file = project::root().join("xtask/tests/golden").join(format!("{name}.txt"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, actual).unwrap();
        }
        let expected = std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(actual, expected, "the plan changed: review it, then UPDATE_GOLDEN=1 cargo test -p xtask");
    }

    #[test]
    fn plan_for_a_fresh_machine() {
        golden("plan-fresh", &rendered(&options(None, Ingress::Traefik), &State::default()));
    }

    /// In every chapter, each port-forward `up` holds goes to a namespace the plan installs
    /// into, and the app's to the edge exactly from EDGE_CHAPTER on (chapter 9 once
    /// port-forwarded to a Traefik it did not install).
    #[test]
    fn every_port_forward_reaches_what_the_chapter_installs() {
        let root = project::root();
        for chapter in FIRST_CLUSTER_CHAPTER..=LAST_CHAPTER {
            for ingress in [Ingress::Traefik, Ingress::Nginx] {
                let options = options(Some(chapter), ingress);
                let plan = plan(&options, &State::default(), "t", &root).unwrap();
                let commands: Vec<_> = plan.steps.iter().flat_map(|step| &step.commands).collect();
                let installs_into = |namespace: &str| {
                    commands.iter().any(|command| {
                        let helm = command.args.first().is_some_and(|first| first == "upgrade");
                        let addon = command.args.starts_with(&["addons".into(), "enable".into(), "ingress".into()]);
                        (helm && command.args.windows(2).any(|pair| pair == ["--namespace", namespace]))
                            || (addon && namespace == NGINX_NAMESPACE)
                    })
                };
                for (name, forward) in plan::port_forwards(&options) {
                    let at = forward.args.iter().position(|arg| arg == "--namespace").unwrap();
                    let namespace = &forward.args[at + 1];
                    assert!(
                        installs_into(namespace),
                        "chapter {chapter}, {ingress:?}: {name} into {namespace}, not installed"
                    );
                    if name == "api port-forward" {
                        let to_apiserver = forward.args.contains(&"service/apiserver".to_owned());
                        assert_eq!(to_apiserver, chapter < EDGE_CHAPTER, "chapter {chapter}: {}", forward.shell());
                    }
                }
            }
        }
    }

    /// With `--charts DIR` the upstream releases install from the folder, and no repository is
    /// added.
    #[test]
    fn charts_from_a_folder() {
        let Some(shared) = testkit::real::shared("charts", "the plan with --charts ../shared/charts") else { return };
        let options = Options { charts: Some(shared.clone()), ..options(Some(9), Ingress::Traefik) };
        let plan = plan(&options, &State::default(), "t", &project::root()).unwrap();
        let repositories = plan.steps.iter().find(|step| step.title == "Helm chart repositories").unwrap();
        assert!(repositories.done.is_some(), "no `helm repo add` with --charts");
        let charts: Vec<&String> = plan
            .steps
            .iter()
            .flat_map(|step| &step.commands)
            .filter(|command| command.args.starts_with(&["upgrade".to_owned(), "--install".to_owned()]))
            .map(|command| &command.args[3])
            .collect();
        assert_eq!(charts.len(), 5, "{charts:?}");
        for chart in &charts[..4] {
            assert!(chart.starts_with(shared.to_str().unwrap()) && chart.ends_with(".tgz"), "{chart}");
        }
        assert_eq!(charts[4], stack::APP_CHART);
    }

    #[test]
    fn plan_per_chapter_and_ingress() {
        golden("plan-chapter-9", &rendered(&options(Some(9), Ingress::Traefik), &State::default()));
        golden("plan-chapter-11", &rendered(&options(Some(11), Ingress::Traefik), &State::default()));
        golden("plan-nginx", &rendered(&options(None, Ingress::Nginx), &State::default()));
        let without_mesh = Options { mesh: Mesh::Off, ..options(None, Ingress::Traefik) };
        golden("plan-mesh-off", &rendered(&without_mesh, &State::default()));
    }

    /// Everything there as asked: the second `up` runs nothing but the readiness wait.
    #[test]
    fn plan_for_a_second_run_skips_everything() {
        let options = options(None, Ingress::Traefik);
        let root = project::root();
        let fresh = plan(&options, &State::default(), "0.1.0-test", &root).unwrap();
        let mut state = State { minikube_running: true, certificates: true, ..Default::default() };
        for step in &fresh.steps {
            for command in &step.commands {
                if command.args.first().map(String::as_str) == Some("upgrade") {
                    let description = command.args.iter().skip_while(|arg| *arg != "--description").nth(1).unwrap();
                    state.releases.insert(command.args[2].clone(), description.clone());
                }
            }
        }
        state.images.extend(["apiserver:0.1.0-test".into(), "todomanager:0.1.0-test".into()]);
        let second = plan(&options, &state, "0.1.0-test", &root).unwrap();
        let to_run: Vec<&str> =
            second.steps.iter().filter(|step| step.done.is_none()).map(|step| step.title.as_str()).collect();
        assert_eq!(to_run, ["Wait until linkerd-control-plane is available", "Wait until the app is ready"]);
        golden("plan-second-run", &rendered(&options, &state));
    }

    /// Every upstream chart is installed at the version of config/versions.toml, and its image
    /// tags with it: nothing floats.
    #[test]
    fn every_upstream_release_is_pinned() {
        let root = project::root();
        let versions = versions::Versions::read(&root).unwrap();
        for ingress in [Ingress::Traefik, Ingress::Nginx] {
            let plan = plan(&options(Some(11), ingress), &State::default(), "t", &root).unwrap();
            let installs: Vec<_> = plan
                .steps
                .iter()
                .flat_map(|step| &step.commands)
                .filter(|command| command.args.starts_with(&["upgrade".to_owned(), "--install".to_owned()]))
                .collect();
            assert!(installs.len() >= 5);
            for install in installs {
                let (release, chart) = (&install.args[2], &install.args[3]);
                let version = install.args.iter().skip_while(|arg| *arg != "--version").nth(1);
                if chart.starts_with("helm/") {
                    assert_eq!(version, None, "our own chart is in the repository");
                    continue;
                }
                let pinned = versions.chart(release).unwrap();
                assert_eq!(chart, &pinned.chart);
                assert_eq!(version, Some(&pinned.version), "{}", install.shell());
                for image in versions.images.values().filter(|image| &image.chart == release) {
                    let set = format!("{}={}", image.set, image.tag);
                    assert!(install.args.contains(&set), "{} lacks {set}", install.shell());
                }
            }
        }
    }

    /// The plan installs into the namespaces and under the names that config/ and helm/ assume.
    #[test]
    fn the_plan_agrees_with_config_and_the_chart() {
        let root = project::root();
        let load = |file: &str| {
            yaml_rust2::YamlLoader::load_from_str(&std::fs::read_to_string(root.join(file)).unwrap()).unwrap().remove(0)
        };
        let linkerd = load("config/linkerd-control-plane.yaml");
        let collector = load("config/opentelemetry-collector.yaml");
        let nginx = load("config/ingress-nginx.yaml");
        let chart = load("helm/todo-app/values.yaml");
        assert_eq!(
            linkerd["proxy"]["tracing"]["collector"]["meshIdentity"]["namespace"].as_str(),
            Some(TRACING_NAMESPACE)
        );
        assert_eq!(collector["fullnameOverride"].as_str(), Some(COLLECTOR_RELEASE));
        let jaeger_endpoint = format!("{JAEGER_RELEASE}.{TRACING_NAMESPACE}.svc.cluster.local:4317");
        assert_eq!(
            collector["config"]["exporters"]["otlp_grpc/jaeger"]["endpoint"].as_str(),
            Some(jaeger_endpoint.as_str())
        );
        assert!(nginx["metadata"].is_badvalue(), "a merge patch of the addon's ConfigMap: data only");
        assert_eq!(nginx["data"]["otlp-collector-port"].as_str(), Some("4317"));
        assert_eq!(chart["ingress"]["host"].as_str(), Some(APP_HOST));
        assert_eq!(chart["ingress"]["controllerNamespace"].as_str(), Some(TRAEFIK_NAMESPACE));
        let collector_url = format!("http://{COLLECTOR_RELEASE}.{TRACING_NAMESPACE}.svc.cluster.local:4317");
        assert_eq!(chart["tracing"]["endpoint"].as_str(), Some(collector_url.as_str()));
        // Every file the plan passes to Helm exists.
        for step in plan(&options(Some(11), Ingress::Nginx), &State::default(), "t", &root).unwrap().steps {
            for command in step.commands {
                for window in command.args.windows(2) {
                    if window[0] == "--values" || window[0] == "--filename" || window[0] == "--patch-file" {
                        assert!(root.join(&window[1]).exists(), "{}", window[1]);
                    }
                }
            }
        }
    }

    /// The chapters `up` verifies in the cluster load, and are the ones `--chapter` reaches.
    #[test]
    fn the_cluster_chapters_load() {
        let chapters = crate::expect::load_all(&project::root().join("chapters")).unwrap();
        let cluster: Vec<u32> = chapters
            .iter()
            .filter(|chapter| chapter.modes.contains(&Mode::Cluster))
            .map(|chapter| chapter.number)
            .collect();
        assert_eq!(cluster, (FIRST_CLUSTER_CHAPTER..=LAST_CHAPTER).collect::<Vec<_>>());
        for chapter in chapters.iter().filter(|chapter| cluster.contains(&chapter.number)) {
            assert!(
                chapter.request.iter().any(|request| !request.span.is_empty()),
                "chapter {} checks spans",
                chapter.number
            );
        }
    }

    /// The bare provider's plans, as `--dry-run` prints them, on a fresh machine and when all is
    /// up; paths shown from the checkout's root, the host's curl version masked.
    #[test]
    fn plans_of_the_bare_provider() {
        use crate::steps::Plan;
        let layout = bare::Layout::new();
        let mask = |text: String| {
            let text = text.replace(&format!("{}/", project::root().display()), "");
            regex::Regex::new(r"curl([:-])[0-9][0-9.]*[0-9]")
                .unwrap()
                .replace_all(&text, "curl${1}<debian's version>")
                .into_owned()
        };
        let fresh = bare::Observed::default();
        golden("plan-bare-up", &mask(Plan { steps: bare::up_steps(&layout, &fresh).unwrap() }.render()));
        let everything = bare::Observed {
            host_recorded: true,
            node_address: true,
            bridged_traffic_through_iptables: true,
            certificates: true,
            config_current: true,
            running: bare::Component::ALL.into_iter().zip(100..).collect(),
            images: images::CATALOG.iter().map(|image| image.reference().unwrap()).collect(),
            node_ready: true,
            coredns_ready: true,
            volumes: true,
        };
        let second = Plan { steps: bare::up_steps(&layout, &everything).unwrap() };
        let to_run: Vec<&str> =
            second.steps.iter().filter(|step| step.done.is_none()).map(|step| step.title.as_str()).collect();
        assert_eq!(to_run, ["Check this machine for the bare provider"], "a second `up` changes nothing");
        golden("plan-bare-down", &mask(Plan { steps: bare::down_steps(false, &layout, &everything) }.render()));
    }

    /// The CoreDNS manifest names the image xtask writes from the pinned release.
    #[test]
    fn coredns_runs_the_pinned_release() {
        let manifest = std::fs::read_to_string(project::root().join(bare::COREDNS_MANIFEST)).unwrap();
        let reference = images::find(images::COREDNS).unwrap().reference().unwrap();
        assert!(manifest.contains(&format!("image: {reference}\n")), "{} must run {reference}", bare::COREDNS_MANIFEST);
        assert!(manifest.contains(&format!("clusterIP: {}\n", bare::DNS_IP)));
        assert!(!manifest.contains("\n        forward"), "CoreDNS asks nothing outside the cluster");
    }

    /// `images` rolls the app out as it was installed: the chapter, mesh and ingress come back
    /// from the values `up` set (as `helm get values --output json` gives them).
    #[test]
    fn images_keep_the_shape_the_app_was_installed_with() {
        let root = project::root();
        for options in
            stack::variants().into_iter().chain([Options { mesh: Mesh::Off, ..options(Some(11), Ingress::Traefik) }])
        {
            let args = stack::values_of(&options, stack::APP_RELEASE, &root).unwrap();
            let mut values = serde_json::json!({});
            for set in args.windows(2).filter(|pair| pair[0] == "--set").map(|pair| &pair[1]) {
                let (path, value) = set.split_once('=').unwrap();
                let pointer = format!("/{}", path.replace('.', "/"));
                let value = value.parse::<bool>().map_or_else(|_| serde_json::json!(value), serde_json::Value::Bool);
                let mut at = &mut values;
                for key in pointer.trim_start_matches('/').split('/') {
                    at = at.as_object_mut().unwrap().entry(key).or_insert(serde_json::json!({}));
                }
                *at = value;
            }
            let planned = Options::planned(None, Ingress::Traefik);
            let shape = commands::shape_of(&planned, &values);
            assert_eq!(
                (shape.chapter(), shape.mesh, shape.ingress),
                (options.chapter(), options.mesh, options.ingress),
                "{values}"
            );
        }
    }

    #[test]
    fn a_foreign_context_is_refused() {
        let kubeconfig = "apiVersion: v1\ncurrent-context: production\ncontexts:\n  - name: production\n  - name: tracing-workshop\n";
        assert!(check_context(&options(None, Ingress::Traefik), kubeconfig).is_ok());
        let without_workshop = "current-context: production\ncontexts:\n  - name: production\n";
        let error = check_context(&options(None, Ingress::Traefik), without_workshop).unwrap_err().to_string();
        assert!(error.contains("is not used unless you pass --context production"), "{error}");
        let explicit = Options { context: Some("production".into()), ..options(None, Ingress::Traefik) };
        assert!(check_context(&explicit, without_workshop).is_ok(), "an explicit --context is allowed");
    }
}
