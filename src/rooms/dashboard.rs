//! The dashboard's picture of right now: today's timetable periods (with whether
//! each one's class is live), and every live class with the health of each of its
//! classrooms (`health`), degraded ones first. Metrics read the same picture.
//!
//! Invariants:
//! - The health book is only touched under its lock, never across a database read
//!   or an await; the forwarding threads never wait for it (their health reaches it
//!   through the rooms layer's event task).
//! - A picture lists only live classes; participants that left are forgotten by the
//!   book when a picture is taken, so what it keeps follows the live classes.
//! - "Today" is the server's local date and time (`localtime_r`); a period is listed
//!   on its weekday while its term runs, except on the term's holidays.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use super::health::{ClassroomHealth, HealthBook};
use super::live::LiveClass;
use super::{Joined, RoomError, Rooms};
use crate::signaling::protocol::{ParticipantInfo, Role};
use crate::signaling::report::{self, TrackReport};
use crate::store::{ClassroomRow, DistrictError, Period, Term};

/// The health book and the count of client reports, shared by sessions, the event task and readers.
#[derive(Debug, Default)]
pub struct Health {
    book: Mutex<HealthBook>,
    pub reports_accepted: AtomicU64,
    pub reports_rejected: AtomicU64,
}

impl Health {
    pub fn book(&self) -> MutexGuard<'_, HealthBook> {
        // A panic under this lock would be a bug in `health`; the book stays usable.
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One participant (or an expected classroom that has not joined) of a live class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassroomView {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// In the class now; an expected classroom that has not joined is `false`.
    pub joined: bool,
    #[serde(flatten)]
    pub health: ClassroomHealth,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassView {
    pub id: String,
    pub title: String,
    pub call_on: Option<String>,
    pub recording: bool,
    pub participants: usize,
    pub degraded: usize,
    /// Degraded first, then those in the class, the main classroom first, then by name.
    pub classrooms: Vec<ClassroomView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodState {
    Upcoming,
    Now,
    Over,
}

/// A timetable period of today.
#[derive(Debug, Clone, Serialize)]
pub struct TodayPeriod {
    pub id: String,
    pub start: String,
    pub end: String,
    pub subject: String,
    pub teacher: String,
    pub main_classroom_id: String,
    pub main_classroom: String,
    pub listening_classroom_ids: Vec<String>,
    pub listening_classrooms: Vec<String>,
    pub state: PeriodState,
    /// The class the period opens, once it has one.
    pub class_id: Option<String>,
    pub live: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub at_ms: i64,
    /// The server's local date (`YYYY-MM-DD`) the timetable is read for.
    pub date: Option<String>,
    pub today: Vec<TodayPeriod>,
    pub classes: Vec<ClassView>,
}

/// The server's local calendar position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNow {
    pub date: String,
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: u8,
    /// Minutes since local midnight.
    pub minute: u16,
}

/// `unix_secs` in the server's time zone.
pub fn local_now(unix_secs: i64) -> Option<LocalNow> {
    let t = unix_secs as libc::time_t;
    // SAFETY: `libc::tm` is integers and one nullable pointer, so all-zero is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r writes only into `tm`
    // and, unlike localtime, shares no static buffer between threads.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    Some(LocalNow {
        date: format!("{:04}-{:02}-{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday),
        weekday: if tm.tm_wday == 0 { 7 } else { tm.tm_wday as u8 },
        minute: (tm.tm_hour * 60 + tm.tm_min) as u16,
    })
}

/// Periods taking place on `now`'s date: its weekday, in a running term, not a holiday.
pub fn periods_of_day<'a>(periods: &'a [Period], terms: &[Term], now: &LocalNow) -> Vec<&'a Period> {
    let running: HashSet<&str> = terms
        .iter()
        .filter(|t| t.start.as_str() <= now.date.as_str() && now.date.as_str() <= t.end.as_str())
        .filter(|t| !t.holidays.iter().any(|h| h.date == now.date))
        .map(|t| t.id.as_str())
        .collect();
    periods.iter().filter(|p| p.weekday == now.weekday && running.contains(p.term_id.as_str())).collect()
}

