//! Waiting for a release's Deployments, the way a learner would want it: done when each one is
//! available, and stopped at once, with the image named, when a Pod's image cannot be pulled
//! (`helm --wait` would sit out its whole timeout instead). Linkerd's control plane is installed
//! this way: its images come from cr.l5d.io, which a machine offline (or the bare provider's
//! node without a registry) cannot reach.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::steps::{Action, Cmd};

/// How long the Deployments get to become available.
pub const TIMEOUT: Duration = Duration::from_secs(600);

/// What the Deployments and Pods of a namespace say.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every Deployment has all its replicas available (and there is at least one).
    Available,
    /// Still starting: the Deployments that are not available yet.
    Starting(Vec<String>),
    /// These images cannot be pulled, each once, in the order met.
    CannotPull(Vec<Pull>),
}

/// An image that cannot be pulled: the Pods that wait on it, and what the kubelet said.
#[derive(Debug, PartialEq, Eq)]
pub struct Pull {
    pub image: String,
    pub pods: Vec<String>,
    pub message: String,
}

/// The kubelet's reasons for a container that waits on its image and will not get it by waiting
/// (kubernetes pkg/kubelet/images/types.go: ErrImagePull, ImagePullBackOff, InvalidImageName,
/// ErrImageNeverPull).
const PULL_FAILURES: [&str; 4] = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];

/// Judges `kubectl get deployments,pods --output json` (a `List`).
pub fn judge(list: &Value) -> Verdict {
    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    let of_kind = |kind: &'static str| items.iter().filter(move |item| item["kind"] == kind);
    let mut cannot_pull: Vec<Pull> = Vec::new();
    for pod in of_kind("Pod") {
        let statuses = ["initContainerStatuses", "containerStatuses"]
            .iter()
            .flat_map(|field| pod["status"][field].as_array().cloned().unwrap_or_default());
        for status in statuses {
            let waiting = &status["state"]["waiting"];
            if !waiting["reason"].as_str().is_some_and(|reason| PULL_FAILURES.contains(&reason)) {
                continue;
            }
            let (image, name) =
                (status["image"].as_str().unwrap_or("?"), pod["metadata"]["name"].as_str().unwrap_or("?"));
            match cannot_pull.iter_mut().find(|pull| pull.image == image) {
                Some(pull) if !pull.pods.iter().any(|pod| pod == name) => pull.pods.push(name.to_owned()),
                Some(_) => {}
                None => cannot_pull.push(Pull {
                    image: image.to_owned(),
                    pods: vec![name.to_owned()],
                    message: waiting["message"].as_str().or(waiting["reason"].as_str()).unwrap_or_default().to_owned(),
                }),
            }
        }
    }
    if !cannot_pull.is_empty() {
        return Verdict::CannotPull(cannot_pull);
    }
    let starting: Vec<String> = of_kind("Deployment")
        .filter(|deployment| {
            let (spec, status) = (&deployment["spec"], &deployment["status"]);
            let wanted = spec["replicas"].as_u64().unwrap_or(1);
            let current = status["observedGeneration"].as_u64() >= deployment["metadata"]["generation"].as_u64();
            !(current
                && status["availableReplicas"].as_u64().unwrap_or(0) >= wanted
                && status["updatedReplicas"].as_u64().unwrap_or(0) >= wanted)
        })
        .map(|deployment| deployment["metadata"]["name"].as_str().unwrap_or("?").to_owned())
        .collect();
    match (of_kind("Deployment").count(), starting.is_empty()) {
        (0, _) => Verdict::Starting(vec!["(no Deployment yet)".into()]),
        (_, true) => Verdict::Available,
        (_, false) => Verdict::Starting(starting),
    }
}

/// The step of `up` that waits for a release's Deployments, with the cluster's `kubectl`.
#[derive(Debug)]
pub struct WaitForDeployments {
    pub kubectl: Cmd,
    pub namespace: &'static str,
}

impl Action for WaitForDeployments {
    fn describe(&self) -> Vec<String> {
        vec![format!(
            "wait until every Deployment in {} is available (at most {TIMEOUT:?}); stop at once if an image cannot be pulled",
            self.namespace
        )]
    }

    fn run(&self) -> anyhow::Result<()> {
        wait(&self.kubectl, self.namespace)
    }
}

