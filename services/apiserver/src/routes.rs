//! The REST API: `/v1/todo` for todos, `/ping` for liveness, `/ready` for readiness.

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State, rejection::QueryRejection},
    http::{
        StatusCode,
        header::{LINK, LOCATION},
        request::Parts,
    },
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument as _;

use crate::{
    error::ApiError,
    faults::Faults,
    json::{CaseInsensitiveJson, MAX_BODY_BYTES},
    todomanager::TodoManager,
};

pub fn router(todomanager: TodoManager, faults: Faults) -> Router {
    Router::new()
        .route("/v1/todo", get(list_todos).post(create_todo).delete(clear_done))
        .route("/v1/todo/{id}", get(get_todo).put(update_todo).delete(delete_todo))
        .route("/ping", get(ping))
        .route("/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(crate::faults::Injector::new(faults), crate::faults::inject))
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
    #[serde(default)]
    done: bool,
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
    let todo = todomanager.create(new.text, new.done).await?;
    let location = format!("/v1/todo/{}", todo.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(TodoJson::from(todo))).into_response())
}

/// Todos per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The most todos one page holds; a larger `page_size` is lowered to it (as Google's AIP-158
/// asks).
pub const MAX_PAGE_SIZE: u32 = 1000;

/// `?page_size=N&page_token=T`, both optional.
#[derive(Debug, Deserialize)]
struct PageQuery {
    page_size: Option<String>,
    page_token: Option<String>,
}

/// A page of todos, in id order, as a JSON array. When there are more, the `Link` header
/// names the next page (`<…?page_size=N&page_token=T>; rel="next"`, RFC 8288, as GitHub's API
/// does), so the body stays the plain array clients of the original service expect.
async fn list_todos(
    State(todomanager): State<TodoManager>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let page_size = match query.page_size.as_deref() {
        None | Some("") => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<u32>() {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
            Err(_) => return Err(ApiError::bad_request(format!("page_size must be a whole number, got {text:?}"))),
        },
    };
    // The token is the last id of the previous page; clients should treat it as opaque.
    let after_id = match query.page_token.as_deref() {
        None | Some("") => 0,
        Some(token) => canonical_id(token)
            .ok_or_else(|| ApiError::bad_request(format!("page_token {token:?} is not one this API gave out")))?,
    };
    // One more than asked: whether it comes tells if there is a next page.
    let mut todos = todomanager.list(page_size + 1, after_id).await?;
    let next = (todos.len() > page_size as usize).then(|| {
        todos.truncate(page_size as usize);
        format!("</v1/todo?page_size={page_size}&page_token={}>; rel=\"next\"", todos.last().map_or(0, |todo| todo.id))
    });
    let body = Json(todos.into_iter().map(TodoJson::from).collect::<Vec<_>>());
    Ok(match next {
        Some(link) => ([(LINK, link)], body).into_response(),
        None => body.into_response(),
    })
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
    Ok(Json(todomanager.update(id, changes.text, changes.done).await?.into()))
}

async fn delete_todo(
    State(todomanager): State<TodoManager>,
    TodoId(id): TodoId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let success = todomanager.delete(id).await?;
    Ok(Json(json!({ "success": success })))
}

/// `?done=true`: which todos `DELETE /v1/todo` deletes.
#[derive(Debug, Deserialize)]
struct ClearQuery {
    done: Option<String>,
}

/// The most deletes `DELETE /v1/todo?done=true` has in flight at once.
const PARALLEL_DELETES: usize = 8;

/// `DELETE /v1/todo?done=true` deletes the finished todos ("Clear completed") and answers how
/// many: `{"deleted": N}`. Each delete is a gRPC call of its own, run in parallel on tokio
/// tasks.
async fn clear_done(
    State(todomanager): State<TodoManager>,
    query: Result<Query<ClearQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    if query.done.as_deref() != Some("true") {
        return Err(ApiError::bad_request(
            "say which todos to delete: DELETE /v1/todo?done=true deletes the finished ones",
        ));
    }
    let finished = todomanager.finished().await?;
    let mut deletes = tokio::task::JoinSet::new();
    let mut deleted = 0;
    for id in finished {
        if deletes.len() == PARALLEL_DELETES {
            deleted += deleted_by(deletes.join_next().await)?;
        }
        let todomanager = todomanager.clone();
        // A task of its own starts with no current span: hand it the request's, or its gRPC
        // call becomes the root of a trace of its own.
        deletes.spawn(async move { todomanager.delete(id).await }.in_current_span());
    }
    while let Some(joined) = deletes.join_next().await {
        deleted += deleted_by(Some(joined))?;
    }
    Ok(Json(json!({ "deleted": deleted })))
}

/// 1 when the delete deleted the todo, 0 when it was gone already (deleted meanwhile).
fn deleted_by(joined: Option<Result<Result<bool, ApiError>, tokio::task::JoinError>>) -> Result<u64, ApiError> {
    match joined {
        None => Ok(0),
        Some(Err(error)) => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("a delete failed: {error}"))),
        Some(Ok(Ok(deleted))) => Ok(u64::from(deleted)),
        Some(Ok(Err(error))) if error.status == StatusCode::NOT_FOUND => Ok(0),
        Some(Ok(Err(error))) => Err(error),
    }
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
        match canonical_id(&raw) {
            Some(id) => Ok(Self(id)),
            None => Err(ApiError::bad_request(format!(
                "id must be a positive integer written as the API writes it (no sign, no leading zero), got {raw:?}"
            ))),
        }
    }
}

/// A positive id written the one way the API writes ids: digits only, no sign, no leading zero
/// (so `+1` and `01` are not a second name for todo 1).
fn canonical_id(text: &str) -> Option<u64> {
    let digits_only = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if !digits_only || text.starts_with('0') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::canonical_id;

    #[test]
    fn ids_have_one_spelling() {
        assert_eq!(canonical_id("1"), Some(1));
        assert_eq!(canonical_id("18446744073709551615"), Some(u64::MAX));
        for alias in ["+1", "01", "0", "", " 1", "1.0", "-1", "18446744073709551616", "١"] {
            assert_eq!(canonical_id(alias), None, "{alias:?}");
        }
    }
}
