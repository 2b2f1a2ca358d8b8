//! The `todo_mgr.TodoManager` gRPC service: checks each request, then asks the store.

use std::pin::Pin;

use proto::{DeleteTodoRes, ListTodosReq, TodoIdReq};
use telemetry::hardening::log_throttle::{Throttle, WARN_EVERY};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::{
    Faults,
    history::{Action, History},
    store::{self, Store, StoreError},
};

/// The longest todo text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;
/// The longest owner name accepted, in characters (the column holds 255).
pub const MAX_OWNER_CHARS: usize = 255;

pub struct TodoService {
    store: Store,
    faults: Faults,
    draws: crate::faults::Draws,
    history: History,
}

impl TodoService {
    pub fn new(store: Store, faults: Faults, history: History) -> Self {
        Self { store, faults, draws: faults.draws(), history }
    }

    /// The store, or for a call that asked for a database failure, the store whose queries
    /// fail (faults.rs).
    fn store_for<T>(&self, request: &Request<T>) -> Store {
        if self.faults.database_fails(request.metadata()) { self.store.failing() } else { self.store.clone() }
    }
}

#[tonic::async_trait]
impl proto::TodoManager for TodoService {
    async fn create_todo(&self, request: Request<proto::Todo>) -> Result<Response<proto::Todo>, Status> {
        let store = self.store_for(&request);
        let todo = request.into_inner();
        let owner = valid_owner(&todo.owner)?;
        let text = valid_text(&todo.text)?;
        let created = store.create(owner, text, todo.done).await?;
        self.history.record(owner, created.id, Action::Created).await;
        Ok(Response::new(created.into()))
    }

    type ListTodosStream = Pin<Box<dyn Stream<Item = Result<proto::Todo, Status>> + Send>>;

    async fn list_todos(&self, request: Request<ListTodosReq>) -> Result<Response<Self::ListTodosStream>, Status> {
        let owner = valid_owner(&request.get_ref().owner)?.to_owned();
        let page = store::Page {
            size: Some(request.get_ref().page_size).filter(|size| *size > 0),
            after_id: i64::try_from(request.get_ref().after_id)
                .map_err(|_| Status::invalid_argument("after_id is beyond the largest id"))?,
        };
        self.faults.maybe_slow_down(request.metadata(), &self.draws).await;
        let todos =
            self.store_for(&request).list(owner, page).map(|row| row.map(proto::Todo::from).map_err(Status::from));
        Ok(Response::new(Box::pin(todos)))
    }

    async fn get_todo(&self, request: Request<TodoIdReq>) -> Result<Response<proto::Todo>, Status> {
        let store = self.store_for(&request);
        let request = request.into_inner();
        let owner = valid_owner(&request.owner)?;
        let todo = store.get(owner, valid_id(request.id)?).await?;
        Ok(Response::new(todo.into()))
    }

    async fn update_todo(&self, request: Request<proto::Todo>) -> Result<Response<proto::Todo>, Status> {
        let store = self.store_for(&request);
        let todo = request.into_inner();
        let owner = valid_owner(&todo.owner)?;
        let changes = changes(&todo)?;
        let updated = store.update(owner, valid_id(todo.id)?, changes).await?;
        self.history.record(owner, updated.id, Action::Updated).await;
        Ok(Response::new(updated.into()))
    }

    async fn delete_todo(&self, request: Request<TodoIdReq>) -> Result<Response<DeleteTodoRes>, Status> {
        let store = self.store_for(&request);
        let request = request.into_inner();
        let owner = valid_owner(&request.owner)?;
        let id = valid_id(request.id)?;
        store.delete(owner, id).await?;
        self.history.record(owner, id, Action::Deleted).await;
        Ok(Response::new(DeleteTodoRes { success: true }))
    }
}

/// The fields an update sets: those its `update_mask` names, or both when it has none (the
/// original contract).
fn changes(todo: &proto::Todo) -> Result<store::Changes<'_>, Status> {
    let paths = todo.update_mask.as_ref().map(|mask| mask.paths.as_slice()).unwrap_or_default();
    let sets = |field: &str| paths.is_empty() || paths.iter().any(|path| path == field);
    if let Some(unknown) = paths.iter().find(|path| !["text", "done"].contains(&path.as_str())) {
        return Err(Status::invalid_argument(format!(
            "update_mask names {unknown:?}; a todo's updatable fields are \"text\" and \"done\""
        )));
    }
    Ok(store::Changes {
        text: if sets("text") { Some(valid_text(&todo.text)?) } else { None },
        done: sets("done").then_some(todo.done),
    })
}

fn valid_text(text: &str) -> Result<&str, Status> {
    if text.trim().is_empty() {
        return Err(Status::invalid_argument("text must not be empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Status::invalid_argument(format!(
            "text is {chars} characters long, the limit is {MAX_TEXT_CHARS}"
        )));
    }
    Ok(text)
}

fn valid_owner(owner: &str) -> Result<&str, Status> {
    if owner.trim().is_empty() {
        return Err(Status::invalid_argument("owner must not be empty"));
    }
    if owner.chars().count() > MAX_OWNER_CHARS {
        return Err(Status::invalid_argument(format!("owner is longer than {MAX_OWNER_CHARS} characters")));
    }
    Ok(owner)
}

/// Ids start at 1; proto3 sends an unset id as 0.
fn valid_id(id: u64) -> Result<i64, Status> {
    match id {
        0 => Err(Status::invalid_argument("id must be set (ids start at 1)")),
        // The database counts in signed 64 bits: a larger id cannot exist.
        id => i64::try_from(id).map_err(|_| Status::not_found(format!("todo {id} not found"))),
    }
}

impl From<store::Todo> for proto::Todo {
    fn from(todo: store::Todo) -> Self {
        Self { id: todo.id as u64, text: todo.text, done: todo.done, owner: todo.owner, update_mask: None }
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound { .. } => Status::not_found(error.to_string()),
            StoreError::Unavailable(_) => {
                // Every request fails during an outage: say it once per interval, not per request.
                static THROTTLE: Throttle = Throttle::new(WARN_EVERY);
                if let Some(held_back) = THROTTLE.allow() {
                    tracing::warn!(%error, held_back, "database unavailable (said at most every 10s)");
                }
                Status::unavailable(error.to_string())
            }
            StoreError::Database(_) | StoreError::Open(_) => {
                static THROTTLE: Throttle = Throttle::new(WARN_EVERY);
                if let Some(held_back) = THROTTLE.allow() {
                    tracing::error!(%error, held_back, "database error (said at most every 10s)");
                }
                Status::internal("the database failed; see todomanager's log")
            }
        }
    }
}
