//! The gRPC server: the todo service, the standard health service and server reflection.

use std::{future::Future, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::{Store, grpc::TodoService};

/// How often the health service re-checks the database.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Serves todomanager on `listener` until `shutdown` completes, then finishes the RPCs in flight.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    // `grpc.health.v1.Health`: what Kubernetes gRPC probes and `grpcurl` health checks ask.
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let health_watch = tokio::spawn(report_database_health(store.clone(), health_reporter));

    // Server reflection lets `grpcurl` list and call the services without the .proto file.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let result = Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(proto::TodoManagerServer::new(TodoService::new(store)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    health_watch.abort();
    Ok(result?)
}

/// Reports SERVING while the database answers, NOT_SERVING while it does not.
async fn report_database_health(store: Store, reporter: HealthReporter) {
    const SERVICE: &str = "todo_mgr.TodoManager";
    let mut serving = None;
    let mut interval = tokio::time::interval(HEALTH_CHECK_INTERVAL);
    loop {
        interval.tick().await;
        let ok = store.ping().await.map_err(|error| tracing::warn!(%error, "health check failed")).is_ok();
        if serving == Some(ok) {
            continue;
        }
        serving = Some(ok);
        for service in ["", SERVICE] {
            if ok {
                reporter.set_service_status(service, tonic_health::ServingStatus::Serving).await;
            } else {
                reporter.set_service_status(service, tonic_health::ServingStatus::NotServing).await;
            }
        }
    }
}
