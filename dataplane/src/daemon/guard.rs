//! The control loop's guard duties: keep the accept trie's known VTEPs and own
//! addresses, the `--learning-from known` set and the overlay device's MAC current.
#![forbid(unsafe_code)]

use crate::afxdp::worker::NO_OWN_MAC;
use crate::fdb::{mac_key, FdbTable};
use crate::guard::{Guard, LearningFrom};
use crate::netlink::Netlink;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the host's addresses and the overlay MAC are read again without a kernel
/// change notification (addresses do not all come with one this loop subscribes to).
const REREAD: Duration = Duration::from_secs(5);

pub(super) struct GuardDuty {
    pub(super) guard: Guard,
    pub(super) learning_from: LearningFrom,
    /// The overlay device (`--name`), whose MAC is "own".
    pub(super) overlay: String,
    /// Where the workers read the overlay MAC from.
    pub(super) own_mac: Arc<AtomicU64>,
    known: BTreeSet<IpAddr>,
    own: BTreeSet<Ipv4Addr>,
    last_read: Option<Instant>,
    dirty: bool,
}

impl GuardDuty {
    pub(super) fn new(guard: Guard, learning_from: LearningFrom, overlay: String, own_mac: Arc<AtomicU64>) -> Self {
        GuardDuty {
            guard,
            learning_from,
            overlay,
            own_mac,
            known: BTreeSet::new(),
            own: BTreeSet::new(),
            last_read: None,
            dirty: true,
        }
    }

    /// The FDB changed: the known VTEPs may have.
    pub(super) fn fdb_changed(&mut self, known: &BTreeSet<IpAddr>, fdb: &FdbTable) {
        if *known != self.known {
            if self.learning_from == LearningFrom::Known {
                fdb.set_learn_sources(Some(known.iter().copied().collect()));
            }
            self.known = known.clone();
            self.dirty = true;
        }
    }

    /// Re-reads the host's addresses and the overlay MAC when `kernel_changed` or
    /// [`REREAD`] passed, and brings the maps up to date. Errors are the caller's to
    /// log: the trie keeps what it had.
    pub(super) fn tick(&mut self, nl: &mut Netlink, kernel_changed: bool) -> Result<()> {
        if kernel_changed || self.last_read.is_none_or(|t| t.elapsed() >= REREAD) {
            self.last_read = Some(Instant::now());
            let own: BTreeSet<Ipv4Addr> =
                nl.local_ipv4_addrs().context("reading the host's addresses")?.into_iter().collect();
            if own != self.own {
                self.own = own;
                self.dirty = true;
            }
            let mac = nl.link(&self.overlay).with_context(|| format!("reading the MAC of {}", self.overlay))?.mac;
            let packed = if mac == [0; 6] { NO_OWN_MAC } else { mac_key(&mac) };
            if self.own_mac.swap(packed, Ordering::Relaxed) != packed && packed != NO_OWN_MAC {
                self.guard.set_own_mac(mac).context("writing the overlay MAC into XDP")?;
            }
        }
        if self.dirty {
            self.guard.sync(&self.known, &self.own).context("writing the --accept list into XDP")?;
            self.dirty = false;
        }
        Ok(())
    }
}
