//! Where the todos live: an SQLite file by default, MySQL/MariaDB in the cluster.
//!
//! Both backends run the same SQL (`?` placeholders work on both); the schema differs slightly,
//! so each has its own folder of migrations, run at start-up.

use std::{future::Future, str::FromStr, time::Duration};

use opentelemetry::trace::SpanKind;
use sqlx::{
    MySqlPool, SqlitePool,
    mysql::{MySqlConnectOptions, MySqlPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};
use tokio_stream::{Stream, StreamExt};
use tracing::{Instrument, Span, field::Empty};

/// One row of the `todos` table.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Todo {
    pub id: i64,
    pub owner: String,
    pub text: String,
    pub done: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("todo {id} not found")]
    NotFound { id: i64 },
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("the database failed: {0}")]
    Database(#[source] sqlx::Error),
    #[error("cannot open the database: {0}")]
    Open(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        use sqlx::Error::*;
        match error {
            // No connection to be had: the caller may retry later.
            Io(_) | Tls(_) | PoolTimedOut | PoolClosed | WorkerCrashed => Self::Unavailable(error),
            _ => Self::Database(error),
        }
    }
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    MySql(MySqlPool),
}

/// Runs the same sqlx code on whichever backend the store was opened with.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            Pool::Sqlite($p) => $body,
            Pool::MySql($p) => $body,
        }
    };
}

const SELECT_ONE: &str = "SELECT id, owner, text, done FROM todos WHERE id = ? AND owner = ?";
/// A page of the owner's todos: ids after the previous page's last, at most a number of them.
const SELECT_PAGE: &str = "SELECT id, owner, text, done FROM todos WHERE owner = ? AND id > ? ORDER BY id LIMIT ?";

/// A page of a list: at most `size` todos (`None`: all of them) with an id above `after_id`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub size: Option<u32>,
    pub after_id: i64,
}

/// One row of the `todo_history` table: a change to a todo, and the trace of the request that
/// made it (history.rs writes them).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    pub owner: String,
    pub todo_id: i64,
    /// `created`, `updated` or `deleted`.
    pub action: String,
    pub at_unix_ms: i64,
    pub trace_id: String,
}

const SELECT_HISTORY: &str =
    "SELECT owner, todo_id, action, at_unix_ms, trace_id FROM todo_history WHERE owner = ? AND todo_id = ? ORDER BY id";

/// What an update changes; a field left `None` keeps its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes<'a> {
    pub text: Option<&'a str>,
    pub done: Option<bool>,
}

/// The todo database. Cloning it is cheap: clones share one connection pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// Host and port of a database server (none for an SQLite file), for the spans.
    server: Option<(String, u16)>,
    /// `db.system.name`: what the URL's scheme says the server is (MariaDB and MySQL speak
    /// one protocol; the semantic conventions name them apart).
    system: &'static str,
    /// Every query fails, for real: the database rejects a statement in its place (a call
    /// that asked for it with `x-inject-fault: db-error`; see [`Store::failing`]).
    failing: bool,
}

/// What a failing store runs in place of each query: the database rejects it (a column that
/// does not exist), with its own error, as a real mistake in a query would be.
const FAILING_QUERY: &str = "SELECT no_such_column FROM todos";

