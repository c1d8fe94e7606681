//! The dashboard's picture of the live classes: every live class with the health of
//! each of its classrooms (`health`), degraded ones first, and the classrooms it
//! expects that have not joined. Metrics read the same picture; today's timetable
//! comes from the scheduler (`schedule::today`).
//!
//! Invariants:
//! - The health book is only touched under its lock, never across a database read
//!   or an await; the forwarding threads never wait for it (their health reaches it
//!   through the rooms layer's event task).
//! - A picture lists only live classes; participants that left are forgotten by the
//!   book when a picture is taken, so what it keeps follows the live classes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::Serialize;

use super::health::{ClassroomHealth, HealthBook};
use super::live::LiveClass;
use super::{Joined, RoomError, Rooms};
use crate::signaling::protocol::{ParticipantInfo, Role};
use crate::signaling::report::{self, TrackReport};

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

/// A live class's members and the classrooms the store expects in it.
struct ClassInputs {
    class: Arc<LiveClass>,
    members: Vec<ParticipantInfo>,
    /// The listening classrooms the class expects, as (identity, name).
    expected: Vec<(String, String)>,
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
                let expected = self.store.expected_classrooms(&class.id).unwrap_or_default();
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
}

fn class_view(book: &mut HealthBook, c: &ClassInputs, now: Instant) -> ClassView {
    let id = &c.class.id;
    let mut rooms: Vec<ClassroomView> = c
        .members
        .iter()
        .map(|m| ClassroomView { id: m.id.clone(), name: m.name.clone(), role: m.role, joined: true, health: book.evaluate(id, &m.id, now) })
        .collect();
    let absent = c.expected.iter().filter(|(id, _)| !c.members.iter().any(|m| &m.id == id));
    rooms.extend(absent.map(|(id, name)| ClassroomView { id: id.clone(), name: name.clone(), role: Role::Classroom, joined: false, health: ClassroomHealth::default() }));
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
