//! The OTLP receivers answer a client's malformed export as the client's mistake: gRPC with
//! INVALID_ARGUMENT, HTTP with 400 (a server error would turn the exporter's spans red and
//! blame the store).

use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, trace_service_client::TraceServiceClient},
    common::v1::{AnyValue, KeyValue, KeyValueList, any_value::Value},
    resource::v1::Resource,
    trace::v1::ResourceSpans,
};
use prost::Message;

/// An export whose resource holds an attribute nested `depth` lists deep: more than prost's
/// recursion limit (100) cannot be decoded.
fn nested(depth: usize) -> ExportTraceServiceRequest {
    let mut value = AnyValue { value: Some(Value::StringValue("bottom".into())) };
    for _ in 0..depth {
        let inner = KeyValue { key: "n".into(), value: Some(value), ..Default::default() };
        value = AnyValue { value: Some(Value::KvlistValue(KeyValueList { values: vec![inner] })) };
    }
    let attribute = KeyValue { key: "deep".into(), value: Some(value), ..Default::default() };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![attribute], ..Default::default() }),
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn an_export_nested_too_deeply_is_the_clients_mistake() {
    let collector = testkit::Collector::start().await;
    let mut client = TraceServiceClient::connect(collector.endpoint()).await.unwrap();

    assert!(client.export(nested(20)).await.is_ok(), "nested, but within the limit");
    let status = client.export(nested(200)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cannot be decoded"), "{status:?}");

    let answer = reqwest::Client::new()
        .post(format!("{}/v1/traces", collector.http_endpoint()))
        .header("content-type", "application/x-protobuf")
        .body(nested(200).encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::BAD_REQUEST);
}
