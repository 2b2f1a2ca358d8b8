//! The plan of `cargo xtask up`: start minikube, make Linkerd's certificates, install the
//! releases of [`stack`] in their order, build the images, install the app, wait for it.
//! Every step is skipped when what it makes is already there.

use std::path::Path;

use super::{
    APP_NAMESPACE, CPUS, INGRESS_PORT, Ingress, JAEGER_PORT, JAEGER_RELEASE, MEMORY, NGINX_NAMESPACE, Options,
    REPOSITORIES, TRACING_NAMESPACE, TRAEFIK_NAMESPACE, certs,
    rollout::WaitForDeployments,
    stack::{self, Ready, Release},
    state::State,
};
use crate::{
    cmd,
    steps::{Cmd, Kind, Plan, Step},
};

/// Our keys for the ingress addon's ConfigMap, as a merge patch.
pub const NGINX_PATCH: &str = "config/ingress-nginx.yaml";

/// The plan of `cargo xtask up` for `options`, given what is already there.
pub fn plan(options: &Options, state: &State, image_tag: &str, root: &Path) -> anyhow::Result<Plan> {
    let profile = &options.profile;
    let releases = stack::releases(options, image_tag, root)?;
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
        .kind(Kind::StartCluster)
        .done_if(state.minikube_running.then(|| "minikube is running".into())),
        Step::new(
            format!("Linkerd's trust anchor and issuer, in {}", options.state_dir().join("linkerd").display()),
            "the state folder must be writable",
        )
        .action(certs::Generate(options.certificates()))
        .done_if(if options.meshed() {
            state.certificates.then(|| "kept from an earlier run".into())
        } else {
            Some("no mesh (--mesh off)".into())
        }),
    ];
    let mut repositories =
        Step::new("Helm chart repositories", "check your network; `helm repo list` shows what is there");
    // Only the repositories of the charts this plan installs (none of Linkerd's with --mesh off).
    let used = |name: &str| releases.iter().any(|release| release.chart.starts_with(&format!("{name}/")));
    for (name, url) in REPOSITORIES.into_iter().filter(|(name, _)| used(name)) {
        repositories = repositories.command(cmd!("helm", "repo", "add", name, url, "--force-update"));
    }
    let everything_current = releases.iter().all(up_to_date);
    let from_folder = options.charts.as_ref().map(|dir| format!("the charts come from {}", dir.display()));
    steps.push(
        repositories
            .command(cmd!("helm", "repo", "update"))
            .done_if(from_folder.or_else(|| everything_current.then(|| "every release is up to date".into()))),
    );

    let app =
        releases.iter().position(|release| release.name == stack::APP_RELEASE).expect("the app is always planned");
    for release in &releases[..app] {
        steps.push(helm_install(options, release, up_to_date(release)));
        if release.ready == Ready::Rollout {
            steps.push(
                Step::new(format!("Wait until {} is available", release.name), release.hint)
                    .action(WaitForDeployments { kubectl: options.kubectl(), namespace: release.namespace }),
            );
        }
    }
    if options.has_edge() && options.ingress == Ingress::Nginx {
        steps.push(
            Step::new(
                "minikube's ingress addon (ingress-nginx), tracing to the collector",
                "see `minikube addons list`",
            )
            .command(cmd!("minikube", "addons", "enable", "ingress", "--profile", profile))
            // A merge patch of our keys: `kubectl apply` would compute a 3-way merge against
            // what the addon applied and drop the addon's own keys (its `hsts: "false"`).
            .command(options.kubectl().args([
                "--namespace",
                NGINX_NAMESPACE,
                "patch",
                "configmap",
                "ingress-nginx-controller",
                "--type",
                "merge",
                "--patch-file",
                NGINX_PATCH,
            ]))
            .done_if(state.nginx_configured.then(|| "the addon is configured".into())),
        );
    }
    let mut images = Step::new(
        format!("Build the images into minikube (tag {image_tag})"),
        "the Dockerfile builds with cargo; `minikube image build` needs the container engine",
    )
    .kind(Kind::BuildImages);
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
    steps.push(helm_install(options, app, up_to_date(app)).kind(Kind::InstallApp));
    let mut rollout =
        Step::new("Wait until the app is ready", "see `kubectl --namespace todo get pods`").kind(Kind::WaitForApp);
    for workload in ["statefulset/mariadb", "deployment/todomanager", "deployment/apiserver"] {
        rollout = rollout.command(options.kubectl().args([
            "--namespace",
            APP_NAMESPACE,
            "rollout",
            "status",
            workload,
            "--timeout=5m",
        ]));
    }
    steps.push(rollout);
    Ok(Plan { steps })
}

fn helm_install(options: &Options, release: &Release, up_to_date: bool) -> Step {
    let version = release.version.iter().flat_map(|version| ["--version", version.as_str()]);
    Step::new(format!("Install {}", release.title), release.hint)
        .command(
            options
                .helm(["upgrade", "--install", release.name, &release.chart])
                .args(version)
                .args(["--namespace", release.namespace, "--create-namespace"])
                .args(&release.args)
                .args(match release.ready {
                    Ready::HelmWait => &["--wait", "--timeout", "10m"][..],
                    Ready::Rollout => &[],
                }),
        )
        .done_if(up_to_date.then(|| format!("{} is deployed as asked", release.name)))
}

/// The long-running commands that follow the plan: port-forwards to Jaeger and to the API.
pub fn port_forwards(options: &Options) -> Vec<(&'static str, Cmd)> {
    let forward = |namespace: &str, service: &str, ports: String| {
        options.kubectl().args(["--namespace", namespace, "port-forward", service]).args([ports])
    };
    let jaeger = forward(TRACING_NAMESPACE, &format!("service/{JAEGER_RELEASE}"), format!("{JAEGER_PORT}:16686"));
    let api = match (options.has_edge(), options.ingress) {
        (true, Ingress::Traefik) => forward(TRAEFIK_NAMESPACE, "service/traefik", format!("{INGRESS_PORT}:80")),
        (true, Ingress::Nginx) => {
            forward(NGINX_NAMESPACE, "service/ingress-nginx-controller", format!("{INGRESS_PORT}:80"))
        }
        (false, _) => forward(APP_NAMESPACE, "service/apiserver", format!("{INGRESS_PORT}:8080")),
    };
    vec![("jaeger port-forward", jaeger), ("api port-forward", api)]
}
