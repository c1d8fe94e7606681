//! The timetable as a calendar, and what the scheduler must do at an instant.
//! Pure: time and the local zone are arguments, so every case is a unit test.
//!
//! Invariants:
//! - A period happens on a date when the date is in its term, is not one of the
//!   term's holidays, and has the period's weekday.
//! - `decide` opens every period happening now that has no open session, keeps an
//!   open session while its period still happens at that time, and closes it
//!   otherwise: at its end, when its period was deleted or moved, on a holiday
//!   added since, or when the clock stepped back more than `CLOCK_TOLERANCE_MS`
//!   before its start (a small step back, as NTP makes, keeps the class open).
//! - Periods do not cross midnight (the store checks end > start within a day).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;

use super::civil::{Date, to_local, to_unix_ms};
use crate::store::{ClassSession, Period, Term};

/// A step of the clock backwards by less than this keeps an open class open.
pub const CLOCK_TOLERANCE_MS: i64 = 120_000;
/// How far ahead `next_for_room` looks (across a winter break).
pub const LOOKAHEAD_DAYS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPeriod {
    pub id: String,
    pub term_id: String,
    pub weekday: u8,
    pub start_min: u16,
    pub end_min: u16,
    pub subject: String,
    pub teacher: String,
    pub main_classroom_id: String,
    pub listening_classroom_ids: Vec<String>,
    pub record: bool,
}

impl PlannedPeriod {
    /// Whether a district classroom (main or listening) takes part.
    pub fn involves(&self, room_id: &str) -> bool {
        self.main_classroom_id == room_id || self.listening_classroom_ids.iter().any(|r| r == room_id)
    }
}

/// One period on one date, with its times in Unix ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub period: Arc<PlannedPeriod>,
    pub date: String,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
}

#[derive(Debug, Clone)]
struct TermDays {
    start: Date,
    end: Date,
    holidays: HashSet<Date>,
}

/// The terms, holidays and periods, ready to ask "what happens when".
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    terms: HashMap<String, TermDays>,
    periods: Vec<Arc<PlannedPeriod>>,
}

/// What the scheduler does about one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A period started: open its class.
    Open(Occurrence),
    /// Still in session: make sure the class is open (after a restart it is not yet).
    Keep(ClassSession),
    /// The session is over: close the class.
    Close(ClassSession),
}

impl Calendar {
    pub fn new(terms: &[Term], periods: &[Period]) -> Calendar {
        let terms = terms.iter().filter_map(|t| Some((t.id.clone(), term_days(t)?))).collect();
        let periods = periods.iter().filter_map(planned).map(Arc::new).collect();
        Calendar { terms, periods }
    }

    pub fn period(&self, id: &str) -> Option<&Arc<PlannedPeriod>> {
        self.periods.iter().find(|p| p.id == id)
    }

    /// The periods that happen on `date`, by start time.
    pub fn on(&self, date: Date, offset: &impl Fn(i64) -> i64) -> Vec<Occurrence> {
        let mut out: Vec<Occurrence> = self.periods.iter().filter(|p| self.happens(p, date)).map(|p| occurrence(p, date, offset)).collect();
        out.sort_by_key(|o| (o.opens_at_ms, o.period.id.clone()));
        out
    }

    /// The periods in progress at `now_ms`.
    pub fn active(&self, now_ms: i64, offset: &impl Fn(i64) -> i64) -> Vec<Occurrence> {
        let today = to_local(now_ms, offset).date;
        self.on(today, offset).into_iter().filter(|o| o.opens_at_ms <= now_ms && now_ms < o.closes_at_ms).collect()
    }

    /// The next period of a classroom that has not ended yet (the current one first).
    pub fn next_for_room(&self, room_id: &str, now_ms: i64, offset: &impl Fn(i64) -> i64) -> Option<Occurrence> {
        let today = to_local(now_ms, offset).date;
        let mine: Vec<&Arc<PlannedPeriod>> = self.periods.iter().filter(|p| p.involves(room_id)).collect();
        (0..LOOKAHEAD_DAYS).map(|d| today.add_days(d)).find_map(|date| {
            let on_day = mine.iter().filter(|p| self.happens(p, date)).map(|p| occurrence(p, date, offset));
            on_day.filter(|o| o.closes_at_ms > now_ms).min_by_key(|o| o.opens_at_ms)
        })
    }

    fn happens(&self, p: &PlannedPeriod, date: Date) -> bool {
        let Some(term) = self.terms.get(&p.term_id) else { return false };
        date.weekday() == p.weekday && term.start <= date && date <= term.end && !term.holidays.contains(&date)
    }
}

/// What to do now, given the sessions the store says are open.
pub fn decide(cal: &Calendar, open: &[ClassSession], now_ms: i64, offset: &impl Fn(i64) -> i64) -> Vec<Action> {
    let mut actions: Vec<Action> = open.iter().map(|s| keep_or_close(cal, s, now_ms, offset)).collect();
    let is_open: HashSet<(&str, &str)> = open.iter().map(|s| (s.period_id.as_str(), s.date.as_str())).collect();
    for o in cal.active(now_ms, offset) {
        if !is_open.contains(&(o.period.id.as_str(), o.date.as_str())) {
            actions.push(Action::Open(o));
        }
    }
    actions
}

fn keep_or_close(cal: &Calendar, s: &ClassSession, now_ms: i64, offset: &impl Fn(i64) -> i64) -> Action {
    let Some(date) = Date::parse(&s.date) else { return Action::Close(s.clone()) };
    let current = cal.on(date, offset).into_iter().find(|o| o.period.id == s.period_id);
    match current {
        Some(o) if o.opens_at_ms - CLOCK_TOLERANCE_MS <= now_ms && now_ms < o.closes_at_ms => Action::Keep(s.clone()),
        _ => Action::Close(s.clone()),
    }
}

fn occurrence(p: &Arc<PlannedPeriod>, date: Date, offset: &impl Fn(i64) -> i64) -> Occurrence {
    Occurrence {
        period: p.clone(),
        date: date.to_string(),
        opens_at_ms: to_unix_ms(date, p.start_min, offset),
        closes_at_ms: to_unix_ms(date, p.end_min, offset),
    }
}

fn term_days(t: &Term) -> Option<TermDays> {
    let holidays = t.holidays.iter().filter_map(|h| Date::parse(&h.date)).collect();
    Some(TermDays { start: Date::parse(&t.start)?, end: Date::parse(&t.end)?, holidays })
}

fn planned(p: &Period) -> Option<PlannedPeriod> {
    Some(PlannedPeriod {
        id: p.id.clone(),
        term_id: p.term_id.clone(),
        weekday: p.weekday,
        start_min: minutes(&p.start)?,
        end_min: minutes(&p.end)?,
        subject: p.subject.clone(),
        teacher: p.teacher.clone(),
        main_classroom_id: p.main_classroom_id.clone(),
        listening_classroom_ids: p.listening_classroom_ids.clone(),
        record: p.record,
    })
}

/// `HH:MM` as minutes of the day (the store wrote it; anything else is skipped).
fn minutes(hhmm: &str) -> Option<u16> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
