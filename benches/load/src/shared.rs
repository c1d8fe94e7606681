//! State shared by the publisher and the receiver threads, lock-free on the
//! per-packet path: the send time of every publisher packet indexed by its
//! 16-bit sequence number, and the measurement window.
//!
//! Invariants: times are nanoseconds since `base` (0 = never sent); the payload
//! hash map is touched only for authenticated samples, never per packet.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};


pub struct Shared {
    pub base: Instant,
    send_ns: [Vec<AtomicU64>; 2],
    by_hash: Mutex<HashMap<u64, (usize, u16)>>,
    window: [AtomicU64; 2],
    pub published: [AtomicU64; 2],
    pub stop: AtomicBool,
}

pub fn payload_hash(payload: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

impl Shared {
    /// No measurement window until `set_window`.
    pub fn new(base: Instant) -> Shared {
        let slots = || (0..65536).map(|_| AtomicU64::new(0)).collect();
        Shared {
            base,
            send_ns: [slots(), slots()],
            by_hash: Mutex::new(HashMap::new()),
            window: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
            published: [AtomicU64::new(0), AtomicU64::new(0)],
            stop: AtomicBool::new(false),
        }
    }

    pub fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// Packets sent from `start` for `len` are the ones measured.
    pub fn set_window(&self, start: Instant, len: Duration) {
        let t0 = self.ns(start);
        self.window[1].store(t0 + len.as_nanos() as u64, Relaxed);
        self.window[0].store(t0, Relaxed);
    }

    pub fn in_window(&self, ns: u64) -> bool {
        ns >= self.window[0].load(Relaxed) && ns < self.window[1].load(Relaxed)
    }

    /// The publisher sent packet `seq` of `kind` (payload hashed) at `at`.
    pub fn sent(&self, kind: usize, seq: u16, hash: u64, at: Instant) {
        let ns = self.ns(at).max(1);
        self.send_ns[kind][seq as usize].store(ns, Relaxed);
        if self.in_window(ns) {
            self.published[kind].fetch_add(1, Relaxed);
        }
        let mut map = self.by_hash.lock().expect("no thread panics while holding this lock");
        if map.len() > 200_000 {
            map.clear();
        }
        map.insert(hash, (kind, seq));
    }

    pub fn send_time(&self, kind: usize, seq: u16) -> u64 {
        self.send_ns[kind][seq as usize].load(Relaxed)
    }

    pub fn lookup(&self, hash: u64) -> Option<(usize, u16)> {
        self.by_hash.lock().expect("no thread panics while holding this lock").get(&hash).copied()
    }
}
