//! What is already there: the machine and the cluster, looked at (read-only) before planning.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
};

use super::{NGINX_NAMESPACE, Options, Provider, stack};
use crate::cmd;

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
        if options.provider == Provider::Bare {
            // Its own tools and kubeconfig; its images are the bare provider's to look at.
            state.releases = releases(options);
            return state;
        }
        state.missing_tools = ["minikube", "kubectl", "helm"]
            .into_iter()
            .filter(|tool| crate::path::find(tool, path).is_none())
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
        state.releases = releases(options);
        if let Some(list) = cmd!("minikube", "image", "ls", "-p", profile).read() {
            state.images =
                list.lines().map(|line| line.trim().trim_start_matches("docker.io/library/").to_owned()).collect();
        }
        state.nginx_configured = options
            .kubectl()
            .args([
                "--namespace",
                NGINX_NAMESPACE,
                "get",
                "configmap",
                "ingress-nginx-controller",
                "--output",
                "jsonpath={.data.enable-opentelemetry}",
            ])
            .read()
            .is_some_and(|value| value.trim() == "true");
        state
    }
}

/// Release name → the description of its last deployed revision, as Helm says.
fn releases(options: &Options) -> HashMap<String, String> {
    let mut releases = HashMap::new();
    for release in stack::releases(options, "0", Path::new(".")).unwrap_or_default() {
        let history = options
            .helm(["history", release.name, "--namespace", release.namespace, "--max", "1", "--output", "json"])
            .read();
        if let Some(json) = history.and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok()) {
            let last = &json[json.as_array().map_or(0, |revisions| revisions.len().saturating_sub(1))];
            if last["status"] == "deployed" {
                releases.insert(release.name.to_owned(), last["description"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    releases
}
