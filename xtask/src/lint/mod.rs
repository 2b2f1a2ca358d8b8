//! `cargo xtask lint`: checks the cluster packaging (Dockerfile, the Helm chart, `config/`).
//! Without a cluster or Helm, it checks what is static: every YAML file parses, the chart's
//! templates use only values that exist, every container is locked down and probed, the
//! Dockerfile copies only what exists, and every file names the collector at the same address.
//! With the real tools installed (`cargo xtask tools install`) it also lints and renders the chart
//! with Helm 3 and 4, validates the renderings against Kubernetes' schemas, and has the
//! collector validate its pipeline (see `render`).

use std::path::Path;

use anyhow::Context;
use regex::Regex;
use yaml_rust2::{Yaml, YamlLoader};

use crate::project;

pub mod render;
#[cfg(test)]
mod rendered;

pub const CHART: &str = "helm/todo-app";

#[derive(clap::Args)]
pub struct Options {
    /// Also render the upstream charts packaged in this folder (as `up --charts` installs
    /// them) with the plan's values. Default: ../shared/charts beside the checkout, if there.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<std::path::PathBuf>,
}

pub fn run(options: &Options) -> anyhow::Result<()> {
    let root = project::root();
    let shared = root.join("../shared/charts");
    let charts = options.charts.clone().or_else(|| shared.is_dir().then_some(shared));
    let problems = static_checks(&root)?;
    for problem in &problems {
        println!("✗ {problem}");
    }
    if problems.is_empty() {
        println!("✓ static checks: YAML, chart values, security contexts, probes, Dockerfile, collector address");
    }
    let real = render::check(&root, &root.join(CHART), charts.as_deref())?;
    for checked in &real.checked {
        println!("✓ {checked}");
    }
    for skipped in &real.skipped {
        println!("- skipped {skipped}: `cargo xtask tools install` builds the real tools (needs Go)");
    }
    for problem in &real.problems {
        println!("✗ {problem}");
    }
    let problems = [problems, real.problems].concat();
    anyhow::ensure!(problems.is_empty(), "{} packaging problem(s), see above", problems.len());
    Ok(())
}

/// Every problem found, as sentences; empty when all is well.
pub fn static_checks(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let templates = chart_templates(root)?;
    for (name, text) in &templates {
        if name.ends_with(".yaml") {
            match YamlLoader::load_from_str(&without_template_actions(text)) {
                Ok(documents) => problems.extend(check_workloads(name, &documents)),
                Err(error) => problems.push(format!("{CHART}/templates/{name} is not YAML: {error}")),
            }
        }
    }
    let values = load_yaml(&root.join(CHART).join("values.yaml"))?;
    problems.extend(missing_values(&templates, &values));
    for file in ["Chart.yaml"].iter().map(|name| root.join(CHART).join(name)).chain(yaml_files(&root.join("config"))?) {
        if let Err(error) = load_yaml(&file) {
            problems.push(format!("{error:#}"));
        }
    }
    problems.extend(dockerfile_copies(root)?);
    problems.extend(collector_addresses(root, &values)?);
    Ok(problems)
}

fn load_yaml(file: &Path) -> anyhow::Result<Yaml> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut documents = YamlLoader::load_from_str(&text).with_context(|| format!("{} is not YAML", file.display()))?;
    anyhow::ensure!(!documents.is_empty(), "{} is empty", file.display());
    Ok(documents.swap_remove(0))
}

fn yaml_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> =
        std::fs::read_dir(dir)?.map(|entry| entry.map(|entry| entry.path())).collect::<Result<_, _>>()?;
    files.retain(|file| file.extension().is_some_and(|extension| extension == "yaml"));
    files.sort();
    Ok(files)
}

