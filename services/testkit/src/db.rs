//! Databases for tests: every storage test runs on SQLite, and on MySQL/MariaDB when one is at hand.
//!
//! MySQL/MariaDB comes from `TODO_TEST_MYSQL_URL` (CI sets it; the user needs the right to create
//! databases), else from a throw-away container when a Docker engine answers. Where neither is
//! available the MySQL tests are skipped, and that is said on the terminal, not hidden.

use std::{
    io::Write,
    sync::{
        Once,
        atomic::{AtomicUsize, Ordering},
    },
};

use sqlx::{Connection, MySqlConnection};
use testcontainers_modules::{
    mariadb::Mariadb,
    testcontainers::{ContainerAsync, runners::AsyncRunner},
};

/// The environment variable naming a MySQL/MariaDB server for the tests.
pub const MYSQL_URL_VAR: &str = "TODO_TEST_MYSQL_URL";

/// The database timeout tests give todomanager's store (connecting and each statement).
/// Short enough that an outage test sees UNAVAILABLE within seconds, long enough that opening
/// a SQLite file on a loaded 2-core CI machine never times out: 500 ms did (`PoolTimedOut`
/// while eleven tests ran at once).
pub const DATABASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A database of its own for one test. Dropping it removes the SQLite file, the container or
/// the test database on the shared MySQL/MariaDB server.
pub struct TestDb {
    /// The URL todomanager opens, e.g. `sqlite:///tmp/.../todo.db?mode=rwc`.
    pub url: String,
    /// `sqlite` or `mysql`, for assertion messages.
    pub backend: &'static str,
    _keep: Keep,
}

#[allow(dead_code)] // held only so that dropping the TestDb cleans up
enum Keep {
    Dir(tempfile::TempDir),
    Container(Box<ContainerAsync<Mariadb>>),
    /// A database on a shared server: dropped when the test ends.
    Database {
        server_url: String,
        name: String,
    },
}

impl Drop for Keep {
    fn drop(&mut self) {
        let Keep::Database { server_url, name } = self else { return };
        let (server_url, name) = (server_url.clone(), name.clone());
        // Drop runs outside any runtime, or inside one that must not block: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut connection = MySqlConnection::connect(&server_url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                    .execute(&mut connection)
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            let _ = writeln!(std::io::stderr(), "could not drop the test database: {error}");
        }
    }
}

/// A fresh SQLite file in a temporary folder.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("cannot create a temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("todo.db").display());
    TestDb { url, backend: "sqlite", _keep: Keep::Dir(dir) }
}

/// A fresh, empty MySQL/MariaDB database, or `None` (said loudly) when none can be had.
pub async fn mysql() -> Option<TestDb> {
    if let Ok(server_url) = std::env::var(MYSQL_URL_VAR) {
        let (url, name) = create_database(&server_url).await;
        return Some(TestDb { url, backend: "mysql", _keep: Keep::Database { server_url, name } });
    }
    if !docker_available() {
        say_skipped(&format!("{MYSQL_URL_VAR} is not set and no Docker engine answers"));
        return None;
    }
    match Mariadb::default().start().await {
        Ok(container) => {
            let port = container.get_host_port_ipv4(3306).await.expect("MariaDB container has no port 3306");
            let (url, _) = create_database(&format!("mysql://root@127.0.0.1:{port}/test")).await;
            Some(TestDb { url, backend: "mysql", _keep: Keep::Container(Box::new(container)) })
        }
        Err(error) => {
            say_skipped(&format!("{MYSQL_URL_VAR} is not set and the MariaDB container did not start: {error}"));
            None
        }
    }
}

/// Every backend available here: SQLite always, MySQL/MariaDB when possible.
pub async fn all_backends() -> Vec<TestDb> {
    let mut databases = vec![sqlite()];
    databases.extend(mysql().await);
    databases
}

/// Creates an empty database with a unique name on the server; returns its URL and name.
async fn create_database(server_url: &str) -> (String, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!("todo_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut connection = MySqlConnection::connect(server_url)
        .await
        .unwrap_or_else(|error| panic!("{MYSQL_URL_VAR}={server_url} is set but cannot be reached: {error}"));
    // The name is ours (letters, digits, underscores): safe to splice into SQL.
    let sql = format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("cannot create database {name} on {server_url}: {error}"));
    (with_database(server_url, &name), name)
}

/// `mysql://u:p@host:3306/old?x=y` with the database `name` in place of `old`.
fn with_database(server_url: &str, name: &str) -> String {
    let (base, query) = server_url.split_once('?').map_or((server_url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn docker_available() -> bool {
    std::env::var_os("DOCKER_HOST").is_some() || std::path::Path::new("/var/run/docker.sock").exists()
}

/// Written straight to the terminal: `cargo test` hides what passing tests print with `eprintln!`.
fn say_skipped(reason: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** MySQL/MariaDB tests SKIPPED: {reason}.\n*** Only SQLite was tested. \
             Set {MYSQL_URL_VAR}=mysql://USER:PASSWORD@127.0.0.1:3306/mysql to test MariaDB too.\n"
        );
    });
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_in_a_url() {
        assert_eq!(with_database("mysql://u:p@h:3306/mysql", "t1"), "mysql://u:p@h:3306/t1");
        assert_eq!(with_database("mysql://u:p@h:3306", "t1"), "mysql://u:p@h:3306/t1");
        assert_eq!(with_database("mysql://u@h/x?ssl-mode=disabled", "t1"), "mysql://u@h/t1?ssl-mode=disabled");
    }
}