/// Where `minute` falls relative to a period (half-open: it is over at its end minute).
pub fn period_state(p: &Period, minute: u16) -> PeriodState {
    match (minutes(&p.start), minutes(&p.end)) {
        (Some(s), _) if minute < s => PeriodState::Upcoming,
        (_, Some(e)) if minute >= e => PeriodState::Over,
        _ => PeriodState::Now,
    }
}

fn minutes(hh_mm: &str) -> Option<u16> {
    let (h, m) = hh_mm.split_once(':')?;
    Some(h.parse::<u16>().ok()? * 60 + m.parse::<u16>().ok()?)
}

fn district_error(e: DistrictError) -> RoomError {
    match e {
        DistrictError::Store(s) => RoomError::Store(s),
        other => RoomError::Unavailable(other.to_string()),
    }
}

/// A live class's members and the classrooms the store expects in it.
struct ClassInputs {
    class: Arc<LiveClass>,
    members: Vec<ParticipantInfo>,
    expected: Vec<ClassroomRow>,
}

impl Rooms {
    /// A client's `receive_report`: checked, counted, and handed to the health book.
    pub fn receive_report(&self, s: &Joined, tracks: Vec<TrackReport>, rtt_ms: Option<f64>) -> Result<(), RoomError> {
        if let Err(e) = report::check(&tracks, rtt_ms) {
            self.health.reports_rejected.fetch_add(1, Relaxed);
            return Err(RoomError::BadRequest(e.to_string()));
        }
        self.health.reports_accepted.fetch_add(1, Relaxed);
        self.health.book().report(&s.class.id, &s.claims.sub, Instant::now(), tracks, rtt_ms);
        Ok(())
    }

    /// Every live class with the health of its classrooms at `now`, by title.
    pub fn live_health(&self, now: Instant) -> Vec<ClassView> {
        let inputs: Vec<ClassInputs> = self
            .live
            .all()
            .into_iter()
            .map(|class| {
                let expected = self.store.classrooms(&class.id).unwrap_or_default();
                ClassInputs { members: class.participants(), class, expected }
            })
            .collect();
        let mut book = self.health.book();
        let mut views: Vec<ClassView> = inputs.iter().map(|c| class_view(&mut book, c, now)).collect();
        let members: HashSet<(&str, &str)> = inputs.iter().flat_map(|c| c.members.iter().map(|m| (&*c.class.id, m.id.as_str()))).collect();
        book.retain(|class, p| members.contains(&(class, p)));
        drop(book);
        views.sort_by(|a, b| (&a.title, &a.id).cmp(&(&b.title, &b.id)));
        views
    }

    /// The dashboard's snapshot: today's periods and the live classes.
    pub fn dashboard(&self, now: Instant) -> Result<Dashboard, RoomError> {
        let at_ms = crate::store::unix_now_ms();
        let local = local_now(at_ms.div_euclid(1000));
        let today = match &local {
            Some(l) => self.today(l)?,
            None => Vec::new(),
        };
        Ok(Dashboard { at_ms, date: local.map(|l| l.date), today, classes: self.live_health(now) })
    }

    fn today(&self, now: &LocalNow) -> Result<Vec<TodayPeriod>, RoomError> {
        let periods = self.store.timetable(None).map_err(district_error)?;
        let terms = self.store.terms().map_err(district_error)?;
        let names: HashMap<String, String> = self.store.district_rooms(None).map_err(district_error)?.into_iter().map(|r| (r.id, r.name)).collect();
        let classes: HashMap<String, String> = self.store.period_classes()?.into_iter().collect();
        let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
        let list = periods_of_day(&periods, &terms, now).into_iter().map(|p| {
            let class_id = classes.get(&p.id).cloned();
            TodayPeriod {
                id: p.id.clone(),
                start: p.start.clone(),
                end: p.end.clone(),
                subject: p.subject.clone(),
                teacher: p.teacher.clone(),
                main_classroom: name(&p.main_classroom_id),
                main_classroom_id: p.main_classroom_id.clone(),
                listening_classrooms: p.listening_classroom_ids.iter().map(name).collect(),
                listening_classroom_ids: p.listening_classroom_ids.clone(),
                state: period_state(p, now.minute),
                live: class_id.as_deref().is_some_and(|id| self.live.get(id).is_some()),
                class_id,
            }
        });
        Ok(list.collect())
    }
}