impl Store {
    /// Opens the database at `url` (`sqlite://todo.db?mode=rwc` , `mysql://user:pass@host/db` or `mariadb://…`)
    /// and brings its schema up to date. `timeout` bounds how long a query waits for a
    /// connection before the database counts as unavailable.
    pub async fn open(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let mut server = None;
        let mut system = "sqlite";
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                // WAL lets readers go on while one connection writes.
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(timeout);
            let pool = SqlitePoolOptions::new().acquire_timeout(timeout).connect_with(options).await?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await.map_err(sqlx::Error::from)?;
            Pool::Sqlite(pool)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            let options = MySqlConnectOptions::from_str(&url.replacen("mariadb:", "mysql:", 1))?;
            server = Some((options.get_host().to_owned(), options.get_port()));
            system = if url.starts_with("mariadb:") { "mariadb" } else { "mysql" };
            let pool = MySqlPoolOptions::new().acquire_timeout(timeout).connect_with(options).await?;
            sqlx::migrate!("migrations/mysql").run(&pool).await.map_err(sqlx::Error::from)?;
            Pool::MySql(pool)
        } else {
            return Err(StoreError::Open(format!(
                "unsupported database URL {url:?}: use sqlite://FILE?mode=rwc or mysql://USER:PASSWORD@HOST/DATABASE"
            )));
        };
        Ok(Self { pool, server, system, failing: false })
    }

    /// This store, with every query failing (failure injection: `X-Inject-Fault: db-error`).
    pub fn failing(&self) -> Self {
        Self { failing: true, ..self.clone() }
    }

    /// The database's answer to [`FAILING_QUERY`]: its error.
    async fn fail(pool: &Pool) -> StoreError {
        match on_pool!(pool, |pool| sqlx::query(FAILING_QUERY).execute(pool).await.map(drop)) {
            Err(error) => error.into(),
            Ok(()) => StoreError::Open(format!("{FAILING_QUERY:?} was expected to fail, and did not")),
        }
    }

    /// Which kind of database this is, for logs and the tracing attribute `db.system.name`.
    pub fn backend(&self) -> &'static str {
        self.system
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, |pool| sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    pub async fn create(&self, owner: &str, text: &str, done: bool) -> Result<Todo, StoreError> {
        const INSERT: &str = "INSERT INTO todos (owner, text, done) VALUES (?, ?, ?)";
        let span = self.span("db-create", "INSERT", "todos", INSERT);
        self.traced(span, async {
            let id = match &self.pool {
                Pool::Sqlite(pool) => {
                    let result = sqlx::query(INSERT).bind(owner).bind(text).bind(done).execute(pool).await?;
                    result.last_insert_rowid()
                }
                Pool::MySql(pool) => {
                    let result = sqlx::query(INSERT).bind(owner).bind(text).bind(done).execute(pool).await?;
                    result.last_insert_id() as i64
                }
            };
            Ok(Todo { id, owner: owner.to_owned(), text: text.to_owned(), done })
        })
        .await
    }

    pub async fn get(&self, owner: &str, id: i64) -> Result<Todo, StoreError> {
        let span = self.span("db-get", "SELECT", "todos", SELECT_ONE);
        let todo = self
            .traced(span, async {
                Ok(on_pool!(&self.pool, |pool| {
                    sqlx::query_as(SELECT_ONE).bind(id).bind(owner).fetch_optional(pool).await
                })?)
            })
            .await?;
        todo.ok_or(StoreError::NotFound { id })
    }

    /// A page of the owner's todos in id order, read from the database while the caller
    /// consumes them.
    pub fn list(&self, owner: String, page: Page) -> impl Stream<Item = Result<Todo, StoreError>> + Send + 'static {
        let span = self.span("db-list", "SELECT", "todos", SELECT_PAGE);
        let pool = self.pool.clone();
        let failing = self.failing;
        let limit = page.size.map_or(i64::MAX, i64::from);
        let rows = async_stream::try_stream! {
            if failing {
                Err(Self::fail(&pool).await)?;
            }
            match pool {
                Pool::Sqlite(pool) => {
                    let mut rows = sqlx::query_as(SELECT_PAGE).bind(&owner).bind(page.after_id).bind(limit).fetch(&pool);
                    while let Some(todo) = rows.try_next().await? { yield todo; }
                }
                Pool::MySql(pool) => {
                    let mut rows = sqlx::query_as(SELECT_PAGE).bind(&owner).bind(page.after_id).bind(limit).fetch(&pool);
                    while let Some(todo) = rows.try_next().await? { yield todo; }
                }
            }
        };
        // The span lasts as long as the caller reads the rows. An error is recorded while the
        // stream is polled, inside the span (no second handle that would keep it open).
        let rows = rows.map(|row: Result<Todo, StoreError>| {
            if let Err(error) = &row {
                record_error(&Span::current(), error);
            }
            row
        });
        telemetry::InSpan::new(rows, span)
    }

    /// Changes the text, the done flag or both of the owner's todo `id`, in one statement: two
    /// updates of different fields at the same time both take effect (no read-modify-write).
    pub async fn update(&self, owner: &str, id: i64, changes: Changes<'_>) -> Result<Todo, StoreError> {
        const UPDATE: &str =
            "UPDATE todos SET text = COALESCE(?, text), done = COALESCE(?, done) WHERE id = ? AND owner = ?";
        let Changes { text, done } = changes;
        // MySQL counts only rows whose values changed, so "0 rows affected" does not mean
        // "not found": read the row back in the same transaction instead.
        let span = self.span("db-update", "UPDATE", "todos", UPDATE);
        let todo: Option<Todo> = self
            .traced(span, async {
                Ok(on_pool!(&self.pool, |pool| {
                    let mut tx = pool.begin().await?;
                    sqlx::query(UPDATE).bind(text).bind(done).bind(id).bind(owner).execute(&mut *tx).await?;
                    let todo = sqlx::query_as(SELECT_ONE).bind(id).bind(owner).fetch_optional(&mut *tx).await?;
                    tx.commit().await?;
                    todo
                }))
            })
            .await?;
        todo.ok_or(StoreError::NotFound { id })
    }

    pub async fn delete(&self, owner: &str, id: i64) -> Result<(), StoreError> {
        const DELETE: &str = "DELETE FROM todos WHERE id = ? AND owner = ?";
        let span = self.span("db-delete", "DELETE", "todos", DELETE);
        let deleted = self
            .traced(span, async {
                Ok(on_pool!(&self.pool, |pool| {
                    sqlx::query(DELETE).bind(id).bind(owner).execute(pool).await?.rows_affected()
                }))
            })
            .await?;
        if deleted == 0 { Err(StoreError::NotFound { id }) } else { Ok(()) }
    }
}

