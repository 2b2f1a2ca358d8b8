//! The cluster commands: `up`, `images`, `down`, `status`, and the guard that keeps them on
//! the workshop's own kube context.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    APP_HOST, INGRESS_PORT, Ingress, JAEGER_PORT, Options, Provider, bare, doctor,
    plan::{plan, port_forwards},
    stack,
    state::State,
};
use crate::{
    cmd,
    expect::Mode,
    processes::{self, Service, Services},
    project,
    steps::{Kind, Plan, Step},
    verify,
};

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
    anyhow::ensure!(
        options.meshed() || options.has_edge(),
        "chapter {} is about Linkerd's proxies, which --mesh off leaves out: without the mesh, start at chapter {}",
        options.chapter(),
        super::EDGE_CHAPTER
    );
    anyhow::ensure!(
        options.meshed() || options.ingress == Ingress::Traefik,
        "--mesh off is described for Traefik, the default ingress (chapters/10-the-edge/expect.toml): leave out \
         --ingress nginx"
    );
    if options.provider == Provider::Bare {
        return up_bare(options);
    }
    let path = crate::path::search_path();
    let state = State::observe(options, &path);
    let root = PathBuf::from(".");
    let mut plan = plan(options, &state, &stack::image_tag(&root), &root)?;
    if options.cluster_only {
        plan.steps.truncate(1); // minikube started, nothing installed
    }
    if options.dry_run {
        if !state.missing_tools.is_empty() {
            println!(
                "Note: {} not installed here, so this is the plan for a fresh machine (`cargo xtask doctor` says how to install them).\n",
                state.missing_tools.join(", ")
            );
        }
        print!("{}", dry_run(options, &plan));
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
    plan.execute()?;
    if options.cluster_only {
        println!("\nminikube profile {} runs; nothing of the workshop is installed (--cluster-only).", options.profile);
        return Ok(());
    }
    check_context(options, &kubeconfig())?;
    serve_and_verify(options)
}

/// What `up --dry-run` prints: the plan, then the port-forwards `up` holds (unless
/// `--cluster-only`).
pub fn dry_run(options: &Options, plan: &Plan) -> String {
    let mut text = plan.render();
    if !options.cluster_only {
        text.push_str("Then, until Ctrl-C:\n");
        for (_, command) in port_forwards(options) {
            text.push_str(&format!("   $ {}\n", command.shell()));
        }
        text.push_str("   and `cargo xtask verify --mode cluster` against them.\n");
    }
    text
}

/// `cargo xtask up --provider bare`: the cluster as processes on this machine, then, unless
/// `--cluster-only`, the workshop on it from the images xtask writes (minikube's own steps, its
/// start and its image build, are the bare cluster's steps here).
fn up_bare(options: &Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        options.cluster_only || options.ingress == Ingress::Traefik,
        "the bare provider has no minikube addon: its ingress is Traefik (leave out --ingress nginx)"
    );
    let layout = bare::Layout::new();
    let observed = bare::Observed::look(&layout)?;
    let mut steps = bare::up_steps(&layout, &observed)?;
    if !options.cluster_only {
        steps.extend(bare::workshop_image_steps(&layout, &observed)?);
        steps.push(bare::volume_step(&observed));
        let state = State::observe(options, &crate::path::search_path());
        let root = PathBuf::from(".");
        let workshop = plan(options, &state, &stack::image_tag(&root), &root)?;
        steps.extend(
            workshop.steps.into_iter().filter(|step| !matches!(step.kind, Kind::StartCluster | Kind::BuildImages)),
        );
    }
    let plan = Plan { steps };
    if options.dry_run {
        print!("{}", dry_run(options, &plan));
        return Ok(());
    }
    anyhow::ensure!(
        nix::unistd::geteuid().is_root(),
        "the bare provider runs Kubernetes itself and needs root: sudo cargo xtask up --provider bare"
    );
    processes::stop_on_signal()?;
    let started = std::time::Instant::now();
    plan.execute()?;
    let what =
        if options.cluster_only { "The bare cluster is Ready" } else { "The workshop is up on the bare cluster" };
    println!(
        "\n{what} ({:.0?}). Its kubeconfig: {}\n  kubectl --kubeconfig {} get pods --all-namespaces\n\
         Stop it and undo every change to this machine: cargo xtask down --provider bare",
        started.elapsed(),
        layout.kubeconfig().display(),
        layout.kubeconfig().display()
    );
    if options.cluster_only {
        return Ok(());
    }
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
    let host = options.has_edge().then(|| APP_HOST.to_owned());
    match options.provider {
        Provider::Minikube => println!("\nThe workshop's cluster runs (profile {}).\n", options.profile),
        Provider::Bare => println!("\nThe workshop runs on the bare cluster.\n"),
    }
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
        logs: None,
        mesh: options.mesh,
    };
    let Some(verified) = verify::while_watching(|| services.check_running(), verification)? else {
        return Ok(()); // Ctrl-C during the verification
    };
    if options.check {
        services.stop_all();
        anyhow::ensure!(verified?, "verification failed: see the ✗ above");
        println!("\nThe port-forwards are stopped; the cluster and the workshop stay (cargo xtask down removes them).");
        return Ok(());
    }
    verify::then_wait(services, verified, "The port-forwards run")
}

