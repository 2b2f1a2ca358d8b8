//! A TCP relay that a test can cut and restore, to make network faults happen on cue.

use std::net::SocketAddr;

use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// Forwards connections from its own address to `target` until [`Relay::cut`] is called.
/// While cut, open connections are dropped and new ones are accepted but never answered,
/// like a host that went away: callers see resets and timeouts, not a polite refusal.
pub struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("cannot bind the relay");
        let addr = listener.local_addr().expect("relay has no address");
        let (cut, cut_watch) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(relay_one(inbound, target, cut_watch.clone()));
            }
        });
        Self { addr, cut, task }
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay_one(mut inbound: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    if *cut.borrow() {
        // Hold the connection silently until the relay is restored, then drop it.
        let _ = cut.wait_for(|cut| !cut).await;
        return;
    }
    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}
