use std::{net::SocketAddr, time::Duration};

/// apiserver: the REST API for todos (`/v1/todo`), backed by todomanager over gRPC.
#[derive(Debug, Clone, clap::Parser)]
#[command(version, about)]
pub struct Config {
    /// Address to serve HTTP on.
    #[arg(long, env = "APISERVER_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Address of the `/debug/tracez` page (its own port, so it works when the API does not).
    #[arg(long, env = "TRACEZ_LISTEN", default_value = "0.0.0.0:8081")]
    pub tracez_listen: SocketAddr,

    /// Where todomanager serves gRPC.
    #[arg(long, env = "TODOMANAGER_URL", default_value = "http://127.0.0.1:8090")]
    pub todomanager_url: String,

    /// How long to wait for todomanager before answering 504 Gateway Timeout.
    #[arg(long, env = "TODOMANAGER_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub todomanager_timeout: Duration,

    #[command(flatten)]
    pub limits: crate::server::Limits,

    #[command(flatten)]
    pub faults: crate::faults::Faults,
}