/// The chart's templates (also under `templates/tests/`), as (relative name, text).
fn chart_templates(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let dir = root.join(CHART).join("templates");
    let mut templates = Vec::new();
    for sub in ["", "tests"] {
        for entry in std::fs::read_dir(dir.join(sub))? {
            let path = entry?.path();
            if path.is_file() {
                let name = Path::new(sub).join(path.file_name().expect("a file has a name"));
                templates.push((name.display().to_string(), std::fs::read_to_string(&path)?));
            }
        }
    }
    templates.sort();
    Ok(templates)
}

/// A template as plain YAML: lines that are only a template action go, inline actions become `x`.
fn without_template_actions(template: &str) -> String {
    let action = Regex::new(r"\{\{.*?\}\}").expect("a valid pattern");
    template
        .lines()
        .filter(|line| !(line.trim_start().starts_with("{{") && line.trim_end().ends_with("}}")))
        .map(|line| action.replace_all(line, "x").into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `.Values.a.b` in a template must be a key of `values.yaml`.
fn missing_values(templates: &[(String, String)], values: &Yaml) -> Vec<String> {
    let reference = Regex::new(r"\.Values\.([A-Za-z0-9_.]+)").expect("a valid pattern");
    let mut problems = Vec::new();
    for (name, text) in templates {
        for found in reference.captures_iter(text) {
            let path = &found[1];
            let mut node = values;
            for key in path.split('.') {
                node = &node[key];
            }
            if node.is_badvalue() {
                problems.push(format!("{CHART}/templates/{name} uses .Values.{path}, which values.yaml does not have"));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// Pods run as the Kubernetes "restricted" profile asks, and long-running ones are probed.
fn check_workloads(name: &str, documents: &[Yaml]) -> Vec<String> {
    let mut problems = Vec::new();
    for document in documents {
        let kind = document["kind"].as_str().unwrap_or_default();
        let (pod, long_running) = match kind {
            "Deployment" | "StatefulSet" => (&document["spec"]["template"]["spec"], true),
            "Pod" => (&document["spec"], false),
            _ => continue,
        };
        let workload = format!("{name}: {kind} {}", document["metadata"]["name"].as_str().unwrap_or("?"));
        let pod_security = &pod["securityContext"];
        if pod_security["runAsNonRoot"].as_bool() != Some(true) {
            problems.push(format!("{workload}: the pod does not set runAsNonRoot: true"));
        }
        if pod_security["seccompProfile"]["type"].as_str() != Some("RuntimeDefault") {
            problems.push(format!("{workload}: the pod does not use the RuntimeDefault seccomp profile"));
        }
        for container in pod["containers"].as_vec().map(Vec::as_slice).unwrap_or_default() {
            let container_name = container["name"].as_str().unwrap_or("?");
            let security = &container["securityContext"];
            let drops_all = security["capabilities"]["drop"]
                .as_vec()
                .is_some_and(|drop| drop.iter().any(|capability| capability.as_str() == Some("ALL")));
            if security["allowPrivilegeEscalation"].as_bool() != Some(false)
                || security["readOnlyRootFilesystem"].as_bool() != Some(true)
                || !drops_all
            {
                problems.push(format!(
                    "{workload}, container {container_name}: needs allowPrivilegeEscalation: false, \
                     readOnlyRootFilesystem: true and capabilities.drop: [ALL]"
                ));
            }
            if container["resources"].is_badvalue() {
                problems.push(format!("{workload}, container {container_name}: no resources"));
            }
            if long_running && (container["livenessProbe"].is_badvalue() || container["readinessProbe"].is_badvalue()) {
                problems
                    .push(format!("{workload}, container {container_name}: needs a liveness and a readiness probe"));
            }
        }
    }
    problems
}

/// `COPY` in the Dockerfile names only files and folders that exist (besides `--from` stages).
fn dockerfile_copies(root: &Path) -> anyhow::Result<Vec<String>> {
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).context("cannot read the Dockerfile")?;
    let mut problems = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        let Some(arguments) = line.strip_prefix("COPY ") else { continue };
        if arguments.contains("--from=") {
            continue;
        }
        let paths: Vec<&str> = arguments.split_whitespace().filter(|word| !word.starts_with("--")).collect();
        for source in &paths[..paths.len().saturating_sub(1)] {
            if !root.join(source).exists() {
                problems.push(format!("the Dockerfile copies {source}, which does not exist"));
            }
        }
    }
    Ok(problems)
}

/// Every file that names the collector names the same address, and the same identity.
fn collector_addresses(root: &Path, chart_values: &Yaml) -> anyhow::Result<Vec<String>> {
    let config = root.join("config");
    let collector = load_yaml(&config.join("opentelemetry-collector.yaml"))?;
    let linkerd = load_yaml(&config.join("linkerd-control-plane.yaml"))?;
    let traefik = load_yaml(&config.join("traefik.yaml"))?;
    let nginx = load_yaml(&config.join("ingress-nginx.yaml"))?;

    let identity = &linkerd["proxy"]["tracing"]["collector"]["meshIdentity"];
    let namespace = identity["namespace"].as_str().unwrap_or_default();
    let expected =
        format!("{}.{namespace}.svc.cluster.local:4317", collector["fullnameOverride"].as_str().unwrap_or_default());
    let found = [
        (
            "config/linkerd-control-plane.yaml",
            linkerd["proxy"]["tracing"]["collector"]["endpoint"].as_str().map(str::to_owned),
        ),
        (
            "helm/todo-app/values.yaml (tracing.endpoint)",
            chart_values["tracing"]["endpoint"].as_str().map(|url| url.trim_start_matches("http://").to_owned()),
        ),
        ("config/traefik.yaml", traefik["tracing"]["otlp"]["grpc"]["endpoint"].as_str().map(str::to_owned)),
        (
            "config/ingress-nginx.yaml",
            nginx["data"]["otlp-collector-host"]
                .as_str()
                .zip(nginx["data"]["otlp-collector-port"].as_str())
                .map(|(host, port)| format!("{host}:{port}")),
        ),
    ];
    let mut problems = Vec::new();
    for (file, address) in found {
        if address.as_deref() != Some(expected.as_str()) {
            let address = address.unwrap_or_else(|| "nothing".into());
            problems.push(format!("{file} names the collector {address}, expected {expected}"));
        }
    }
    if identity["serviceAccountName"].as_str() != collector["serviceAccount"]["name"].as_str() {
        problems.push(
            "config/linkerd-control-plane.yaml: meshIdentity.serviceAccountName is not the collector's service account"
                .into(),
        );
    }
    let jaeger = collector["config"]["exporters"]["otlp_grpc/jaeger"]["endpoint"].as_str();
    if jaeger != Some(&format!("jaeger.{namespace}.svc.cluster.local:4317")) {
        problems
            .push(format!("config/opentelemetry-collector.yaml exports to {jaeger:?}, not to Jaeger in {namespace}"));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaging_passes_its_static_checks() {
        let problems = static_checks(&project::root()).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn a_missing_value_is_found() {
        let values = YamlLoader::load_from_str("tracing:\n  app: true\n").unwrap().remove(0);
        let templates =
            vec![("a.yaml".to_owned(), "x: {{ .Values.tracing.app }} {{ .Values.tracing.nope }}".to_owned())];
        assert_eq!(missing_values(&templates, &values).len(), 1);
    }

    #[test]
    fn an_unlocked_container_is_found() {
        let deployment = "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      \
            securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n      \
            containers:\n        - name: web\n          resources: {}\n";
        let documents = YamlLoader::load_from_str(deployment).unwrap();
        let problems = check_workloads("web.yaml", &documents);
        assert_eq!(problems.len(), 2, "{problems:#?}"); // the security context and the probes
    }

    #[test]
    fn template_actions_are_stripped() {
        let yaml = without_template_actions("a:\n  {{- include \"x\" . | nindent 2 }}\n  b: {{ .Values.b | quote }}\n");
        assert_eq!(yaml, "a:\n  b: x");
    }
}
