//! Cluster mode: `cargo xtask up` (and `images`, `down`, `status`). minikube, Linkerd with proxy
//! tracing, the OpenTelemetry Collector, Jaeger, an ingress, the app's images and chart. Every
//! step is a plan of real `minikube`, `helm` and `kubectl` commands, printed before it runs, and
//! skipped when it is already done, so running `up` twice changes nothing the second time.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    certs, cmd, doctor,
    expect::Mode,
    plan::{Cmd, Internal, Plan, Step},
    processes::{self, Service, Services},
    project, verify,
};

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

const REPOSITORIES: [(&str, &str); 4] = [
    ("linkerd-edge", "https://helm.linkerd.io/edge"),
    ("open-telemetry", "https://open-telemetry.github.io/opentelemetry-helm-charts"),
    ("jaegertracing", "https://jaegertracing.github.io/helm-charts"),
    ("traefik", "https://traefik.github.io/charts"),
];

/// The first chapter that runs in the cluster, and the last.
pub const FIRST_CLUSTER_CHAPTER: u32 = 5;
pub const LAST_CHAPTER: u32 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ingress {
    /// Traefik, maintained, exports OTLP itself (the default).
    Traefik,
    /// minikube's ingress addon (ingress-nginx), as in the original tutorial.
    Nginx,
}

#[derive(clap::Args, Clone, Debug)]
#[group(skip)]
#[command(next_help_heading = "Cluster mode (without --local)")]
pub struct Options {
    /// The minikube profile (a cluster of its own, apart from any other you have).
    #[arg(long, default_value = DEFAULT_PROFILE)]
    pub profile: String,

    /// Use this kube context instead of the profile's own. Without it, xtask talks only to the
    /// workshop's minikube profile, never to your current context.
    #[arg(long)]
    pub context: Option<String>,

    /// The chapter whose end state to reach (5: mesh, collector, Jaeger; 6: + the ingress;
    /// 7: + failure injection); set by `up --chapter`. Default: 6.
    #[arg(skip)]
    pub chapter: Option<u32>,

    /// The ingress controller.
    #[arg(long, value_enum, default_value = "traefik")]
    pub ingress: Ingress,

    /// Print the plan (every command) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl Options {
    pub fn kube_context(&self) -> &str {
        self.context.as_deref().unwrap_or(&self.profile)
    }

    fn chapter(&self) -> u32 {
        self.chapter.unwrap_or(6)
    }

    fn state_dir(&self) -> PathBuf {
        PathBuf::from(".state/cluster").join(&self.profile)
    }

    fn certificates(&self) -> certs::Files {
        certs::Files::in_dir(&self.state_dir().join("linkerd"))
    }
}

/// What is already there, as observed before planning.
#[derive(Debug, Default)]
pub struct State {
    pub minikube_running: bool,
    pub certificates: bool,
    /// Release name → the description of its last revision (`xtask:<hash of what was asked>`).
    pub releases: HashMap<String, String>,
    pub images: HashSet<String>,
    pub nginx_configured: bool,
    /// The tools that are missing (then the state is unknown and everything is planned).
    pub missing_tools: Vec<String>,
}

