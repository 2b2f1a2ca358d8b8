//! todomanager in this process, on an ephemeral port, over a database of the tests': the one
//! way tests that are not about processes start it.

use std::net::SocketAddr;

use tokio::{net::TcpListener, sync::oneshot};

/// A todomanager serving until dropped.
pub struct InProcess {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl InProcess {
    /// todomanager on `database_url` (with the tests' database timeout), failure injection off.
    pub async fn start(database_url: &str) -> Self {
        let store =
            todomanager::Store::open(database_url, crate::DATABASE_TIMEOUT).await.expect("cannot open the store");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(todomanager::serve(listener, store, Default::default(), async {
            let _ = stopped.await;
        }));
        Self { addr, _stop: stop }
    }

    /// Its address as a gRPC client wants it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
