//! todomanager in this process, on an ephemeral port, over a database of the tests': the one
//! way tests that are not about processes start it.

use std::net::SocketAddr;

use tokio::{net::TcpListener, sync::oneshot};

/// A todomanager serving until dropped (or [`InProcess::stop`]ped).
pub struct InProcess {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcess {
    /// todomanager on `database_url` (with the tests' database timeout), failure injection off.
    pub async fn start(database_url: &str) -> Self {
        let store =
            todomanager::Store::open(database_url, crate::DATABASE_TIMEOUT).await.expect("cannot open the store");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        // The history is written 50 ms after a change: a test reads it soon after.
        let history_window = std::time::Duration::from_millis(50);
        let served = tokio::spawn(todomanager::serve(listener, store, Default::default(), history_window, async {
            let _ = stopped.await;
        }));
        Self { addr, stop, served }
    }

    /// Stops it as a SIGTERM would, and waits until it has finished (its history written).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.served.await.expect("todomanager's task panicked").expect("todomanager failed");
    }

    /// Its address as a gRPC client wants it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
