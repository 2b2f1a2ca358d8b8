//! The cluster packaging checked by the real tools (`cargo xtask lint`, with `cargo xtask tools
//! install` done): the app's chart linted (`--strict`) and rendered by Helm 3 and by Helm 4 for
//! every set of values the cluster plan installs, each rendering validated against the
//! Kubernetes API schemas (strict: unknown fields are errors) of the oldest and the newest
//! Kubernetes we claim; and the collector's pipeline validated by the collector itself.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::{cluster, local::real_stack, tools};

/// The Kubernetes versions the renderings must be valid for: the oldest the README claims
/// (Linkerd needs 1.31), and the newest the validator knows.
pub const KUBERNETES_VERSIONS: [&str; 2] = ["1.31.0", "1.37.0"];

/// What was checked, and every problem found (empty when all is well).
#[derive(Default)]
pub struct Report {
    pub checked: Vec<String>,
    pub skipped: Vec<String>,
    pub problems: Vec<String>,
}

/// Runs every check whose tool is installed; the others are listed as skipped. With `charts`
/// (a folder of the packaged upstream charts, as `up --charts` takes), those are rendered with
/// the plan's values too.
pub fn check(root: &Path, chart: &Path, charts: Option<&Path>) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let out = tempfile::tempdir().context("cannot create a temporary folder")?;
    // Rendered for each Kubernetes version with --kube-version: without it Helm assumes the
    // version its binary was linked with, which a build from the Go module leaves at v1.20
    // (release builds set it with -ldflags), and our chart requires 1.31.
    let variants = cluster::app_chart_variants(root)?;
    let mut rendered: Vec<(&str, PathBuf)> = Vec::new();
    for helm in [tools::HELM3, tools::HELM4] {
        let Some(binary) = tools::installed(helm) else {
            report.skipped.push(format!("{helm}: lint and template (not installed)"));
            continue;
        };
        for version in KUBERNETES_VERSIONS {
            for (label, values) in &variants {
                let file = out.path().join(format!("{helm}-{version}-{}.yaml", label.replace([' ', ','], "-")));
                match lint_and_render(&binary, chart, version, values, &file) {
                    Ok(()) => {
                        report
                            .checked
                            .push(format!("{helm} lint --strict and template, Kubernetes {version}: {label}"));
                        rendered.push((version, file));
                    }
                    Err(error) => report.problems.push(format!("{helm}, Kubernetes {version}, {label}: {error:#}")),
                }
            }
        }
    }
    // The upstream Traefik chart at the pinned version, with the values the plan passes.
    match tools::installed(tools::TRAEFIK_CHART) {
        Some(traefik) => {
            let values = cluster::stack::traefik_values(root)?;
            for helm in [tools::HELM3, tools::HELM4] {
                let Some(binary) = tools::installed(helm) else { continue };
                let rendered =
                    template(&binary, &traefik, "traefik", cluster::TRAEFIK_NAMESPACE, KUBERNETES_VERSIONS[0], &values);
                match rendered {
                    Ok(_) => {
                        report.checked.push(format!("{helm} template of the Traefik chart with config/traefik.yaml"))
                    }
                    Err(error) => report.problems.push(format!("{helm}, the Traefik chart: {error:#}")),
                }
            }
        }
        None => {
            report.skipped.push(format!("{}: the Traefik chart with our values (not installed)", tools::TRAEFIK_CHART))
        }
    }
    match charts {
        Some(dir) => rendered.extend(upstream_charts(dir, out.path(), &mut report)?),
        None => report.skipped.push("the upstream charts (no folder of packaged charts: lint --charts DIR)".into()),
    }
    match tools::installed(tools::KUBERNETES_VALIDATE) {
        Some(validator) if !rendered.is_empty() => {
            for version in KUBERNETES_VERSIONS {
                let files: Vec<PathBuf> =
                    rendered.iter().filter(|(v, _)| *v == version).map(|(_, file)| file.clone()).collect();
                match validate(&validator, version, &files) {
                    Ok(()) => report
                        .checked
                        .push(format!("kubernetes-validate --strict -k {version}: {} rendering(s)", files.len())),
                    Err(error) => report.problems.push(format!("Kubernetes {version}: {error:#}")),
                }
            }
        }
        Some(_) => report.skipped.push("kubernetes-validate (nothing rendered)".into()),
        None => report.skipped.push("kubernetes-validate (not installed)".into()),
    }
    match tools::installed(tools::COLLECTOR) {
        Some(collector) => match validate_collector(root, &collector, out.path()) {
            Ok(()) => report.checked.push(format!("otelcol validate: the `config:` of {}", real_stack::CLUSTER_CONFIG)),
            Err(error) => report.problems.push(format!("{error:#}")),
        },
        None => report.skipped.push(format!("{}: validate (not installed)", tools::COLLECTOR)),
    }
    Ok(report)
}