fn class_view(book: &mut HealthBook, c: &ClassInputs, now: Instant) -> ClassView {
    let id = &c.class.id;
    let mut rooms: Vec<ClassroomView> = c
        .members
        .iter()
        .map(|m| ClassroomView { id: m.id.clone(), name: m.name.clone(), role: m.role, joined: true, health: book.evaluate(id, &m.id, now) })
        .collect();
    let absent = c.expected.iter().filter(|r| !c.members.iter().any(|m| m.id == r.id));
    rooms.extend(absent.map(|r| ClassroomView { id: r.id.clone(), name: r.name.clone(), role: Role::Classroom, joined: false, health: ClassroomHealth::default() }));
    rooms.sort_by(|a, b| {
        let key = |v: &ClassroomView| (!v.health.degraded, !v.joined, v.role != Role::Main, v.name.clone());
        key(a).cmp(&key(b))
    });
    ClassView {
        id: id.to_string(),
        title: c.class.title.clone(),
        call_on: c.class.call_on(),
        recording: c.class.recording(),
        participants: c.members.len(),
        degraded: rooms.iter().filter(|r| r.health.degraded).count(),
        classrooms: rooms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Holiday;

    fn period(id: &str, term: &str, weekday: u8, start: &str, end: &str) -> Period {
        Period {
            id: id.into(),
            term_id: term.into(),
            weekday,
            start: start.into(),
            end: end.into(),
            subject: "Maths".into(),
            teacher: String::new(),
            main_classroom_id: "m1".into(),
            listening_classroom_ids: vec!["l1".into()],
            created_at: 0,
        }
    }

    fn term(id: &str, start: &str, end: &str, holidays: &[&str]) -> Term {
        let holidays = holidays.iter().map(|d| Holiday { date: d.to_string(), name: String::new() }).collect();
        Term { id: id.into(), name: id.into(), start: start.into(), end: end.into(), holidays, created_at: 0 }
    }

    fn on(date: &str, weekday: u8, minute: u16) -> LocalNow {
        LocalNow { date: date.into(), weekday, minute }
    }

    #[test]
    fn today_is_the_weekday_of_a_running_term_that_is_not_a_holiday() {
        let periods = [period("a", "t1", 3, "08:00", "08:45"), period("b", "t1", 4, "08:00", "08:45"), period("c", "t2", 3, "09:00", "09:45")];
        let terms = [term("t1", "2025-09-01", "2026-01-20", &["2025-10-01"]), term("t2", "2026-02-20", "2026-07-01", &[])];
        let ids = |now: &LocalNow| periods_of_day(&periods, &terms, now).iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&on("2025-09-03", 3, 0)), ["a"]);
        assert_eq!(ids(&on("2025-10-01", 3, 0)), Vec::<String>::new(), "a holiday");
        assert_eq!(ids(&on("2026-01-20", 3, 0)), ["a"], "the term's last day counts");
        assert_eq!(ids(&on("2026-02-04", 3, 0)), Vec::<String>::new(), "between terms");
    }

    #[test]
    fn a_period_is_upcoming_then_now_then_over_at_its_end_minute() {
        let p = period("a", "t1", 3, "08:00", "08:45");
        assert_eq!(period_state(&p, 479), PeriodState::Upcoming);
        assert_eq!(period_state(&p, 480), PeriodState::Now);
        assert_eq!(period_state(&p, 524), PeriodState::Now);
        assert_eq!(period_state(&p, 525), PeriodState::Over);
    }

    #[test]
    fn local_time_has_a_monday_first_weekday_and_a_minute_of_the_day() {
        // 2024-01-01 was a Monday; at 12:00 UTC it is Monday in every zone from UTC-11 to UTC+11.
        let now = local_now(1_704_110_400).unwrap();
        assert_eq!((now.weekday, now.date.as_str()), (1, "2024-01-01"));
        assert!(now.minute < 24 * 60);
        let week_later = local_now(1_704_110_400 + 6 * 86_400).unwrap();
        assert_eq!(week_later.weekday, 7);
    }
}
