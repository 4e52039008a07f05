//! Consul as a [`Store`]: blocking queries on the prefix (every answer a full listing),
//! sessions with a TTL and `Behavior=delete` as leases, `?acquire=` for writes under a
//! session and `?cas=` for deletes of one version. Follows Consul's documented rules
//! for blocking queries (<https://developer.hashicorp.com/consul/api-docs/features/blocking>):
//! an index that goes backwards (snapshot restore, new cluster) resets to 0, an index
//! below 1 is treated as 1.

use super::{Held, Lease, Poll, Store, StoreError, Update};
use crate::consul::{Client, Consistency, ConsulConfig, ConsulError};
use std::time::Duration;

/// With `stale` reads, how long after writing a key a listing may still lack it
/// before the key counts as missing.
pub const STALE_GRACE: Duration = Duration::from_secs(2);

/// A Consul client and the index its next blocking query waits on.
pub struct ConsulStore {
    client: Client,
    index: u64,
}

impl ConsulStore {
    pub fn new(cfg: ConsulConfig) -> Result<ConsulStore, ConsulError> {
        Ok(ConsulStore { client: Client::new(cfg)?, index: 0 })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl From<Client> for ConsulStore {
    fn from(client: Client) -> ConsulStore {
        ConsulStore { client, index: 0 }
    }
}

fn store_error(e: ConsulError) -> StoreError {
    match e {
        ConsulError::Transport(t) => StoreError::Unreachable(t),
        // Consul answers 500 "invalid session" when a write names a session it lost.
        ConsulError::Status { status: 500, body } if body.to_ascii_lowercase().contains("session") => {
            StoreError::SessionLost(body)
        }
        ConsulError::Decode(d) => StoreError::Decode(d),
        e => StoreError::Refused(e.to_string()),
    }
}

impl Store for ConsulStore {
    fn kind(&self) -> &'static str {
        "consul"
    }

    fn endpoint(&self) -> String {
        self.client.config().address.clone()
    }

    fn poll(&mut self, prefix: &str, resync: bool, wait: Duration) -> Result<Poll, StoreError> {
        if resync {
            self.index = 0;
        }
        let listing = match self.client.kv_list(prefix, self.index, wait) {
            Ok(l) => l,
            Err(e) => {
                self.index = 0;
                return Err(store_error(e));
            }
        };
        let mut reset = None;
        self.index = if listing.index < self.index {
            reset = Some(format!("index went backwards ({} -> {}), resetting", self.index, listing.index));
            0
        } else {
            listing.index.max(1)
        };
        let pairs = listing.pairs.into_iter().map(|p| (p.key, p.value)).collect();
        Ok(Poll { update: Update::Full(pairs), reset })
    }

    fn get(&mut self, key: &str) -> Result<Option<Held>, StoreError> {
        let p = self.client.kv_get(key).map_err(store_error)?;
        Ok(p.map(|p| Held { value: p.value, owner: p.session.map(Lease), version: p.modify_index }))
    }

    fn put(&mut self, key: &str, value: &[u8], lease: Option<&Lease>) -> Result<bool, StoreError> {
        self.client.kv_put(key, value, lease.map(|l| l.0.as_str()), None).map_err(store_error)
    }

    fn delete(&mut self, key: &str, version: Option<u64>) -> Result<bool, StoreError> {
        self.client.kv_delete(key, version).map_err(store_error)
    }

    fn lease_grant(&mut self, name: &str, ttl: Duration) -> Result<Lease, StoreError> {
        self.client.session_create(name, ttl).map(Lease).map_err(store_error)
    }

    fn lease_renew(&mut self, lease: &Lease) -> Result<bool, StoreError> {
        self.client.session_renew(&lease.0).map_err(store_error)
    }

    fn lease_revoke(&mut self, lease: &Lease) -> Result<(), StoreError> {
        self.client.session_destroy(&lease.0).map(|_| ()).map_err(store_error)
    }

    fn read_lag(&self) -> Duration {
        if self.client.config().consistency == Consistency::Stale {
            STALE_GRACE
        } else {
            Duration::ZERO
        }
    }
}