impl State {
    /// Looks (read-only) at the machine and the cluster.
    pub fn observe(options: &Options, path: &[PathBuf]) -> Self {
        let mut state = State { certificates: options.certificates().exist(), ..Default::default() };
        state.missing_tools = ["minikube", "kubectl", "helm"]
            .into_iter()
            .filter(|tool| doctor::find(tool, path).is_none())
            .map(str::to_owned)
            .collect();
        if !state.missing_tools.is_empty() {
            return state;
        }
        let profile = &options.profile;
        state.minikube_running = cmd!("minikube", "status", "-p", profile, "--format", "{{.Host}}")
            .read()
            .is_some_and(|host| host.trim() == "Running");
        if !state.minikube_running {
            return state;
        }
        let context = options.kube_context();
        for release in releases(options, "0", Path::new(".")) {
            let history =
                cmd!("helm", "history", release.name, "--kube-context", context, "--namespace", release.namespace)
                    .args(["--max", "1", "--output", "json"])
                    .read();
            if let Some(json) = history.and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok()) {
                let last = &json[json.as_array().map_or(0, |revisions| revisions.len().saturating_sub(1))];
                if last["status"] == "deployed" {
                    state
                        .releases
                        .insert(release.name.to_owned(), last["description"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
        if let Some(list) = cmd!("minikube", "image", "ls", "-p", profile).read() {
            state.images =
                list.lines().map(|line| line.trim().trim_start_matches("docker.io/library/").to_owned()).collect();
        }
        state.nginx_configured = cmd!(
            "kubectl",
            "--context",
            context,
            "--namespace",
            NGINX_NAMESPACE,
            "get",
            "configmap",
            "ingress-nginx-controller",
            "--output",
            "jsonpath={.data.enable-opentelemetry}"
        )
        .read()
        .is_some_and(|value| value.trim() == "true");
        state
    }
}

/// A Helm release the plan installs.
struct Release {
    title: &'static str,
    name: &'static str,
    namespace: &'static str,
    chart: String,
    args: Vec<String>,
    hint: &'static str,
}

/// The `--set` arguments of the app's chart for every state the plan installs (chapters 5–7,
/// with either ingress), labelled: what `lint` renders with the real Helm.
pub fn app_chart_variants(root: &Path) -> Vec<(String, Vec<String>)> {
    let mut variants = Vec::new();
    for chapter in FIRST_CLUSTER_CHAPTER..=LAST_CHAPTER {
        for ingress in [Ingress::Traefik, Ingress::Nginx] {
            if chapter < 6 && ingress == Ingress::Nginx {
                continue; // no ingress before chapter 6
            }
            let options = Options {
                profile: DEFAULT_PROFILE.into(),
                context: None,
                chapter: Some(chapter),
                ingress,
                dry_run: true,
            };
            let app = releases(&options, "lint", root).into_iter().find(|release| release.name == "todo");
            let mut args = app.expect("the plan installs the app").args;
            if let Some(at) = args.iter().position(|arg| arg == "--description") {
                args.truncate(at); // the fingerprint, not a value
            }
            variants.push((format!("chapter {chapter}, {ingress:?}").to_lowercase(), args));
        }
    }
    variants
}

/// Every release of the stack for `options`, in install order. `image_tag` and the folder they
/// read their files from go into what decides whether a release is up to date.
fn releases(options: &Options, image_tag: &str, root: &Path) -> Vec<Release> {
    let certificates = options.certificates();
    let chapter = options.chapter();
    let mut releases = vec![
        Release {
            title: "Linkerd's CRDs (with the Gateway API CRDs it needs)",
            name: "linkerd-crds",
            namespace: LINKERD_NAMESPACE,
            chart: "linkerd-edge/linkerd-crds".into(),
            args: vec!["--set".into(), "installGatewayAPI=true".into()],
            hint: "see `kubectl get crds`; Linkerd needs Kubernetes 1.31 or newer",
        },
        Release {
            title: "Linkerd's control plane, with proxy tracing to the collector",
            name: "linkerd-control-plane",
            namespace: LINKERD_NAMESPACE,
            chart: "linkerd-edge/linkerd-control-plane".into(),
            args: vec![
                "--values".into(),
                "config/linkerd-control-plane.yaml".into(),
                "--set-file".into(),
                format!("identityTrustAnchorsPEM={}", certificates.trust_anchor.display()),
                "--set-file".into(),
                format!("identity.issuer.tls.crtPEM={}", certificates.issuer_certificate.display()),
                "--set-file".into(),
                format!("identity.issuer.tls.keyPEM={}", certificates.issuer_key.display()),
            ],
            hint: "see `kubectl --namespace linkerd get pods`; the certificates are in the state folder",
        },
        Release {
            title: "the OpenTelemetry Collector, meshed",
            name: COLLECTOR_RELEASE,
            namespace: TRACING_NAMESPACE,
            chart: "open-telemetry/opentelemetry-collector".into(),
            args: vec!["--values".into(), "config/opentelemetry-collector.yaml".into()],
            hint: "see `kubectl --namespace tracing logs deployment/otel-collector`",
        },
        Release {
            title: "Jaeger v2, in memory",
            name: JAEGER_RELEASE,
            namespace: TRACING_NAMESPACE,
            chart: "jaegertracing/jaeger".into(),
            args: vec!["--values".into(), "config/jaeger.yaml".into()],
            hint: "see `kubectl --namespace tracing get pods`",
        },
    ];
    if chapter >= 6 && options.ingress == Ingress::Traefik {
        releases.push(Release {
            title: "Traefik, the ingress, tracing over OTLP",
            name: "traefik",
            namespace: TRAEFIK_NAMESPACE,
            chart: "traefik/traefik".into(),
            args: vec!["--values".into(), "config/traefik.yaml".into()],
            hint: "see `kubectl --namespace traefik logs deployment/traefik`",
        });
    }
    let (ingress_enabled, class, controller_namespace) = match (chapter >= 6, options.ingress) {
        (false, _) => (false, "traefik", TRAEFIK_NAMESPACE),
        (true, Ingress::Traefik) => (true, "traefik", TRAEFIK_NAMESPACE),
        (true, Ingress::Nginx) => (true, "nginx", NGINX_NAMESPACE),
    };
    releases.push(Release {
        title: "the todo app",
        name: "todo",
        namespace: APP_NAMESPACE,
        chart: "helm/todo-app".into(),
        args: [
            format!("apiserver.image.tag={image_tag}"),
            format!("todomanager.image.tag={image_tag}"),
            format!("ingress.enabled={ingress_enabled}"),
            format!("ingress.className={class}"),
            format!("ingress.controllerNamespace={controller_namespace}"),
            format!("faults.enabled={}", chapter >= 7),
        ]
        .into_iter()
        .flat_map(|set| ["--set".to_owned(), set])
        .collect(),
        hint: "see `kubectl --namespace todo get pods` and `kubectl --namespace todo describe pods`",
    });
    // What was asked, with the content of every file it reads: a change to any of them
    // makes the release out of date.
    for release in &mut releases {
        let mut fingerprint = format!("{} {} {}", release.chart, release.namespace, release.args.join(" "));
        for file in
            release.args.iter().filter_map(|arg| arg.split_once('=').map_or(Some(arg.as_str()), |(_, v)| Some(v)))
        {
            if let Ok(text) = std::fs::read_to_string(root.join(file)) {
                fingerprint.push_str(&text);
            }
        }
        if release.chart.starts_with("helm/") {
            fingerprint.push_str(&files_fingerprint(&root.join(&release.chart)));
        }
        release.args.extend([
            "--description".to_owned(),
            format!("xtask:{:016x}", crate::project::fnv1a(fingerprint.as_bytes())),
        ]);
    }
    releases
}

/// FNV-1a: a small, stable hash (the same on every machine and Rust version).
/// The names and contents of the files under `dir`, in order.
fn files_fingerprint(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|file| format!("{}\n{}", file.display(), std::fs::read_to_string(file).unwrap_or_default()))
        .collect()
}

/// The images' tag: the crate version and a hash of everything that goes into them, so that a
/// change rebuilds and an unchanged tree does not.
pub fn image_tag(root: &Path) -> String {
    let mut fingerprint = String::new();
    for file in ["Cargo.toml", "Cargo.lock", "Dockerfile"] {
        fingerprint.push_str(&std::fs::read_to_string(root.join(file)).unwrap_or_default());
    }
    fingerprint.push_str(&files_fingerprint(&root.join("services")));
    format!("{}-{:08x}", env!("CARGO_PKG_VERSION"), crate::project::fnv1a(fingerprint.as_bytes()) as u32)
}

/// The plan of `cargo xtask up` for `options`, given what is already there.
pub fn plan(options: &Options, state: &State, image_tag: &str, root: &Path) -> Plan {
    let profile = &options.profile;
    let context = options.kube_context();
    let releases = releases(options, image_tag, root);
    let up_to_date = |release: &Release| {
        let asked = release.args.last().cloned().unwrap_or_default();
        state.releases.get(release.name).is_some_and(|deployed| *deployed == asked)
    };
    let mut steps = vec![
        Step::new(
            format!("Start minikube (profile {profile}: {CPUS} CPUs, {MEMORY} of memory)"),
            "run `cargo xtask doctor`; `minikube logs -p PROFILE` tells why it did not start",
        )
        .command(cmd!("minikube", "start", "--profile", profile, "--cpus", CPUS, "--memory", MEMORY))
        .done_if(state.minikube_running.then(|| "minikube is running".into())),
        Step {
            internal: Some(Internal::GenerateCertificates),
            ..Step::new(
                format!("Linkerd's trust anchor and issuer, in {}", options.state_dir().join("linkerd").display()),
                "the state folder must be writable",
            )
            .done_if(state.certificates.then(|| "kept from an earlier run".into()))
        },
    ];
    let mut repositories =
        Step::new("Helm chart repositories", "check your network; `helm repo list` shows what is there");
    for (name, url) in REPOSITORIES {
        repositories = repositories.command(cmd!("helm", "repo", "add", name, url, "--force-update"));
    }
    let everything_current = releases.iter().all(up_to_date);
    steps.push(
        repositories
            .command(cmd!("helm", "repo", "update"))
            .done_if(everything_current.then(|| "every release is up to date".into())),
    );

    let app = releases.iter().position(|release| release.name == "todo").expect("the app is always planned");
    for release in &releases[..app] {
        steps.push(helm_install(release, context, up_to_date(release)));
    }
    if options.chapter() >= 6 && options.ingress == Ingress::Nginx {
        steps.push(
            Step::new(
                "minikube's ingress addon (ingress-nginx), tracing to the collector",
                "see `minikube addons list`",
            )
            .command(cmd!("minikube", "addons", "enable", "ingress", "--profile", profile))
            .command(cmd!("kubectl", "--context", context, "apply", "--filename", "config/ingress-nginx.yaml"))
            .done_if(state.nginx_configured.then(|| "the addon is configured".into())),
        );
    }
    let mut images = Step::new(
        format!("Build the images into minikube (tag {image_tag})"),
        "the Dockerfile builds with cargo; `minikube image build` needs the container engine",
    );
    for service in ["apiserver", "todomanager"] {
        images = images.command(cmd!(
            "minikube",
            "image",
            "build",
            "--profile",
            profile,
            "--tag",
            format!("{service}:{image_tag}"),
            format!("--build-opt=target={service}"),
            format!("--build-opt=build-arg=VERSION={}", env!("CARGO_PKG_VERSION")),
            "."
        ));
    }
    let built =
        ["apiserver", "todomanager"].iter().all(|service| state.images.contains(&format!("{service}:{image_tag}")));
    steps.push(images.done_if(built.then(|| "these images are in minikube".into())));
    let app = &releases[app];
    steps.push(helm_install(app, context, up_to_date(app)));
    let mut rollout = Step::new("Wait until the app is ready", "see `kubectl --namespace todo get pods`");
    for workload in ["statefulset/mariadb", "deployment/todomanager", "deployment/apiserver"] {
        rollout = rollout.command(cmd!(
            "kubectl",
            "--context",
            context,
            "--namespace",
            APP_NAMESPACE,
            "rollout",
            "status",
            workload,
            "--timeout=5m"
        ));
    }
    steps.push(rollout);
    Plan { steps }
}

fn helm_install(release: &Release, context: &str, up_to_date: bool) -> Step {
    Step::new(format!("Install {}", release.title), release.hint)
        .command(
            cmd!("helm", "upgrade", "--install", release.name, &release.chart)
                .args(["--kube-context", context, "--namespace", release.namespace, "--create-namespace"])
                .args(&release.args)
                .args(["--wait", "--timeout", "10m"]),
        )
        .done_if(up_to_date.then(|| format!("{} is deployed as asked", release.name)))
}

/// The long-running commands that follow the plan: port-forwards to Jaeger and to the API.
pub fn port_forwards(options: &Options) -> Vec<(&'static str, Cmd)> {
    let context = options.kube_context();
    let jaeger = cmd!(
        "kubectl",
        "--context",
        context,
        "--namespace",
        TRACING_NAMESPACE,
        "port-forward",
        format!("service/{JAEGER_RELEASE}"),
        format!("{JAEGER_PORT}:16686")
    );
    let api = match (options.chapter() >= 6, options.ingress) {
        (true, Ingress::Traefik) => cmd!(
            "kubectl",
            "--context",
            context,
            "--namespace",
            TRAEFIK_NAMESPACE,
            "port-forward",
            "service/traefik",
            format!("{INGRESS_PORT}:80")
        ),
        (true, Ingress::Nginx) => cmd!(
            "kubectl",
            "--context",
            context,
            "--namespace",
            NGINX_NAMESPACE,
            "port-forward",
            "service/ingress-nginx-controller",
            format!("{INGRESS_PORT}:80")
        ),
        (false, _) => cmd!(
            "kubectl",
            "--context",
            context,
            "--namespace",
            APP_NAMESPACE,
            "port-forward",
            "service/apiserver",
            format!("{INGRESS_PORT}:8080")
        ),
    };
    vec![("jaeger port-forward", jaeger), ("api port-forward", api)]
}

/// The kube context to use: `--context` if given (and known), else the profile's own.
/// The current context of your kubeconfig is never used on its own: it may be a real cluster.
pub fn check_context(options: &Options, kubeconfig: &str) -> anyhow::Result<()> {
    let config = yaml_rust2::YamlLoader::load_from_str(kubeconfig).ok().and_then(|mut docs| docs.pop());
    let known: Vec<String> = config
        .as_ref()
        .and_then(|config| config["contexts"].as_vec().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|context| context["name"].as_str().map(str::to_owned))
        .collect();
    let current = config.as_ref().and_then(|config| config["current-context"].as_str().map(str::to_owned));
    let wanted = options.kube_context();
    if known.iter().any(|name| name == wanted) {
        return Ok(());
    }
    match (&options.context, current) {
        (Some(context), _) => anyhow::bail!("no kube context named {context} in your kubeconfig"),
        (None, Some(current)) => anyhow::bail!(
            "the workshop's kube context {wanted} does not exist (is minikube profile {wanted} running?). \
             Your current context, {current}, is not used unless you pass --context {current}"
        ),
        (None, None) => {
            anyhow::bail!("the workshop's kube context {wanted} does not exist: start it with `cargo xtask up`")
        }
    }
}

fn kubeconfig() -> String {
    let path = std::env::var_os("KUBECONFIG")
        .and_then(|paths| std::env::split_paths(&paths).next())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".kube/config")));
    path.and_then(|path| std::fs::read_to_string(path).ok()).unwrap_or_default()
}

