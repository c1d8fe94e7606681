//! State shared by a [`crate::TrackRecorder`], its [`crate::PacketSender`]s, its feeder
//! thread and GStreamer's streaming threads (bus sync handler, pad probes).
//!
//! Invariants:
//! - Counters only grow. No lock is taken on the packet path ([`Shared::count_push`] and
//!   friends are atomics); the mutexes are touched once per written fragment or per event.
//! - The first fault wins and stays; the end state (EOS or error) is set once and wakes
//!   whoever waits in [`Shared::wait_end`].
//! - Events are sent with `try_send`: a full or unread event channel never blocks a
//!   streaming thread.
//! - A poisoned mutex is recovered, never unwrapped: nothing here panics.
//! - Once `gap` is set it stays set: no packet after a gap enters the part.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::track::{TrackEvent, TrackStats};

/// How a pipeline ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Eos,
    Error,
}

/// Media written to the file so far, in lesson time (running time).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Span {
    pub start: Option<Duration>,
    pub end: Option<Duration>,
}

impl Span {
    /// From the first written media to the end of the last (0 if none).
    pub fn duration(&self) -> Duration {
        match (self.start, self.end) {
            (Some(s), Some(e)) => e.saturating_sub(s),
            _ => Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct Progress {
    span: Span,
    end: Option<End>,
    fault: Option<String>,
}

pub(crate) struct Shared {
    pub packets: AtomicU64,
    pub dropped: AtomicU64,
    pub invalid: AtomicU64,
    pub bytes_written: AtomicU64,
    pub keyframe_requests: AtomicU64,
    pub closed: AtomicBool,
    /// Set with the first fault: the feeder stops feeding a failed pipeline.
    pub failed: AtomicBool,
    /// Packets resumed after a gap longer than `MAX_GAP`: no later packet enters this part.
    pub gap: AtomicBool,
    /// Arrival (ns + 1; 0 = none yet) of the latest packet taken by a sender.
    last_arrival: AtomicU64,
    progress: Mutex<Progress>,
    changed: Condvar,
    events: Sender<TrackEvent>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(events: Sender<TrackEvent>) -> Shared {
        Shared {
            packets: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            gap: AtomicBool::new(false),
            last_arrival: AtomicU64::new(0),
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
            events,
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Bytes handed to the file, and the media span they cover (`None` for headers).
    pub fn record_written(&self, bytes: u64, media: Option<(Duration, Duration)>) {
        self.bytes_written.fetch_add(bytes, Ordering::Relaxed);
        let Some((start, end)) = media else { return };
        let mut p = lock(&self.progress);
        p.span.start = Some(p.span.start.map_or(start, |s| s.min(start)));
        p.span.end = Some(p.span.end.map_or(end, |e| e.max(end)));
        drop(p);
        self.changed.notify_all();
    }

    /// Whether a packet arriving at `arrival` still belongs to this part: false once one
    /// came more than `max_gap` after the latest packet taken (then for every packet).
    pub fn continues(&self, arrival: Duration, max_gap: Duration) -> bool {
        if self.gap.load(Ordering::Relaxed) {
            return false;
        }
        let last = self.last_arrival.load(Ordering::Relaxed);
        let ns = arrival.as_nanos() as u64 + 1;
        if last != 0 && ns > last.saturating_add(max_gap.as_nanos() as u64) {
            self.gap.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// A packet arriving at `arrival` was taken.
    pub fn taken(&self, arrival: Duration) {
        self.last_arrival
            .fetch_max(arrival.as_nanos() as u64 + 1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> TrackStats {
        TrackStats {
            packets: Self::get(&self.packets),
            dropped: Self::get(&self.dropped),
            invalid: Self::get(&self.invalid),
            bytes_written: Self::get(&self.bytes_written),
            keyframe_requests: Self::get(&self.keyframe_requests),
            written_until: self.span().end,
        }
    }

    pub fn span(&self) -> Span {
        lock(&self.progress).span
    }

    pub fn keyframe_wanted(&self) {
        Self::bump(&self.keyframe_requests);
        let _ = self.events.try_send(TrackEvent::KeyframeWanted);
    }

    /// Records a fault (the first one is kept) and ends the pipeline's life as an error.
    pub fn record_fault(&self, message: String) {
        self.failed.store(true, Ordering::Relaxed);
        let mut p = lock(&self.progress);
        if p.fault.is_none() {
            p.fault = Some(message.clone());
            let _ = self.events.try_send(TrackEvent::Fault(message));
        }
        p.end.get_or_insert(End::Error);
        drop(p);
        self.changed.notify_all();
    }

    pub fn record_eos(&self) {
        lock(&self.progress).end.get_or_insert(End::Eos);
        self.changed.notify_all();
    }

    pub fn fault(&self) -> Option<String> {
        lock(&self.progress).fault.clone()
    }

    /// Waits until the pipeline ended (EOS or error) or `timeout` passed.
    pub fn wait_end(&self, timeout: Duration) -> Option<End> {
        self.wait_for(timeout, |p| p.end)
    }

    /// Waits until media up to `until` is in the file; false on timeout or pipeline end.
    pub fn wait_written(&self, until: Duration, timeout: Duration) -> bool {
        let reached = |p: &Progress| p.span.end.is_some_and(|e| e >= until);
        self.wait_for(timeout, |p| {
            (reached(p) || p.end.is_some()).then(|| reached(p))
        })
        .unwrap_or(false)
    }

    /// Waits until `check` returns `Some`, or `timeout` passed (then `None`).
    fn wait_for<T>(&self, timeout: Duration, check: impl Fn(&Progress) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut p = lock(&self.progress);
        loop {
            if let Some(v) = check(&p) {
                return Some(v);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            p = self
                .changed
                .wait_timeout(p, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
