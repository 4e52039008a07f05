//! Reporting the MACs seen behind the overlay device (frames vxdp encapsulates come
//! from local endpoints), for the Consul advertiser.
//!
//! Each worker keeps a small direct-mapped cache of MACs it reported recently and pushes
//! a MAC into a bounded lock-free queue only when it is new or its last report is older
//! than [`REFRESH_SECS`]: per frame that is one multiply and one compare, and the queue
//! sees a few pushes per MAC per minute. A full queue drops the report (the next frame
//! after the refresh interval reports again).
#![forbid(unsafe_code)]

use crate::fdb::mac_key;
use crate::wire::ethernet;
use crossbeam_queue::ArrayQueue;
use std::sync::Arc;

/// The queue between the workers and the advertiser feed.
pub type LocalMacQueue = ArrayQueue<[u8; 6]>;

/// Seconds after which a MAC is reported again (keeps the advertiser's ageing fresh).
pub const REFRESH_SECS: u32 = 10;
const SLOTS: usize = 1024;

/// A worker's reporter.
pub struct Reporter {
    cache: Box<[(u64, u32)]>,
    queue: Arc<LocalMacQueue>,
}

impl Reporter {
    pub fn new(queue: Arc<LocalMacQueue>) -> Reporter {
        Reporter { cache: vec![(0, 0); SLOTS].into_boxed_slice(), queue }
    }

    /// A frame from `mac` left through the overlay at `now_secs`.
    #[inline]
    pub fn seen(&mut self, mac: &[u8; 6], now_secs: u32) {
        if !ethernet::is_unicast(mac) {
            return;
        }
        let key = mac_key(mac) | 1 << 63; // never 0, the empty slot
        let slot = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize & (SLOTS - 1);
        let e = &mut self.cache[slot];
        if e.0 == key && now_secs.wrapping_sub(e.1) < REFRESH_SECS {
            return;
        }
        *e = (key, now_secs);
        let _ = self.queue.push(*mac);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_new_macs_once_per_refresh_interval() {
        let q = Arc::new(LocalMacQueue::new(16));
        let mut r = Reporter::new(q.clone());
        let a = [2, 0, 0, 0, 0, 1];
        r.seen(&a, 100);
        r.seen(&a, 101);
        r.seen(&[0xff; 6], 101);
        r.seen(&[1, 0, 0x5e, 0, 0, 1], 101);
        assert_eq!(q.len(), 1);
        r.seen(&a, 100 + REFRESH_SECS);
        assert_eq!(q.len(), 2);
        r.seen(&[2, 0, 0, 0, 0, 2], 111);
        assert_eq!(q.len(), 3);
    }
}
