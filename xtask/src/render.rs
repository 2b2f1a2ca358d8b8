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

use crate::{cluster, realstack, tools};

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

/// Runs every check whose tool is installed; the others are listed as skipped.
pub fn check(root: &Path, chart: &Path) -> anyhow::Result<Report> {
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
            Ok(()) => report.checked.push(format!("otelcol validate: the `config:` of {}", realstack::CLUSTER_CONFIG)),
            Err(error) => report.problems.push(format!("{error:#}")),
        },
        None => report.skipped.push(format!("{}: validate (not installed)", tools::COLLECTOR)),
    }
    Ok(report)
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
    let values = std::fs::read_to_string(root.join(realstack::CLUSTER_CONFIG))
        .with_context(|| format!("cannot read {}", realstack::CLUSTER_CONFIG))?;
    let file = out.join("otelcol-cluster.yaml");
    std::fs::write(&file, realstack::config_section(&values)?)?;
    realstack::validate_collector_config(collector, &file, &[("MY_POD_IP", "10.0.0.1")])
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
        check(&root, chart.path()).unwrap()
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
