//! Scheduled classes: the class each timetable period owns, and the class sessions
//! (one per period and day) that record what the scheduler opened and closed.
//!
//! Invariants:
//! - A period has at most one class (unique `classes.period_id`); its lessons all
//!   belong to it, titled with the period's subject and teacher at the time.
//! - A (period, date) pair has at most one session; once closed it is never
//!   reopened, so a restart or a clock step backwards cannot replay a lesson.
//! - Session times are in the scheduler's clock (Unix ms).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{CLASS_COLUMNS, ClassRow, Store, StoreError, class_row, new_id, unix_now};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Open,
    Closed,
}

/// One day's opening of a scheduled class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassSession {
    pub period_id: String,
    /// `YYYY-MM-DD`, the local date of the period.
    pub date: String,
    pub class_id: String,
    pub opens_at_ms: i64,
    pub closes_at_ms: i64,
    pub state: SessionState,
    pub opened_at_ms: i64,
    pub closed_at_ms: Option<i64>,
}

const SESSION_COLUMNS: &str = "period_id, date, class_id, opens_at_ms, closes_at_ms, state, opened_at_ms, closed_at_ms";

impl Store {
    /// The class of a period, created on first use and kept titled (and recording) after it.
    pub fn period_class(&self, period_id: &str, subject: &str, teacher: &str, record: bool) -> Result<ClassRow, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {CLASS_COLUMNS} FROM classes WHERE period_id = ?1");
            if let Some(row) = c.query_row(&sql, [period_id], class_row).optional()? {
                if row.title != subject || row.teacher != teacher || row.record != record {
                    c.execute("UPDATE classes SET title = ?2, teacher = ?3, record = ?4 WHERE id = ?1", params![row.id, subject, teacher, record])?;
                }
                return Ok(ClassRow { title: subject.into(), teacher: teacher.into(), record, ..row });
            }
            let row = ClassRow { id: new_id('k'), title: subject.into(), teacher: teacher.into(), created_at: unix_now(), record, period_id: Some(period_id.into()) };
            c.execute(
                "INSERT INTO classes (id, title, teacher, created_at, record, period_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.id, row.title, row.teacher, row.created_at, row.record, row.period_id],
            )?;
            Ok(row)
        })
    }

    /// Every scheduled class, as (period id, class id).
    pub fn period_classes(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare("SELECT period_id, id FROM classes WHERE period_id IS NOT NULL")?;
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// The listening classrooms a class expects, as (identity, name): its period's
    /// listening classrooms for a scheduled class, else the classrooms added to it.
    pub fn expected_classrooms(&self, class_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT r.id, r.name FROM classes k JOIN timetable_listeners l ON l.entry_id = k.period_id JOIN rooms r ON r.id = l.room_id
                 WHERE k.id = ?1
                 UNION ALL SELECT id, name FROM classrooms WHERE class_id = ?1",
            )?;
            st.query_map([class_id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// Record that a session opened; returns false if this (period, date) already had one.
    pub fn open_session(&self, s: &ClassSession) -> Result<bool, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO class_sessions (period_id, date, class_id, opens_at_ms, closes_at_ms, state, opened_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6)",
                params![s.period_id, s.date, s.class_id, s.opens_at_ms, s.closes_at_ms, s.opened_at_ms],
            )
        })
        .map(|n| n == 1)
    }

    pub fn close_session(&self, period_id: &str, date: &str, closed_at_ms: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE class_sessions SET state = 'closed', closed_at_ms = ?3 WHERE period_id = ?1 AND date = ?2 AND state = 'open'",
                params![period_id, date, closed_at_ms],
            )
        })
        .map(|_| ())
    }

    /// Sessions still open (after a restart: the ones to resume or close).
    pub fn open_sessions(&self) -> Result<Vec<ClassSession>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(&format!("SELECT {SESSION_COLUMNS} FROM class_sessions WHERE state = 'open' ORDER BY opens_at_ms"))?;
            st.query_map([], session_row)?.collect()
        })
    }
}

fn session_row(r: &rusqlite::Row) -> rusqlite::Result<ClassSession> {
    let state: String = r.get(5)?;
    Ok(ClassSession {
        period_id: r.get(0)?,
        date: r.get(1)?,
        class_id: r.get(2)?,
        opens_at_ms: r.get(3)?,
        closes_at_ms: r.get(4)?,
        state: if state == "open" { SessionState::Open } else { SessionState::Closed },
        opened_at_ms: r.get(6)?,
        closed_at_ms: r.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(class_id: &str) -> ClassSession {
        ClassSession {
            period_id: "p1".into(),
            date: "2026-11-23".into(),
            class_id: class_id.into(),
            opens_at_ms: 1_000,
            closes_at_ms: 61_000,
            state: SessionState::Open,
            opened_at_ms: 1_200,
            closed_at_ms: None,
        }
    }

    #[test]
    fn a_period_keeps_one_class_titled_after_it() {
        let s = Store::open_in_memory().unwrap();
        let a = s.period_class("p1", "数学", "王老师", true).unwrap();
        assert_eq!((a.period_id.as_deref(), a.record), (Some("p1"), true));
        let b = s.period_class("p1", "数学（复习）", "李老师", false).unwrap();
        assert_eq!(b.id, a.id, "one class per period");
        let stored = s.class(&a.id).unwrap().unwrap();
        assert_eq!((stored.title.as_str(), stored.record), ("数学（复习）", false), "follows its period");
        let c = s.period_class("p2", "语文", "", true).unwrap();
        assert_ne!(c.id, a.id);
        let mut classes = s.period_classes().unwrap();
        classes.sort();
        assert_eq!(classes, [("p1".to_string(), a.id.clone()), ("p2".to_string(), c.id)]);
    }

    #[test]
    fn a_session_opens_once_and_is_never_reopened() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.open_session(&session("k1")).unwrap());
        assert!(!s.open_session(&session("k1")).unwrap(), "same period and date");
        assert_eq!(s.open_sessions().unwrap(), vec![session("k1")]);
        s.close_session("p1", "2026-11-23", 61_000).unwrap();
        assert!(s.open_sessions().unwrap().is_empty());
        assert!(!s.open_session(&session("k1")).unwrap(), "closed stays closed");
        let sql = format!("SELECT {SESSION_COLUMNS} FROM class_sessions WHERE period_id = 'p1' AND date = '2026-11-23'");
        let closed = s.with(|c| c.query_row(&sql, [], session_row)).unwrap();
        assert_eq!((closed.state, closed.closed_at_ms), (SessionState::Closed, Some(61_000)));
    }
}
