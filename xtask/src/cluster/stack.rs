//! What cluster mode installs, in which order, with which values: the Helm releases of the
//! stack. The versions come from `config/versions.toml`, the values from `config/` and the
//! app's chart from `helm/todo-app`.

use std::path::Path;

use anyhow::Context;

use super::{
    APP_NAMESPACE, FIRST_CLUSTER_CHAPTER, Ingress, LAST_CHAPTER, LINKERD_NAMESPACE, NGINX_NAMESPACE, Options, Provider,
    TRACING_NAMESPACE, TRAEFIK_NAMESPACE, images, versions::Versions,
};

/// The app's own release and chart.
pub const APP_RELEASE: &str = "todo";
pub const APP_CHART: &str = "helm/todo-app";

/// A Helm release the plan installs.
pub struct Release {
    pub title: &'static str,
    pub name: &'static str,
    pub namespace: &'static str,
    pub chart: String,
    /// The chart's version; `None` for the app's chart, which is in this repository.
    pub version: Option<String>,
    /// Values and flags, ending with `--description xtask:<fingerprint>`.
    pub args: Vec<String>,
    pub hint: &'static str,
    pub ready: Ready,
}

/// How `up` waits for a release to be ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// `helm --wait`: every resource ready, or Helm's timeout.
    HelmWait,
    /// Installed without `--wait`, then [`super::rollout::wait`]: its Deployments available, and
    /// a stop at once when an image cannot be pulled (Linkerd's, from cr.l5d.io, offline).
    Rollout,
}

/// A third-party release: its chart and version from the table, its image tags, its values.
fn upstream(
    options: &Options,
    versions: &Versions,
    title: &'static str,
    name: &'static str,
    namespace: &'static str,
    values: &[&str],
    hint: &'static str,
) -> anyhow::Result<Release> {
    let chart = versions.chart(name)?;
    let mut args: Vec<String> = values.iter().map(|arg| (*arg).to_owned()).collect();
    args.extend(versions.image_sets(name));
    if options.provider == Provider::Bare {
        args.extend(versions.bare_image_sets(name)?);
    }
    // With a chart from the folder, Helm ignores `--version` (it is a file: pkg/action's
    // LocateChart returns a path that exists before it looks at the version); the check is
    // ours, in `charts::locate`.
    let source = match &options.charts {
        Some(dir) => super::charts::locate(dir, &chart.chart, &chart.version)?.display().to_string(),
        None => chart.chart.clone(),
    };
    Ok(Release {
        title,
        name,
        namespace,
        chart: source,
        version: Some(chart.version.clone()),
        args,
        hint,
        ready: Ready::HelmWait,
    })
}

