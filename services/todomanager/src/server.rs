//! The gRPC server: the todo service, the standard health service and server reflection.

use std::{future::Future, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::{Faults, Store, grpc::TodoService, history::History};

/// How often the health service re-checks the database.
const HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// How long the history writer gets, once the server has stopped, to write what is queued.
const HISTORY_DRAIN: Duration = Duration::from_secs(10);

/// Serves todomanager on `listener` until `shutdown` completes, then finishes the RPCs in flight
/// and writes the history they queued (gathered for `history_window` before each write).
pub async fn serve(
    listener: TcpListener,
    store: Store,
    faults: Faults,
    history_window: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    // `grpc.health.v1.Health`: what Kubernetes gRPC probes and `grpcurl` health checks ask.
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let database_ok = check_database(&store, &health_reporter, None).await;
    let health_watch = tokio::spawn(watch_database(store.clone(), health_reporter, database_ok));

    // Server reflection lets `grpcurl` list and call the services without the .proto file.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let (history, history_writer) = History::start(store.clone(), history_window);
    let result = Server::builder()
        // A SERVER span per RPC, continuing the caller's trace.
        .layer(telemetry::grpc::ServerLayer)
        // What is not gRPC gets 415 (after the span layer: the refusal is traced too).
        .layer(crate::content_type::require_grpc_content_type())
        .add_service(health_service)
        .add_service(reflection)
        .add_service(proto::TodoManagerServer::new(TodoService::new(store, faults, history)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    health_watch.abort();
    // The service is gone with the server: the writer writes what is queued, then ends.
    match tokio::time::timeout(HISTORY_DRAIN, history_writer).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "the history writer failed"),
        Err(_) => tracing::error!("the history writer did not finish within {HISTORY_DRAIN:?}: changes may be missing"),
    }
    Ok(result?)
}

/// Re-checks the database every few seconds for the health service.
async fn watch_database(store: Store, reporter: HealthReporter, mut ok: bool) {
    loop {
        tokio::time::sleep(HEALTH_CHECK_INTERVAL).await;
        ok = check_database(&store, &reporter, Some(ok)).await;
    }
}

/// The service whose health follows the database: readiness. The server's own health (`""`,
/// what a probe without a service name asks) stays SERVING while the process answers: that is
/// liveness, and a database outage must not get a healthy process restarted.
pub const READINESS_SERVICE: &str = "todo_mgr.TodoManager";

/// Reports the todo service SERVING while the database answers, NOT_SERVING while it does
/// not; logs the changes.
async fn check_database(store: &Store, reporter: &HealthReporter, was_ok: Option<bool>) -> bool {
    let result = store.ping().await;
    let ok = result.is_ok();
    if was_ok == Some(ok) {
        return ok;
    }
    let status = match result {
        Ok(()) => tonic_health::ServingStatus::Serving,
        Err(error) => {
            tracing::warn!(%error, "database check failed: health is NOT_SERVING");
            tonic_health::ServingStatus::NotServing
        }
    };
    reporter.set_service_status(READINESS_SERVICE, status).await;
    ok
}