/// Waits until every Deployment in `namespace` is available; fails at once on an image that
/// cannot be pulled, or after [`TIMEOUT`] with what is still starting.
pub fn wait(kubectl: &Cmd, namespace: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let look = kubectl.clone().args(["--namespace", namespace, "get", "deployments,pods", "--output", "json"]);
    loop {
        let list = look.read().and_then(|text| serde_json::from_str(&text).ok()).unwrap_or(Value::Null);
        match judge(&list) {
            Verdict::Available => return Ok(()),
            Verdict::CannotPull(pulls) => {
                let lines: Vec<String> = pulls
                    .iter()
                    .map(|pull| format!("  {} (for {})\n    {}", pull.image, pull.pods.join(", "), pull.message))
                    .collect();
                anyhow::bail!(
                    "the images of {namespace} cannot be pulled:\n{}\nThe releases are installed (the API server accepted \
                     every object) but their Pods cannot start. Let the node reach the registry (a proxy, a \
                     mirror), or, without the mesh, run chapters 10 and 11 with --mesh off",
                    lines.join("\n")
                );
            }
            Verdict::Starting(names) if started.elapsed() > TIMEOUT => anyhow::bail!(
                "after {TIMEOUT:?}, still not available in {namespace}: {} (see `kubectl --namespace {namespace} \
                 describe pods`)",
                names.join(", ")
            ),
            Verdict::Starting(_) => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(name: &str, replicas: u64, available: u64) -> Value {
        json!({"kind": "Deployment", "metadata": {"name": name, "generation": 2}, "spec": {"replicas": replicas},
               "status": {"observedGeneration": 2, "availableReplicas": available, "updatedReplicas": available}})
    }

    fn pod(name: &str, init: Value, containers: Value) -> Value {
        json!({"kind": "Pod", "metadata": {"name": name},
               "status": {"initContainerStatuses": init, "containerStatuses": containers}})
    }

    #[test]
    fn available_when_every_deployment_has_its_replicas() {
        let list = json!({"items": [deployment("linkerd-destination", 1, 1), deployment("linkerd-identity", 1, 1)]});
        assert_eq!(judge(&list), Verdict::Available);
        let list = json!({"items": [deployment("linkerd-destination", 1, 1), deployment("linkerd-identity", 2, 1)]});
        assert_eq!(judge(&list), Verdict::Starting(vec!["linkerd-identity".into()]));
        assert!(matches!(judge(&json!({"items": []})), Verdict::Starting(_)), "nothing created yet is not done");
        let mut stale = deployment("linkerd-identity", 1, 1);
        stale["metadata"]["generation"] = json!(3);
        assert!(matches!(judge(&json!({"items": [stale]})), Verdict::Starting(_)), "a spec not yet observed");
    }

    /// What the kubelet reports offline, on an init container as on a container.
    #[test]
    fn an_image_that_cannot_be_pulled_stops_the_wait() {
        let waiting = |image: &str, reason: &str| json!([{"image": image, "state": {"waiting": {"reason": reason, "message": format!("Back-off pulling image \"{image}\"")}}}]);
        let list = json!({"items": [
            deployment("linkerd-identity", 1, 0),
            pod("linkerd-identity-1", waiting("cr.l5d.io/linkerd/proxy-init:v2.4.3", "ImagePullBackOff"), json!([])),
            pod("linkerd-destination-1", json!([]), waiting("cr.l5d.io/linkerd/controller:edge-26.8.3", "ErrImagePull")),
            pod("linkerd-proxy-injector-1", json!([]), waiting("cr.l5d.io/linkerd/controller:edge-26.8.3", "ContainerCreating")),
        ]});
        let Verdict::CannotPull(pulls) = judge(&list) else { panic!("{:?}", judge(&list)) };
        let images: Vec<(&str, &[String])> = pulls.iter().map(|pull| (pull.image.as_str(), &pull.pods[..])).collect();
        assert_eq!(
            images,
            [
                ("cr.l5d.io/linkerd/proxy-init:v2.4.3", &["linkerd-identity-1".to_owned()][..]),
                ("cr.l5d.io/linkerd/controller:edge-26.8.3", &["linkerd-destination-1".to_owned()][..]),
            ],
            "each image once, only pull failures (not a container being created)"
        );
        assert!(pulls[0].message.contains("Back-off pulling image"), "{pulls:?}");
    }
}
