//! The OTLP receivers: gRPC (`TraceService/Export`, port 4317) and HTTP (`POST /v1/traces`,
//! port 4318) with protobuf or JSON bodies, as the OpenTelemetry protocol specifies.

use axum::{
    Router,
    body::Bytes,
    extract::DefaultBodyLimit,
    extract::State,
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::post,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codegen::{
    Body, BoxFuture, CompressionEncoding, Context, EnabledCompressionEncodings, Poll, Service, StdError, http,
};
use tower_http::decompression::RequestDecompressionLayer;

use crate::store::{Ingested, Store};

/// The largest export accepted, after decompression: gRPC's default message limit, which is
/// also what an OpenTelemetry Collector's OTLP gRPC receiver accepts by default.
pub const MAX_EXPORT_BYTES: usize = 4 * 1024 * 1024;

/// The gRPC receiver. Accepts gzip, as collectors and Jaeger do (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`).
pub fn grpc_service(store: Store) -> GrpcReceiver {
    GrpcReceiver(store)
}

/// The HTTP receiver; accepts `Content-Encoding: gzip`.
pub fn http_router(store: Store) -> Router {
    Router::new()
        .route("/v1/traces", post(export_http))
        .layer(DefaultBodyLimit::max(MAX_EXPORT_BYTES))
        .layer(RequestDecompressionLayer::new())
        .with_state(store)
}

/// `TraceService/Export` over gRPC. Served as tonic's generated servers serve a method (what
/// `opentelemetry_proto`'s `TraceServiceServer` does), but with grpc-codec's codec: an export
/// that cannot be decoded (a message nested too deeply, say) is the client's mistake,
/// INVALID_ARGUMENT, where tonic's own codec answers INTERNAL (a server error). The HTTP
/// receiver answers the same export 400.
#[derive(Clone)]
pub struct GrpcReceiver(Store);

/// The gRPC method, `/package.Service/Method` (opentelemetry-proto's trace_service.proto).
const SERVICE: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

impl tonic::server::NamedService for GrpcReceiver {
    const NAME: &'static str = SERVICE;
}

struct Export(Store);

impl tonic::server::UnaryService<ExportTraceServiceRequest> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        std::future::ready(Ok(tonic::Response::new(answer(self.0.ingest(request.into_inner())))))
    }
}

impl<B> Service<http::Request<B>> for GrpcReceiver
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT {
            return Box::pin(std::future::ready(Ok(tonic::Status::unimplemented(format!(
                "{SERVICE} has one method, Export"
            ))
            .into_http())));
        }
        let export = Export(self.0.clone());
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(grpc_codec::ServerCodec::default())
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(MAX_EXPORT_BYTES), None);
            Ok(grpc.unary(export, request).await)
        })
    }
}

/// OTLP's answer: a partial success names how many spans were rejected, and why.
fn answer(ingested: Ingested) -> ExportTraceServiceResponse {
    if ingested.truncated_values > 0 {
        tracing::debug!(values = ingested.truncated_values, "attribute values cut to the store's limit");
    }
    let partial_success = (ingested.rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: ingested.rejected as i64,
        error_message: ingested.reasons.into_iter().collect::<Vec<_>>().join("; "),
    });
    ExportTraceServiceResponse { partial_success }
}

async fn export_http(State(store): State<Store>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    match mime {
        "application/x-protobuf" => match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                let response = answer(store.ingest(request));
                ([(CONTENT_TYPE, "application/x-protobuf")], response.encode_to_vec()).into_response()
            }
            Err(error) => (StatusCode::BAD_REQUEST, format!("invalid OTLP protobuf: {error}")).into_response(),
        },
        "application/json" => match serde_json::from_slice::<ExportTraceServiceRequest>(&body) {
            Ok(request) => {
                let response = answer(store.ingest(request));
                let json = serde_json::to_string(&response).expect("a response serializes");
                ([(CONTENT_TYPE, "application/json")], json).into_response()
            }
            Err(error) => (StatusCode::BAD_REQUEST, format!("invalid OTLP JSON: {error}")).into_response(),
        },
        _ => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "use Content-Type application/x-protobuf or application/json")
            .into_response(),
    }
}