/// `cargo xtask images`: rebuild the images and roll the app out with them, keeping the chapter,
/// mesh and ingress it was installed with (so that the next `up` of that chapter finds it up to
/// date).
pub fn images(options: &Options) -> anyhow::Result<()> {
    std::env::set_current_dir(project::root())?;
    let bare = options.provider == Provider::Bare;
    let layout = bare::Layout::new();
    let observed = if bare { Some(bare::Observed::look(&layout)?) } else { None };
    if !bare && !options.dry_run {
        check_context(options, &kubeconfig())?;
    }
    let installed = installed_shape(options);
    let shape = installed.clone().unwrap_or_else(|| options.clone());
    let state = State::observe(&shape, &crate::path::search_path());
    let root = PathBuf::from(".");
    let mut steps = match &observed {
        Some(observed) => bare::images_steps(&layout, observed)?,
        None => Vec::new(),
    };
    let wanted = |kind: Kind| match kind {
        Kind::BuildImages => !bare,
        Kind::InstallApp | Kind::WaitForApp => installed.is_some(),
        _ => false,
    };
    steps.extend(
        plan(&shape, &state, &stack::image_tag(&root), &root)?.steps.into_iter().filter(|step| wanted(step.kind)),
    );
    let plan = Plan { steps };
    if options.dry_run {
        print!("{}", plan.render());
        return Ok(());
    }
    if let Some(observed) = &observed {
        anyhow::ensure!(
            observed.running.iter().any(|(component, _)| *component == bare::Component::Containerd),
            "the bare node's containerd is not running: start the cluster first, cargo xtask up --provider bare --cluster-only"
        );
    }
    plan.execute()?;
    match installed {
        Some(shape) => println!(
            "\nThe app runs the new images (chapter {}, mesh {:?}, {:?}, as installed).",
            shape.chapter(),
            shape.mesh,
            shape.ingress
        ),
        None => println!("\nThe app is not installed: `cargo xtask up` installs it with these images."),
    }
    Ok(())
}

/// The options the app's release was installed with (`helm get values`: what `up` set), or
/// `None` when it is not installed.
fn installed_shape(options: &Options) -> Option<Options> {
    let values = options
        .helm(["get", "values", stack::APP_RELEASE, "--namespace", super::APP_NAMESPACE, "--output", "json"])
        .read()?;
    Some(shape_of(options, &serde_json::from_str(&values).ok()?))
}

/// `options` with the chapter, mesh and ingress that the app's values say.
pub(super) fn shape_of(options: &Options, values: &serde_json::Value) -> Options {
    let on = |value: &serde_json::Value| value.as_bool() == Some(true);
    let chapter = if on(&values["faults"]["enabled"]) {
        super::FAULTS_CHAPTER
    } else if on(&values["ingress"]["enabled"]) {
        super::EDGE_CHAPTER
    } else {
        super::FIRST_CLUSTER_CHAPTER
    };
    Options {
        chapter: Some(chapter),
        mesh: if on(&values["mesh"]["enabled"]) { super::Mesh::On } else { super::Mesh::Off },
        ingress: if values["ingress"]["className"] == "nginx" { Ingress::Nginx } else { Ingress::Traefik },
        ..options.clone()
    }
}

#[derive(clap::Args)]
pub struct DownOptions {
    #[command(flatten)]
    pub cluster: Options,
    /// Delete the whole minikube profile instead of uninstalling the releases (with --provider
    /// bare: also remove the bare cluster's data, .state/bare/).
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
    if cluster.provider == Provider::Bare {
        let layout = bare::Layout::new();
        let plan = Plan { steps: bare::down_steps(options.delete_cluster, &layout, &bare::Observed::look(&layout)?) };
        if cluster.dry_run {
            print!("{}", plan.render());
            return Ok(());
        }
        anyhow::ensure!(nix::unistd::geteuid().is_root(), "stopping the bare cluster needs root, as starting it did");
        plan.execute()?;
        println!("\nThe bare cluster is stopped and this machine is as it was.");
        if !options.delete_cluster {
            println!(
                "Its data stays in {} for the next `up` (`down --provider bare --delete-cluster` removes it).",
                layout.root.display()
            );
        }
        return Ok(());
    }
    let mut step = Step::new("Remove the workshop", "see `helm list --all-namespaces`");
    if options.delete_cluster {
        step = step.command(cmd!("minikube", "delete", "--profile", &cluster.profile));
    } else {
        for release in stack::releases(cluster, "0", Path::new("."))?.iter().rev() {
            step = step.command(cluster.helm([
                "uninstall",
                release.name,
                "--namespace",
                release.namespace,
                "--ignore-not-found",
            ]));
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
    plan.execute()
}

/// `cargo xtask status`.
pub fn status(options: &Options) -> anyhow::Result<()> {
    if options.provider == Provider::Bare {
        return bare::status();
    }
    let commands = [
        cmd!("minikube", "status", "--profile", &options.profile),
        options.helm(["list", "--all-namespaces"]),
        options.kubectl().args(["get", "pods", "--all-namespaces"]),
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
