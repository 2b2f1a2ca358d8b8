//! The resource: who is reporting the spans.

use opentelemetry::KeyValue;
use opentelemetry_sdk::{
    Resource,
    resource::{EnvResourceDetector, TelemetryResourceDetector},
};

/// The one released version of OpenTelemetry's semantic conventions this workshop follows, for
/// HTTP (`http.rs`), RPC (`grpc.rs`) and databases (todomanager's `store.rs`). Spans say so in
/// their resource's schema URL.
pub const SEMCONV_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.44.0";

/// Environment variables that a Kubernetes Deployment fills from the downward API
/// (see the Helm chart), and the resource attributes they become.
const KUBERNETES: [(&str, &str); 3] = [
    ("K8S_POD_NAME", "k8s.pod.name"),
    ("K8S_NAMESPACE_NAME", "k8s.namespace.name"),
    ("K8S_NODE_NAME", "k8s.node.name"),
];

/// `service.name`, `service.version`, `service.instance.id`, the Kubernetes names when present;
/// then `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`, which win over all of these.
pub fn detect(service_name: &'static str, service_version: &'static str) -> Resource {
    let mut attributes = vec![
        KeyValue::new("service.version", service_version),
        KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
    ];
    for (variable, key) in KUBERNETES {
        if let Ok(value) = std::env::var(variable).map(|value| value.trim().to_owned())
            && !value.is_empty()
        {
            attributes.push(KeyValue::new(key, value));
        }
    }
    let mut resource = Resource::builder_empty()
        .with_schema_url([], SEMCONV_SCHEMA_URL)
        .with_service_name(service_name)
        .with_attributes(attributes)
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_detector(Box::new(EnvResourceDetector::new()));
    if let Ok(name) = std::env::var("OTEL_SERVICE_NAME")
        && !name.trim().is_empty()
    {
        resource = resource.with_service_name(name);
    }
    resource.build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_resource_names_its_semantic_conventions() {
        let resource = super::detect("test", "0.0.0");
        assert_eq!(resource.schema_url(), Some(super::SEMCONV_SCHEMA_URL));
    }
}
