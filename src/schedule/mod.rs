//! The timetable in motion: once a second the scheduler asks the calendar what
//! should be in session (`plan::decide`) and opens, keeps or closes classes
//! through `rooms`. Layering: schedule -> rooms -> sfu; nothing here touches media.
//!
//! Invariants:
//! - The store is the truth: an open class session row means the class must be
//!   live, so a restart mid-period reopens it on the first tick (within 1 s).
//! - A (period, date) opens at most once (closed sessions are never reopened).
//! - The scheduler's clock is the wall clock plus an offset that is zero unless
//!   an operator or a test shifts it (`--clock-offset-ms`, or the fault-injection
//!   hook); everything about the timetable reads this clock, lessons keep real time.
//! - A failed tick (database busy) is logged and retried on the next one; it never
//!   closes a class.

pub mod civil;
pub mod plan;
pub mod today;

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rooms::Rooms;
use crate::store::{ClassSession, DistrictError, SessionState, Store, unix_now_ms};
use plan::{Action, Calendar, Occurrence};

/// How often the scheduler looks at the timetable.
pub const TICK: Duration = Duration::from_secs(1);

/// The scheduler's wall clock (Unix ms): real time plus a settable offset.
#[derive(Debug, Clone, Default)]
pub struct ScheduleClock {
    offset_ms: Arc<AtomicI64>,
}

impl ScheduleClock {
    pub fn with_offset(offset_ms: i64) -> ScheduleClock {
        ScheduleClock { offset_ms: Arc::new(AtomicI64::new(offset_ms)) }
    }

    pub fn now_ms(&self) -> i64 {
        unix_now_ms() + self.offset_ms.load(Relaxed)
    }

    /// Step the clock so that it reads `now_ms` (a test or drill of a clock change).
    pub fn set_now(&self, now_ms: i64) {
        self.offset_ms.store(now_ms - unix_now_ms(), Relaxed);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Relaxed)
    }
}

/// The local zone's offset from UTC at a Unix second.
pub fn local_offset(unix_secs: i64) -> i64 {
    civil::local_offset_secs(unix_secs)
}

/// The calendar as the store has it now.
pub fn calendar(store: &Store) -> Result<Calendar, DistrictError> {
    Ok(Calendar::new(&store.terms()?, &store.timetable(None)?))
}

/// How long a cached calendar serves readers (kiosk screens poll every few seconds).
pub const CALENDAR_TTL: Duration = Duration::from_secs(2);

/// The calendar for readers that ask often (the device API, the dashboard): read from
/// the store at most once per `CALENDAR_TTL`, so hundreds of screens cost one read.
/// The scheduler itself reads the store on every tick.
#[derive(Debug, Clone, Default)]
pub struct CalendarCache {
    slot: Arc<Mutex<Option<(Instant, Arc<Calendar>)>>>,
}

impl CalendarCache {
    pub fn get(&self, store: &Store) -> Result<Arc<Calendar>, DistrictError> {
        // A panic under this lock cannot leave the slot half-written; recover it.
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, cal)) = slot.as_ref().filter(|(at, _)| at.elapsed() < CALENDAR_TTL) {
            return Ok(cal.clone());
        }
        let cal = Arc::new(calendar(store)?);
        *slot = Some((Instant::now(), cal.clone()));
        Ok(cal)
    }
}

/// Run the timetable for the server's life.
pub async fn run(rooms: Arc<Rooms>, clock: ScheduleClock) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = step(&rooms, clock.now_ms()).await {
            tracing::warn!(error = %e, "timetable tick failed; retrying");
        }
    }
}

/// One look at the timetable at `now_ms`.
pub async fn step(rooms: &Rooms, now_ms: i64) -> Result<(), DistrictError> {
    let cal = calendar(&rooms.store)?;
    let open = rooms.store.open_sessions()?;
    for action in plan::decide(&cal, &open, now_ms, &local_offset) {
        match action {
            Action::Open(o) => open_period(rooms, &o).await?,
            Action::Keep(s) => keep_session(rooms, &s).await?,
            Action::Close(s) => close_session(rooms, &s).await?,
        }
    }
    Ok(())
}

async fn open_period(rooms: &Rooms, o: &Occurrence) -> Result<(), DistrictError> {
    let class = rooms.store.period_class(&o.period.id, &o.period.subject, &o.period.teacher, o.period.record)?;
    let session = ClassSession {
        period_id: o.period.id.clone(),
        date: o.date.clone(),
        class_id: class.id.clone(),
        opens_at_ms: o.opens_at_ms,
        closes_at_ms: o.closes_at_ms,
        state: SessionState::Open,
        opened_at_ms: unix_now_ms(),
        closed_at_ms: None,
    };
    if rooms.store.open_session(&session)? {
        tracing::info!(period = %o.period.id, date = %o.date, class = %class.id, "period started");
        rooms.open_scheduled(&class).await;
    }
    Ok(())
}

async fn keep_session(rooms: &Rooms, s: &ClassSession) -> Result<(), DistrictError> {
    match rooms.store.class(&s.class_id)? {
        Some(class) => rooms.open_scheduled(&class).await,
        // The class was deleted by an administrator: the session is over.
        None => rooms.store.close_session(&s.period_id, &s.date, unix_now_ms())?,
    }
    Ok(())
}

async fn close_session(rooms: &Rooms, s: &ClassSession) -> Result<(), DistrictError> {
    rooms.close_scheduled(&s.class_id).await;
    rooms.store.close_session(&s.period_id, &s.date, unix_now_ms())?;
    tracing::info!(period = %s.period_id, date = %s.date, class = %s.class_id, "period ended");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequent_readers_share_one_read_of_the_calendar() {
        let store = Store::open_in_memory().unwrap();
        let cache = CalendarCache::default();
        let a = cache.get(&store).unwrap();
        let b = cache.clone().get(&store).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "within the TTL the same calendar serves everyone");
    }

    #[test]
    fn the_clock_can_be_stepped() {
        let clock = ScheduleClock::default();
        clock.set_now(1_000);
        assert!((clock.now_ms() - 1_000).abs() < 1_000);
        assert!(clock.offset_ms() < 0);
    }
}
