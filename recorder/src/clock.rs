//! `ArrivalClock`: a GStreamer clock whose time is the arrival time of the latest packet
//! (time since lesson start). The feeder thread moves it; nothing else does.
//!
//! Why: rtpjitterbuffer (and the muxer, in live mode) wait on the pipeline clock. Driving
//! that clock with packet arrivals makes a recording a pure function of the packets and
//! their arrival times: the same in production (real-time arrivals) and in tests (packets
//! pushed as fast as possible), with no dependence on scheduling or wall-clock time.
//!
//! Invariants:
//! - Time only moves forward ([`ArrivalClock::advance_to`] ignores earlier times).
//! - A synchronous wait returns as soon as the time reaches the entry's time (`Early` if it
//!   already had), or when the entry is unscheduled; asynchronous entries fire from
//!   `advance_to`, on the feeder thread, outside the lock.
//! - No wait is lost: waiters check their condition under the lock, and both `advance_to`
//!   and `unschedule` take the lock before notifying.

use gst::glib;
use gst::subclass::prelude::*;

glib::wrapper! {
    pub struct ArrivalClock(ObjectSubclass<imp::ArrivalClock>) @extends gst::Clock, gst::Object;
}

impl ArrivalClock {
    pub fn new() -> ArrivalClock {
        glib::Object::new()
    }

    /// Moves the clock to `to` (if later) and releases every wait due by then.
    pub fn advance_to(&self, to: gst::ClockTime) {
        self.imp().advance_to(to);
    }
}

mod imp {
    use std::sync::{Condvar, Mutex, MutexGuard};

    use gst::glib;
    use gst::subclass::prelude::*;
    use gst::{ClockError, ClockId, ClockReturn, ClockSuccess, ClockTime, ClockTimeDiff};

    #[derive(Default)]
    struct State {
        now: ClockTime,
        /// Asynchronous entries not due yet.
        pending: Vec<ClockId>,
    }

    #[derive(Default)]
    pub struct ArrivalClock {
        state: Mutex<State>,
        moved: Condvar,
    }

    impl ArrivalClock {
        fn lock(&self) -> MutexGuard<'_, State> {
            self.state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        pub(super) fn advance_to(&self, to: ClockTime) {
            let due: Vec<ClockId> = {
                let mut s = self.lock();
                if to <= s.now {
                    return;
                }
                s.now = to;
                let (due, later) = std::mem::take(&mut s.pending)
                    .into_iter()
                    .partition(|id| id.time() <= to);
                s.pending = later;
                due
            };
            self.moved.notify_all();
            for id in due {
                self.wake_id(&id);
            }
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for ArrivalClock {
        const NAME: &'static str = "ClasscastArrivalClock";
        type Type = super::ArrivalClock;
        type ParentType = gst::Clock;
    }

    impl ObjectImpl for ArrivalClock {}
    impl GstObjectImpl for ArrivalClock {}

    impl ClockImpl for ArrivalClock {
        fn resolution(&self) -> ClockTime {
            ClockTime::NSECOND
        }

        fn internal_time(&self) -> ClockTime {
            self.lock().now
        }

        fn wait(&self, id: &ClockId) -> (Result<ClockSuccess, ClockError>, ClockTimeDiff) {
            let target = id.time();
            let mut s = self.lock();
            let early = s.now >= target;
            loop {
                if id.status().load() == ClockReturn::Unscheduled {
                    return (Err(ClockError::Unscheduled), 0);
                }
                if s.now >= target {
                    let jitter =
                        s.now.nseconds() as ClockTimeDiff - target.nseconds() as ClockTimeDiff;
                    let result = if early {
                        Err(ClockError::Early)
                    } else {
                        Ok(ClockSuccess::Ok)
                    };
                    return (result, jitter);
                }
                s = self
                    .moved
                    .wait(s)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }

        fn wait_async(&self, id: &ClockId) -> Result<ClockSuccess, ClockError> {
            let due = {
                let mut s = self.lock();
                let due = id.time() <= s.now;
                if !due {
                    s.pending.push(id.clone());
                }
                due
            };
            if due {
                self.wake_id(id);
            }
            Ok(ClockSuccess::Ok)
        }

        fn unschedule(&self, id: &ClockId) {
            id.status().store(ClockReturn::Unscheduled);
            self.lock().pending.retain(|p| p != id);
            self.moved.notify_all();
        }
    }
}