/// `cargo xtask up`.
pub fn up(options: &Options) -> anyhow::Result<()> {
    std::env::set_current_dir(project::root())?;
    let path = doctor::search_path();
    let state = State::observe(options, &path);
    let root = PathBuf::from(".");
    let plan = plan(options, &state, &image_tag(&root), &root);
    if options.dry_run {
        if !state.missing_tools.is_empty() {
            println!(
                "Note: {} not installed here, so this is the plan for a fresh machine (`cargo xtask doctor` says how to install them).\n",
                state.missing_tools.join(", ")
            );
        }
        print!("{}", plan.render());
        println!("Then, until Ctrl-C:");
        for (_, command) in port_forwards(options) {
            println!("   $ {}", command.shell());
        }
        println!("   and `cargo xtask verify --mode cluster` against them.");
        return Ok(());
    }
    let checks = doctor::checks(&path);
    let missing = doctor::missing(&checks);
    if !missing.is_empty() {
        doctor::print(&checks);
        anyhow::bail!(
            "cannot start cluster mode: fix {} first (see above), or try `cargo xtask up --local`",
            missing.join(", ")
        );
    }
    processes::stop_on_signal()?;
    plan.execute(&mut |work| match work {
        Internal::GenerateCertificates => certs::ensure(&options.certificates()).map(drop),
    })?;
    check_context(options, &kubeconfig())?;
    serve_and_verify(options)
}

