use std::{net::SocketAddr, time::Duration};

/// todomanager: the gRPC service that stores todos (`todo_mgr.TodoManager`).
#[derive(Debug, Clone, clap::Parser)]
#[command(version, about)]
pub struct Config {
    /// Address to serve gRPC on.
    #[arg(long, env = "TODOMANAGER_LISTEN", default_value = "0.0.0.0:8090")]
    pub listen: SocketAddr,

    /// Address of the `/debug/tracez` page (its own port, so it works when gRPC does not).
    #[arg(long, env = "TRACEZ_LISTEN", default_value = "0.0.0.0:8091")]
    pub tracez_listen: SocketAddr,

    /// Database to store todos in: an SQLite file (created if missing) or a MySQL/MariaDB server,
    /// e.g. mariadb://todo:secret@mariadb:3306/todo (mysql:// for MySQL: the scheme names the
    /// server in the spans, `db.system.name`).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://todo.db?mode=rwc")]
    pub database_url: String,

    /// How long a query waits for a database connection before the RPC fails with UNAVAILABLE.
    #[arg(long, env = "DATABASE_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub database_timeout: Duration,

    /// How long to keep retrying at start-up while the database is not reachable yet
    /// (in a cluster, MariaDB may start after todomanager).
    #[arg(long, env = "DATABASE_WAIT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub database_wait: Duration,

    /// How long the history writer gathers changes before it writes them in one INSERT.
    #[arg(long, env = "HISTORY_WINDOW", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub history_window: Duration,

    #[command(flatten)]
    pub faults: crate::faults::Faults,
}