/// The upstream charts of the last chapter's plan from the folder `dir`, rendered with the
/// values the plan installs them with, by Helm 3 and 4 for each Kubernetes version; the files
/// go to `out` for the schema validation. Traefik's is checked above, from its Go module.
fn upstream_charts(dir: &Path, out: &Path, report: &mut Report) -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let root = crate::project::root();
    let options = cluster::Options {
        charts: Some(dir.to_owned()),
        ..cluster::Options::planned(Some(cluster::LAST_CHAPTER), cluster::Ingress::Traefik)
    };
    let releases = match cluster::stack::releases(&options, "lint", &root) {
        Ok(releases) => releases,
        Err(error) => {
            report.problems.push(format!("the charts in {}: {error:#}", dir.display()));
            return Ok(Vec::new());
        }
    };
    // Linkerd's control plane reads its certificates with --set-file: made for the rendering.
    let planned = options.certificates();
    let made = crate::cluster::certs::Files::in_dir(out);
    crate::cluster::certs::ensure(&made)?;
    let swap = |arg: &String| {
        let mut arg = arg.clone();
        for (from, to) in [
            (&planned.trust_anchor, &made.trust_anchor),
            (&planned.issuer_certificate, &made.issuer_certificate),
            (&planned.issuer_key, &made.issuer_key),
        ] {
            arg = arg.replace(&from.display().to_string(), &to.display().to_string());
        }
        arg
    };
    let mut rendered = Vec::new();
    for release in releases.iter().filter(|release| release.version.is_some() && release.name != "traefik") {
        let values: Vec<String> = cluster::stack::values(release).iter().map(swap).collect();
        for helm in [tools::HELM3, tools::HELM4] {
            let Some(binary) = tools::installed(helm) else { continue };
            for version in KUBERNETES_VERSIONS {
                let chart = Path::new(&release.chart);
                match template(&binary, chart, release.name, release.namespace, version, &values) {
                    Ok(text) => {
                        let file = out.join(format!("{helm}-{version}-{}.yaml", release.name));
                        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
                        rendered.push((version, file));
                        report.checked.push(format!(
                            "{helm} template, Kubernetes {version}: {} with the plan's values",
                            chart.file_name().unwrap_or_default().to_string_lossy()
                        ));
                    }
                    Err(error) => {
                        report.problems.push(format!("{helm}, Kubernetes {version}, {}: {error:#}", release.name))
                    }
                }
            }
        }
    }
    Ok(rendered)
}

fn lint_and_render(helm: &Path, chart: &Path, kubernetes: &str, values: &[String], file: &Path) -> anyhow::Result<()> {
    let with_values = |command: &[&str]| -> Vec<OsString> {
        let mut args: Vec<OsString> = command.iter().map(Into::into).collect();
        args.push(chart.into());
        args.extend(["--kube-version", kubernetes].map(OsString::from));
        args.extend(values.iter().map(Into::into));
        args
    };
    println!("$ {} lint --strict {} --kube-version {kubernetes} {}", helm.display(), chart.display(), values.join(" "));
    let lint =
        duct::cmd(helm, with_values(&["lint", "--strict"])).stderr_to_stdout().stdout_capture().unchecked().run()?;
    let lint_output = String::from_utf8_lossy(&lint.stdout);
    anyhow::ensure!(lint.status.success(), "helm lint --strict:\n{lint_output}");
    let rendered = template(helm, chart, "todo", cluster::APP_NAMESPACE, kubernetes, values)?;
    // `helm template` prints a mapping with a key twice, which YAML forbids (keys are unique);
    // Kubernetes' lenient decoder (sigs.k8s.io/yaml, checked) silently keeps the last value,
    // and the schema validator does not look: so check it here.
    if let Err(error) = yaml_rust2::YamlLoader::load_from_str(&rendered) {
        anyhow::bail!("the rendering is not valid YAML (a key written twice?): {error}");
    }
    std::fs::write(file, rendered).with_context(|| format!("cannot write {}", file.display()))
}

/// `helm template` of `chart` as release `release` in `namespace`, for Kubernetes `kubernetes`.
pub fn template(
    helm: &Path,
    chart: &Path,
    release: &str,
    namespace: &str,
    kubernetes: &str,
    values: &[String],
) -> anyhow::Result<String> {
    let mut args: Vec<OsString> = vec!["template".into(), release.into(), chart.into()];
    args.extend(["--namespace", namespace, "--kube-version", kubernetes].map(OsString::from));
    args.extend(values.iter().map(Into::into));
    println!(
        "$ {} template {release} {} --namespace {namespace} --kube-version {kubernetes} {}",
        helm.display(),
        chart.display(),
        values.join(" ")
    );
    // Values files are named relative to the checkout, as in the plan.
    let output =
        duct::cmd(helm, args).dir(crate::project::root()).stdout_capture().stderr_capture().unchecked().run()?;
    anyhow::ensure!(output.status.success(), "helm template: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8(output.stdout)?)
}

fn validate(validator: &Path, version: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    println!("$ {} --strict --quiet -k {version} <the {} renderings>", validator.display(), files.len());
    let mut args: Vec<OsString> = ["--strict", "--quiet", "-k", version].map(OsString::from).into();
    args.extend(files.iter().map(Into::into));
    let output = duct::cmd(validator, args).stderr_to_stdout().stdout_capture().unchecked().run()?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success() && !text.contains("ERROR"), "kubernetes-validate:\n{text}");
    Ok(())
}