/// Every release of the stack for `options`, in install order. `image_tag` and the folder they
/// read their files from go into what decides whether a release is up to date.
pub fn releases(options: &Options, image_tag: &str, root: &Path) -> anyhow::Result<Vec<Release>> {
    let versions = Versions::read(root)?;
    let certificates = options.certificates();
    let chapter = options.chapter();
    let trust_anchor = format!("identityTrustAnchorsPEM={}", certificates.trust_anchor.display());
    let issuer_certificate = format!("identity.issuer.tls.crtPEM={}", certificates.issuer_certificate.display());
    let issuer_key = format!("identity.issuer.tls.keyPEM={}", certificates.issuer_key.display());
    let mut releases = Vec::new();
    if options.meshed() {
        releases.extend([
            upstream(
                options,
                &versions,
                "Linkerd's CRDs (with the Gateway API CRDs it needs)",
                "linkerd-crds",
                LINKERD_NAMESPACE,
                &["--set", "installGatewayAPI=true"],
                "see `kubectl get crds`; Linkerd needs Kubernetes 1.31 or newer",
            )?,
            upstream(
                options,
                &versions,
                "Linkerd's control plane, with proxy tracing to the collector",
                "linkerd-control-plane",
                LINKERD_NAMESPACE,
                &[
                    "--values",
                    "config/linkerd-control-plane.yaml",
                    "--set-file",
                    &trust_anchor,
                    "--set-file",
                    &issuer_certificate,
                    "--set-file",
                    &issuer_key,
                ],
                "see `kubectl --namespace linkerd get pods`; the certificates are in the state folder",
            )
            .map(|release| Release { ready: Ready::Rollout, ..release })?,
        ]);
    }
    releases.extend([
        // Jaeger first: the collector sends to it from its start, and an exporter that found
        // nobody there waits before it tries again (grpc-go's connection backoff, up to 120 s).
        upstream(
            options,
            &versions,
            "Jaeger v2, in memory",
            super::JAEGER_RELEASE,
            TRACING_NAMESPACE,
            &["--values", "config/jaeger.yaml"],
            "see `kubectl --namespace tracing get pods`",
        )?,
        upstream(
            options,
            &versions,
            if options.meshed() { "the OpenTelemetry Collector, meshed" } else { "the OpenTelemetry Collector" },
            super::COLLECTOR_RELEASE,
            TRACING_NAMESPACE,
            &["--values", "config/opentelemetry-collector.yaml"],
            "see `kubectl --namespace tracing logs deployment/otel-collector`",
        )?,
    ]);
    if options.has_edge() && options.ingress == Ingress::Traefik {
        releases.push(upstream(
            options,
            &versions,
            "Traefik, the ingress, tracing over OTLP",
            "traefik",
            TRAEFIK_NAMESPACE,
            &["--values", "config/traefik.yaml"],
            "see `kubectl --namespace traefik logs deployment/traefik`",
        )?);
    }
    let (ingress_enabled, class, controller_namespace) = match (options.has_edge(), options.ingress) {
        (false, _) => (false, "traefik", TRAEFIK_NAMESPACE),
        (true, Ingress::Traefik) => (true, "traefik", TRAEFIK_NAMESPACE),
        (true, Ingress::Nginx) => (true, "nginx", NGINX_NAMESPACE),
    };
    let mut app_args: Vec<String> = [
        format!("apiserver.image.tag={image_tag}"),
        format!("todomanager.image.tag={image_tag}"),
        format!("ingress.enabled={ingress_enabled}"),
        format!("ingress.className={class}"),
        format!("ingress.controllerNamespace={controller_namespace}"),
        format!("faults.enabled={}", chapter >= super::FAULTS_CHAPTER),
        format!("mesh.enabled={}", options.meshed()),
    ]
    .into_iter()
    .flat_map(|set| ["--set".to_owned(), set])
    .collect();
    app_args.extend(versions.image_sets(APP_RELEASE));
    if options.provider == Provider::Bare {
        app_args.extend(versions.bare_image_sets(APP_RELEASE)?);
        for (service, image) in [("apiserver", images::APISERVER), ("todomanager", images::TODOMANAGER)] {
            let reference = images::find(image)?.reference()?;
            let (repository, tag) = (format!("{service}.image.repository"), format!("{service}.image.tag"));
            app_args.extend(super::versions::repository_sets(&repository, None, &tag, &reference));
        }
    }
    releases.push(Release {
        title: "the todo app",
        name: APP_RELEASE,
        namespace: APP_NAMESPACE,
        chart: APP_CHART.into(),
        version: None,
        args: app_args,
        hint: "see `kubectl --namespace todo get pods` and `kubectl --namespace todo describe pods`",
        ready: Ready::HelmWait,
    });
    // What was asked, with the content of every file it reads: a change to any of them
    // makes the release out of date.
    for release in &mut releases {
        let mut fingerprint = format!(
            "{} {} {} {}",
            release.chart,
            release.version.as_deref().unwrap_or("local"),
            release.namespace,
            release.args.join(" ")
        );
        for file in
            release.args.iter().filter_map(|arg| arg.split_once('=').map_or(Some(arg.as_str()), |(_, v)| Some(v)))
        {
            if let Ok(text) = std::fs::read_to_string(root.join(file)) {
                fingerprint.push_str(&text);
            }
        }
        if release.version.is_none() {
            fingerprint.push_str(&files_fingerprint(&root.join(&release.chart)));
        }
        release.args.extend([
            "--description".to_owned(),
            format!("xtask:{:016x}", crate::project::fnv1a(fingerprint.as_bytes())),
        ]);
    }
    Ok(releases)
}

/// The values of a release, without the fingerprint (what `lint` and the tests render with).
pub fn values(release: &Release) -> Vec<String> {
    let mut args = release.args.clone();
    if let Some(at) = args.iter().position(|arg| arg == "--description") {
        args.truncate(at);
    }
    args
}

/// The values the plan installs release `name` with, for `options`.
pub fn values_of(options: &Options, name: &str, root: &Path) -> anyhow::Result<Vec<String>> {
    let releases = releases(options, "lint", root)?;
    let release = releases.iter().find(|release| release.name == name);
    Ok(values(release.with_context(|| format!("the plan installs no release {name} here"))?))
}

/// Every state of the stack the plan can reach: chapters 9–11, with either ingress from 10 on.
pub fn variants() -> Vec<Options> {
    let mut variants = Vec::new();
    for chapter in FIRST_CLUSTER_CHAPTER..=LAST_CHAPTER {
        for ingress in [Ingress::Traefik, Ingress::Nginx] {
            if chapter < super::EDGE_CHAPTER && ingress == Ingress::Nginx {
                continue; // no ingress before chapter 10
            }
            variants.push(Options::planned(Some(chapter), ingress));
        }
    }
    variants
}

/// The values of the app's chart for every state the plan installs, labelled: what `lint`
/// renders with the real Helm.
pub fn app_chart_variants(root: &Path) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    variants()
        .iter()
        .map(|options| {
            let label = format!("chapter {}, {:?}", options.chapter(), options.ingress).to_lowercase();
            Ok((label, values_of(options, APP_RELEASE, root)?))
        })
        .collect()
}

/// The values the plan installs the Traefik chart with (chapter 10 on).
pub fn traefik_values(root: &Path) -> anyhow::Result<Vec<String>> {
    values_of(&Options::planned(Some(super::EDGE_CHAPTER), Ingress::Traefik), "traefik", root)
}

/// The names (below `dir`, so that the checkout's place does not count) and contents of the
/// files under `dir`, in order.
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
        .map(|file| {
            let name = file.strip_prefix(dir).unwrap_or(file);
            format!("{}\n{}", name.display(), std::fs::read_to_string(file).unwrap_or_default())
        })
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