/// Port-forwards, verifies the cluster chapters reached, then waits for Ctrl-C.
fn serve_and_verify(options: &Options) -> anyhow::Result<()> {
    let logs = options.state_dir().join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut services = Services::default();
    for (name, command) in port_forwards(options) {
        services.add(Service::start_command(name, &command, logs.join(format!("{}.log", name.replace(' ', "-"))))?);
    }
    std::thread::sleep(Duration::from_secs(2));
    services.check_running()?;
    let host = (options.chapter() >= 6).then(|| APP_HOST.to_owned());
    println!("\nThe workshop's cluster runs (profile {}).\n", options.profile);
    println!("  Jaeger UI    http://127.0.0.1:{JAEGER_PORT}/");
    match &host {
        Some(host) => println!("  API          curl -H \"Host: {host}\" http://127.0.0.1:{INGRESS_PORT}/v1/todo"),
        None => println!("  API          curl http://127.0.0.1:{INGRESS_PORT}/v1/todo"),
    }
    let verification = verify::Options {
        chapter: None,
        chapters: None,
        mode: Mode::Cluster,
        api: format!("http://127.0.0.1:{INGRESS_PORT}"),
        host,
        tracez: Vec::new(),
        up_to: options.chapter,
        jaeger: format!("http://127.0.0.1:{JAEGER_PORT}"),
        timeout: Duration::from_secs(60),
    };
    let Some(verified) = verify::while_watching(&services, verification)? else {
        return Ok(()); // Ctrl-C during the verification
    };
    verify::then_wait(services, verified, "The port-forwards run")
}

