//! Today's timetable for the dashboard: the periods of the scheduler's local date,
//! with where each stands (upcoming, now, over) on the scheduler's clock and whether
//! its class is live.
//!
//! Invariant: "today" and "now" are exactly what the scheduler uses (`plan::Calendar`
//! on the shifted clock), so the dashboard never disagrees with what opens and closes.

use std::collections::HashMap;

use serde::Serialize;

use super::civil::to_local;
use super::local_offset;
use super::plan::{Calendar, Occurrence};
use crate::rooms::Rooms;
use crate::store::DistrictError;

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

/// The scheduler's local date (`YYYY-MM-DD`) and its periods, by start.
pub fn today(rooms: &Rooms, cal: &Calendar, now_ms: i64) -> Result<(String, Vec<TodayPeriod>), DistrictError> {
    let date = to_local(now_ms, local_offset).date;
    let periods = cal.on(date, &local_offset);
    let names: HashMap<String, String> = rooms.store.district_rooms(None)?.into_iter().map(|r| (r.id, r.name)).collect();
    let classes: HashMap<String, String> = rooms.store.period_classes()?.into_iter().collect();
    let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
    let list = periods.into_iter().map(|o| {
        let class_id = classes.get(&o.period.id).cloned();
        let p = &o.period;
        TodayPeriod {
            id: p.id.clone(),
            start: hh_mm(p.start_min),
            end: hh_mm(p.end_min),
            subject: p.subject.clone(),
            teacher: p.teacher.clone(),
            main_classroom: name(&p.main_classroom_id),
            main_classroom_id: p.main_classroom_id.clone(),
            listening_classrooms: p.listening_classroom_ids.iter().map(name).collect(),
            listening_classroom_ids: p.listening_classroom_ids.clone(),
            state: state_at(&o, now_ms),
            live: class_id.as_deref().is_some_and(|id| rooms.live.get(id).is_some_and(|c| c.scheduled())),
            class_id,
        }
    });
    Ok((date.to_string(), list.collect()))
}

/// Where `now_ms` falls relative to a period (half-open: it is over at its end).
fn state_at(o: &Occurrence, now_ms: i64) -> PeriodState {
    if now_ms < o.opens_at_ms {
        PeriodState::Upcoming
    } else if now_ms >= o.closes_at_ms {
        PeriodState::Over
    } else {
        PeriodState::Now
    }
}

fn hh_mm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::plan::PlannedPeriod;
    use std::sync::Arc;

    #[test]
    fn a_period_is_upcoming_then_now_then_over_at_its_end() {
        let period = Arc::new(PlannedPeriod {
            id: "p".into(),
            term_id: "t".into(),
            weekday: 1,
            start_min: 480,
            end_min: 525,
            subject: "数学".into(),
            teacher: String::new(),
            main_classroom_id: "m".into(),
            listening_classroom_ids: vec![],
            record: true,
        });
        let o = Occurrence { period, date: "2026-11-23".into(), opens_at_ms: 1_000, closes_at_ms: 2_000 };
        assert_eq!(state_at(&o, 999), PeriodState::Upcoming);
        assert_eq!(state_at(&o, 1_000), PeriodState::Now);
        assert_eq!(state_at(&o, 1_999), PeriodState::Now);
        assert_eq!(state_at(&o, 2_000), PeriodState::Over);
        assert_eq!(hh_mm(525), "08:45");
    }
}
