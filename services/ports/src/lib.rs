//! Free ports on 127.0.0.1, each handed out once per process.
//!
//! Binding port 0 and closing the listener gives a port nobody uses right now, but the system
//! may hand the same port out again at the next bind: two servers told to share it fail to
//! start (it happened: apiserver's tracez on the trace store's OTLP port). So every port handed
//! out, or claimed by a server started on a fixed one, is remembered and never handed out again.

use std::{
    collections::BTreeSet,
    io,
    net::{SocketAddr, TcpListener},
    sync::Mutex,
};

static CLAIMED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port on 127.0.0.1 that nobody uses right now and that this process has not handed out
/// (or [`claim`]ed) before.
pub fn free_address() -> io::Result<SocketAddr> {
    loop {
        let address = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        if newly_claimed(address) {
            return Ok(address);
        }
    }
}

/// `address`, which [`free_address`] will not hand out from now on (a server's fixed port).
pub fn claim(address: SocketAddr) -> SocketAddr {
    newly_claimed(address);
    address
}

fn newly_claimed(address: SocketAddr) -> bool {
    CLAIMED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(address.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_addresses_are_never_handed_out_twice() {
        let mut seen = BTreeSet::new();
        for _ in 0..500 {
            let address = free_address().unwrap();
            // The listener is closed as soon as the port is handed out: the system may give it
            // again, and only the memory of what was handed out keeps it from us.
            assert!(seen.insert(address.port()), "port {} handed out twice", address.port());
        }
    }

    #[test]
    fn a_claimed_port_is_not_handed_out() {
        let claimed = claim(free_address().unwrap());
        for _ in 0..200 {
            assert_ne!(free_address().unwrap().port(), claimed.port());
        }
        assert!(!newly_claimed(claimed), "a claimed port stays claimed");
    }
}