/// `cargo xtask images`: rebuild the images and roll the app out with them.
pub fn images(options: &Options) -> anyhow::Result<()> {
    std::env::set_current_dir(project::root())?;
    check_context(options, &kubeconfig())?;
    let state = State::observe(options, &doctor::search_path());
    let root = PathBuf::from(".");
    let mut plan = plan(options, &state, &image_tag(&root), &root);
    plan.steps.retain(|step| {
        step.title.starts_with("Build the images")
            || step.title == "Install the todo app"
            || step.title.starts_with("Wait")
    });
    if options.dry_run {
        print!("{}", plan.render());
        return Ok(());
    }
    plan.execute(&mut |_| Ok(()))
}

#[derive(clap::Args)]
pub struct DownOptions {
    #[command(flatten)]
    pub cluster: Options,
    /// Delete the whole minikube profile instead of uninstalling the releases.
    #[arg(long)]
    pub delete_cluster: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// `cargo xtask down`.
pub fn down(options: &DownOptions) -> anyhow::Result<()> {
    std::env::set_current_dir(project::root())?;
    let cluster = &options.cluster;
    let context = cluster.kube_context();
    let mut step = Step::new("Remove the workshop", "see `helm list --all-namespaces`");
    if options.delete_cluster {
        step = step.command(cmd!("minikube", "delete", "--profile", &cluster.profile));
    } else {
        for release in releases(cluster, "0", Path::new(".")).iter().rev() {
            step = step.command(cmd!(
                "helm",
                "uninstall",
                release.name,
                "--kube-context",
                context,
                "--namespace",
                release.namespace,
                "--ignore-not-found"
            ));
        }
    }
    let plan = Plan { steps: vec![step] };
    print!("{}", plan.render());
    if cluster.dry_run {
        return Ok(());
    }
    if !options.delete_cluster {
        check_context(cluster, &kubeconfig())?;
    }
    if !options.yes {
        print!("Go ahead? [y/N] ");
        std::io::Write::flush(&mut std::io::stdout())?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        anyhow::ensure!(answer.trim().eq_ignore_ascii_case("y"), "nothing removed");
    }
    plan.execute(&mut |_| Ok(()))
}

/// `cargo xtask status`.
pub fn status(options: &Options) -> anyhow::Result<()> {
    let context = options.kube_context();
    let commands = [
        cmd!("minikube", "status", "--profile", &options.profile),
        cmd!("helm", "list", "--kube-context", context, "--all-namespaces"),
        cmd!("kubectl", "--context", context, "get", "pods", "--all-namespaces"),
    ];
    for command in commands {
        println!("$ {}", command.shell());
        match command.read() {
            Some(output) => println!("{output}\n"),
            None => println!(
                "  (no answer: is {} installed and the cluster up? `cargo xtask doctor` tells)\n",
                command.program
            ),
        }
    }
    let forwards = cmd!("pgrep", "-af", "kubectl.*port-forward").read().unwrap_or_default();
    println!("port-forwards:\n{}", if forwards.trim().is_empty() { "  none" } else { forwards.trim() });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(chapter: Option<u32>, ingress: Ingress) -> Options {
        Options { profile: DEFAULT_PROFILE.into(), context: None, chapter, ingress, dry_run: true }
    }

    /// The plan as text, with the release fingerprints masked (they follow every config edit).
    fn rendered(options: &Options, state: &State) -> String {
        let root = project::root();
        let text = plan(options, state, "0.1.0-test", &root).render();
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

    #[test]
    fn plan_per_chapter_and_ingress() {
        golden("plan-chapter-5", &rendered(&options(Some(5), Ingress::Traefik), &State::default()));
        golden("plan-chapter-7", &rendered(&options(Some(7), Ingress::Traefik), &State::default()));
        golden("plan-nginx", &rendered(&options(None, Ingress::Nginx), &State::default()));
    }

    /// Everything there as asked: the second `up` runs nothing but the readiness wait.
    #[test]
    fn plan_for_a_second_run_skips_everything() {
        let options = options(None, Ingress::Traefik);
        let root = project::root();
        let fresh = plan(&options, &State::default(), "0.1.0-test", &root);
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
        let second = plan(&options, &state, "0.1.0-test", &root);
        let to_run: Vec<&str> =
            second.steps.iter().filter(|step| step.done.is_none()).map(|step| step.title.as_str()).collect();
        assert_eq!(to_run, ["Wait until the app is ready"]);
        golden("plan-second-run", &rendered(&options, &state));
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
        assert_eq!(nginx["metadata"]["namespace"].as_str(), Some(NGINX_NAMESPACE));
        assert_eq!(chart["ingress"]["host"].as_str(), Some(APP_HOST));
        assert_eq!(chart["ingress"]["controllerNamespace"].as_str(), Some(TRAEFIK_NAMESPACE));
        let collector_url = format!("http://{COLLECTOR_RELEASE}.{TRACING_NAMESPACE}.svc.cluster.local:4317");
        assert_eq!(chart["tracing"]["endpoint"].as_str(), Some(collector_url.as_str()));
        // Every file the plan passes to Helm exists.
        for step in plan(&options(Some(7), Ingress::Nginx), &State::default(), "t", &root).steps {
            for command in step.commands {
                for window in command.args.windows(2) {
                    if window[0] == "--values" || window[0] == "--filename" {
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