/// The history of the todos (history.rs writes it).
impl Store {
    /// Writes these rows of history, in one INSERT.
    pub async fn append_history(&self, rows: &[HistoryRow]) -> Result<(), StoreError> {
        const INSERT: &str =
            "INSERT INTO todo_history (owner, todo_id, action, at_unix_ms, trace_id) VALUES (?, ?, ?, ?, ?), …";
        if rows.is_empty() {
            return Ok(());
        }
        let span = self.span("db-history-write", "INSERT", "todo_history", INSERT);
        self.traced(span, async {
            on_pool!(&self.pool, |pool| {
                let mut insert =
                    sqlx::QueryBuilder::new("INSERT INTO todo_history (owner, todo_id, action, at_unix_ms, trace_id) ");
                insert.push_values(rows, |mut values, row| {
                    values
                        .push_bind(row.owner.clone())
                        .push_bind(row.todo_id)
                        .push_bind(row.action.clone())
                        .push_bind(row.at_unix_ms)
                        .push_bind(row.trace_id.clone());
                });
                insert.build().execute(pool).await?;
            });
            Ok(())
        })
        .await
    }

    /// The history of one todo, oldest change first.
    pub async fn history(&self, owner: &str, todo_id: i64) -> Result<Vec<HistoryRow>, StoreError> {
        let span = self.span("db-history", "SELECT", "todo_history", SELECT_HISTORY);
        self.traced(span, async {
            Ok(on_pool!(&self.pool, |pool| {
                sqlx::query_as(SELECT_HISTORY).bind(owner).bind(todo_id).fetch_all(pool).await
            })?)
        })
        .await
    }
}

impl Store {
    /// A CLIENT span for one database operation, named as in the workshop's chapters
    /// (`db-create`, `db-list`, …), with the query's text but never its values.
    fn span(&self, name: &'static str, operation: &'static str, table: &'static str, query: &'static str) -> Span {
        tracing::info_span!(
            "database operation",
            otel.name = name,
            otel.kind = ?SpanKind::Client,
            db.system.name = self.backend(),
            db.operation.name = operation,
            db.collection.name = table,
            db.query.text = query,
            server.address = self.server.as_ref().map(|(host, _)| host.as_str()),
            server.port = self.server.as_ref().map(|(_, port)| port),
            otel.status_code = Empty,
            otel.status_description = Empty,
            error.type = Empty,
        )
    }
}

impl Store {
    /// Runs `work` inside `span` (or, when this store is failing, the query that fails) and
    /// records a failure on it.
    async fn traced<T>(&self, span: Span, work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let result = if self.failing {
            Err(Self::fail(&self.pool).instrument(span.clone()).await)
        } else {
            work.instrument(span.clone()).await
        };
        if let Err(error) = &result {
            record_error(&span, error);
        }
        result
    }
}

/// Marks the database span of a failed operation. A missing row is an answer, not a database
/// error; the others say what kind of failure it was, and the database's own message.
fn record_error(span: &Span, error: &StoreError) {
    let kind = match error {
        StoreError::NotFound { .. } => return,
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Database(_) | StoreError::Open(_) => "database_error",
    };
    telemetry::status::record_error(span, kind);
    span.record("otel.status_description", error.to_string());
}
