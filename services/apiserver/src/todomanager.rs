//! The gRPC client for todomanager. Every call has a deadline: when todomanager is down the API
//! answers 503, when it is too slow 504 after `timeout`, instead of hanging.

use std::{future::Future, time::Duration};

use axum::http::StatusCode;
use proto::{ListTodosReq, Todo, TodoIdReq, TodoManagerClient};
use tokio_stream::StreamExt;
use tonic::{
    Request,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use telemetry::grpc::ClientLayer;
use tower::ServiceBuilder;

use crate::error::ApiError;

/// Todos created through the REST API belong to this owner (the API has no users yet).
pub const OWNER: &str = "anonymous";

/// The channel to todomanager, with a CLIENT span for every call.
type TracedChannel = telemetry::grpc::Traced<Channel>;

#[derive(Clone)]
pub struct TodoManager {
    todos: TodoManagerClient<TracedChannel>,
    health: HealthClient<TracedChannel>,
    timeout: Duration,
}

impl TodoManager {
    /// Prepares the connection without opening it: apiserver starts even while todomanager is
    /// down, reports not ready, and connects (and reconnects) when it is needed.
    pub fn connect_lazy(url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| anyhow::anyhow!("invalid todomanager URL {url:?}: {error}"))?
            .connect_timeout(timeout);
        let channel = ServiceBuilder::new().layer(ClientLayer::new(endpoint.uri())).service(endpoint.connect_lazy());
        Ok(Self { todos: TodoManagerClient::new(channel.clone()), health: HealthClient::new(channel), timeout })
    }

    pub async fn create(&self, text: String, done: bool) -> Result<Todo, ApiError> {
        let todo = Todo { id: 0, text, done, owner: OWNER.into(), update_mask: None };
        self.call(self.todos.clone().create_todo(self.request(todo))).await
    }

    /// Up to `page_size` todos with ids above `after_id`, in id order.
    pub async fn list(&self, page_size: u32, after_id: u64) -> Result<Vec<Todo>, ApiError> {
        let mut client = self.todos.clone();
        let request = self.request(ListTodosReq { owner: OWNER.into(), page_size, after_id });
        self.within_timeout(async move {
            let stream = client.list_todos(request).await?.into_inner();
            stream.collect::<Result<Vec<_>, _>>().await
        })
        .await
    }

    /// The ids of the finished todos, read page by page. One step of a request, with a span of
    /// its own over its calls that says what it read and found, and whether it failed.
    #[tracing::instrument(
        name = "find finished todos",
        skip_all,
        fields(todos.pages = tracing::field::Empty, todos.finished = tracing::field::Empty),
        err
    )]
    pub async fn finished(&self) -> Result<Vec<u64>, ApiError> {
        const PAGE: u32 = 1000;
        let mut finished = Vec::new();
        let mut after_id = 0;
        for pages in 1.. {
            let page = self.list(PAGE, after_id).await?;
            finished.extend(page.iter().filter(|todo| todo.done).map(|todo| todo.id));
            match page.last() {
                Some(last) if page.len() == PAGE as usize => after_id = last.id,
                _ => {
                    // This function's span: the step's.
                    let step = tracing::Span::current();
                    step.record("todos.pages", pages);
                    step.record("todos.finished", finished.len());
                    break;
                }
            }
        }
        Ok(finished)
    }

    pub async fn get(&self, id: u64) -> Result<Todo, ApiError> {
        self.call(self.todos.clone().get_todo(self.request(TodoIdReq { id, owner: OWNER.into() }))).await
    }

    /// Sets the text, the done flag or both; todomanager changes only the fields given, in one
    /// statement, so concurrent updates of different fields do not undo each other.
    pub async fn update(&self, id: u64, text: Option<String>, done: Option<bool>) -> Result<Todo, ApiError> {
        let paths = [text.as_ref().map(|_| "text"), done.map(|_| "done")].into_iter().flatten().map(String::from);
        let todo = Todo {
            id,
            text: text.unwrap_or_default(),
            done: done.unwrap_or_default(),
            owner: OWNER.into(),
            update_mask: Some(prost_types::FieldMask { paths: paths.collect() }),
        };
        self.call(self.todos.clone().update_todo(self.request(todo))).await
    }

    pub async fn delete(&self, id: u64) -> Result<bool, ApiError> {
        let deleted =
            self.call(self.todos.clone().delete_todo(self.request(TodoIdReq { id, owner: OWNER.into() }))).await?;
        Ok(deleted.success)
    }

    /// Ready when todomanager's health service says SERVING (it checks its database).
    pub async fn ready(&self) -> Result<(), ApiError> {
        let request = self.request(HealthCheckRequest { service: "todo_mgr.TodoManager".into() });
        let not_ready =
            |why: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("todomanager is not ready: {why}"));
        let answer = self.call(self.health.clone().check(request)).await.map_err(|error| not_ready(error.message))?;
        match answer.status() {
            ServingStatus::Serving => Ok(()),
            status => Err(not_ready(status.as_str_name().to_owned())),
        }
    }

    /// A request that tells todomanager our deadline, so it can give up when we do, and what
    /// this request chose of failure injection (none, or slow).
    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        if let Some(choice) = crate::faults::PASSED_ON.try_with(|choice| *choice).ok().flatten() {
            request.metadata_mut().insert(proto::INJECT_FAULT, tonic::metadata::MetadataValue::from_static(choice));
        }
        request
    }

    async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, ApiError> {
        self.within_timeout(async { call.await.map(tonic::Response::into_inner) }).await
    }

    async fn within_timeout<T>(&self, call: impl Future<Output = Result<T, tonic::Status>>) -> Result<T, ApiError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer.map_err(ApiError::from),
            Err(_) => Err(ApiError::timed_out(self.timeout)),
        }
    }
}
