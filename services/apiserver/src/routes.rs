//! The REST API: `/v1/todo` for todos, `/ping` for liveness, `/ready` for readiness.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequestParts, Path, State},
    http::{StatusCode, header::LOCATION, request::Parts},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    error::ApiError,
    faults::Faults,
    json::{CaseInsensitiveJson, MAX_BODY_BYTES},
    todomanager::TodoManager,
};

pub fn router(todomanager: TodoManager, faults: Faults) -> Router {
    Router::new()
        .route("/v1/todo", get(list_todos).post(create_todo))
        .route("/v1/todo/{id}", get(get_todo).put(update_todo).delete(delete_todo))
        .route("/ping", get(ping))
        .route("/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(faults, crate::faults::inject))
        // After routing, so the span is named after the route: `GET /v1/todo/{id}`.
        .layer(axum::middleware::from_fn(telemetry::http::trace_requests))
        .with_state(todomanager)
}

/// A todo as the API shows it. Ids are strings, as in the original service's JSON.
#[derive(Debug, Serialize)]
struct TodoJson {
    id: String,
    text: String,
    done: bool,
}

impl From<proto::Todo> for TodoJson {
    fn from(todo: proto::Todo) -> Self {
        Self { id: todo.id.to_string(), text: todo.text, done: todo.done }
    }
}

#[derive(Debug, Deserialize)]
struct NewTodo {
    text: String,
}

#[derive(Debug, Deserialize)]
struct TodoChanges {
    text: Option<String>,
    done: Option<bool>,
}

async fn create_todo(
    State(todomanager): State<TodoManager>,
    CaseInsensitiveJson(new): CaseInsensitiveJson<NewTodo>,
) -> Result<Response, ApiError> {
    let todo = todomanager.create(new.text).await?;
    let location = format!("/v1/todo/{}", todo.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(TodoJson::from(todo))).into_response())
}

async fn list_todos(State(todomanager): State<TodoManager>) -> Result<Json<Vec<TodoJson>>, ApiError> {
    let todos = todomanager.list().await?;
    Ok(Json(todos.into_iter().map(TodoJson::from).collect()))
}

async fn get_todo(State(todomanager): State<TodoManager>, TodoId(id): TodoId) -> Result<Json<TodoJson>, ApiError> {
    Ok(Json(todomanager.get(id).await?.into()))
}

/// Changes the text, the done flag, or both; what the body leaves out stays as it was.
async fn update_todo(
    State(todomanager): State<TodoManager>,
    TodoId(id): TodoId,
    CaseInsensitiveJson(changes): CaseInsensitiveJson<TodoChanges>,
) -> Result<Json<TodoJson>, ApiError> {
    if changes.text.is_none() && changes.done.is_none() {
        return Err(ApiError::bad_request("nothing to update: send \"text\", \"done\" or both"));
    }
    let mut todo = todomanager.get(id).await?;
    todo.text = changes.text.unwrap_or(todo.text);
    todo.done = changes.done.unwrap_or(todo.done);
    Ok(Json(todomanager.update(todo).await?.into()))
}

async fn delete_todo(
    State(todomanager): State<TodoManager>,
    TodoId(id): TodoId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let success = todomanager.delete(id).await?;
    Ok(Json(json!({ "success": success })))
}

/// Liveness: the process answers. Says nothing about todomanager, on purpose: restarting
/// apiserver would not bring todomanager back.
async fn ping() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: todomanager answers and its database works.
async fn ready(State(todomanager): State<TodoManager>) -> Result<Json<serde_json::Value>, ApiError> {
    todomanager.ready().await?;
    Ok(Json(json!({ "status": "ready" })))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route; the API is under /v1/todo")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this route")
}

/// The `{id}` of `/v1/todo/{id}`: a positive integer.
struct TodoId(u64);

impl<S: Send + Sync> FromRequestParts<S> for TodoId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
        match raw.parse::<u64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(ApiError::bad_request(format!("id must be a positive integer, got {raw:?}"))),
        }
    }
}