/// The cluster's collector pipeline as the chart passes it (`config:`), checked by
/// `otelcol validate` with the pod's IP as the chart's downward API would set it.
fn validate_collector(root: &Path, collector: &Path, out: &Path) -> anyhow::Result<()> {
    let values = std::fs::read_to_string(root.join(real_stack::CLUSTER_CONFIG))
        .with_context(|| format!("cannot read {}", real_stack::CLUSTER_CONFIG))?;
    let file = out.join("otelcol-cluster.yaml");
    std::fs::write(&file, real_stack::config_section(&values)?)?;
    real_stack::validate_collector_config(collector, &file, &[("MY_POD_IP", "10.0.0.1")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let path = entry.unwrap().path();
            let target = to.join(path.file_name().unwrap());
            if path.is_dir() { copy_dir(&path, &target) } else { std::fs::copy(&path, &target).map(drop).unwrap() }
        }
    }

    /// `check` of the app's chart with one more template, `name`, holding `text`.
    fn check_with_template(name: &str, text: &str) -> Report {
        let root = crate::project::root();
        let chart = tempfile::tempdir().unwrap();
        copy_dir(&root.join(crate::lint::CHART), chart.path());
        std::fs::write(chart.path().join("templates").join(name), text).unwrap();
        check(&root, chart.path(), None).unwrap()
    }

    /// A label written twice (two includes that both add `app.kubernetes.io/instance`, say)
    /// renders, and Kubernetes would silently keep one of the two: lint says so, for every
    /// rendering.
    #[test]
    fn a_duplicated_key_in_a_rendering_is_a_problem() {
        let test = "lint finds a key written twice";
        if !testkit::real::tools(&[tools::HELM3, tools::HELM4], test) {
            return;
        }
        let twice = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: twice\n  labels:\n    a: b\n    a: c\n";
        let report = check_with_template("twice.yaml", twice);
        let renderings =
            2 * KUBERNETES_VERSIONS.len() * cluster::app_chart_variants(&crate::project::root()).unwrap().len();
        let helm_problems: Vec<&String> =
            report.problems.iter().filter(|problem| problem.starts_with("helm")).collect();
        assert_eq!(helm_problems.len(), renderings, "{:#?}", report.problems);
        for problem in helm_problems {
            assert!(problem.contains("not valid YAML"), "{problem}");
        }
    }

    /// The packaged upstream charts render with the plan's values, by both Helms for both
    /// Kubernetes versions; a folder whose chart is another version is a problem that says so.
    #[test]
    fn the_upstream_charts_render_from_their_folder() {
        let test = "lint renders the packaged upstream charts";
        let Some(shared) = testkit::real::shared("charts", test) else { return };
        if !testkit::real::tools(&[tools::HELM3, tools::HELM4], test) {
            return;
        }
        let out = tempfile::tempdir().unwrap();
        let mut report = Report::default();
        let rendered = upstream_charts(&shared, out.path(), &mut report).unwrap();
        assert!(report.problems.is_empty(), "{:#?}", report.problems);
        // Linkerd's CRDs and control plane, the collector, Jaeger.
        assert_eq!(rendered.len(), 4 * 2 * KUBERNETES_VERSIONS.len());
        let jaeger = std::fs::read_to_string(
            &rendered.iter().find(|(_, file)| file.ends_with("helm4-1.31.0-jaeger.yaml")).unwrap().1,
        )
        .unwrap();
        assert!(jaeger.contains("kind: Deployment") && jaeger.contains("jaegertracing/jaeger:2.19.0"), "{jaeger}");

        let other = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&shared).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().replace("jaeger-4.11.1", "jaeger-4.10.0");
            std::fs::copy(entry.path(), other.path().join(name)).unwrap();
        }
        let mut report = Report::default();
        assert!(upstream_charts(other.path(), out.path(), &mut report).unwrap().is_empty());
        assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
        assert!(
            report.problems[0].contains("has no chart jaeger 4.11.1")
                && report.problems[0].contains("jaeger-4.10.0.tgz"),
            "{}",
            report.problems[0]
        );
    }

    /// A field that Kubernetes does not know passes Helm (which does not check schemas) and is
    /// caught by the strict schema validation, for every Helm and Kubernetes version.
    #[test]
    fn an_unknown_field_in_a_rendering_is_a_problem() {
        let test = "lint's schema validation finds an unknown field";
        if !testkit::real::tools(&[tools::HELM3, tools::HELM4, tools::KUBERNETES_VALIDATE], test) {
            return;
        }
        let stray = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\ndata:\n  a: b\nspec:\n  replicas: 1\n";
        let report = check_with_template("stray.yaml", stray);
        assert_eq!(report.problems.len(), KUBERNETES_VERSIONS.len(), "{:#?}", report.problems);
        for (problem, version) in report.problems.iter().zip(KUBERNETES_VERSIONS) {
            assert!(problem.starts_with(&format!("Kubernetes {version}: kubernetes-validate")), "{problem}");
            assert!(problem.contains("spec"), "{problem}");
        }
    }
}
