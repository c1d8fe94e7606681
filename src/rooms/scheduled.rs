//! Classes the timetable opens and closes, and the classroom screens (device
//! links) that join them.
//!
//! Invariants:
//! - A scheduled class is live exactly while the scheduler holds it open: it opens
//!   empty at its period's start (recording starts if the class records), does not
//!   close when empty, and at the end every member is told `class over` (4010).
//! - A join to a scheduled class outside its session is refused (404), so a screen
//!   whose join token outlives the period cannot reopen the class.
//! - Revoking a device link closes its screens at once (4401) and refuses its join
//!   tokens from then on, whatever their expiry.

use std::sync::Arc;

use super::events::{ClassEvent, EndReason};
use super::live::LiveClass;
use super::{RoomError, Rooms, auth::AuthError};
use crate::store::ClassRow;

/// Close code telling a client its class ended on schedule (it should not rejoin).
pub const CLASS_OVER: u16 = 4010;
/// Close code telling a client its link was revoked.
pub const REVOKED: u16 = 4401;

impl Rooms {
    /// Open (or keep open) the class of a period in session. Idempotent: the
    /// scheduler calls it every tick, so a restart reopens what was open.
    pub async fn open_scheduled(&self, class: &ClassRow) {
        let (live, opened) = self.live.open(&class.id, &class.title);
        if opened {
            tracing::info!(class = %class.id, subject = %class.title, teacher = %class.teacher, "class opened by the timetable");
            let at_ms = crate::store::unix_now_ms();
            let (title, teacher, period_id) = (class.title.clone(), class.teacher.clone(), class.period_id.clone());
            self.events.publish(ClassEvent::ClassStarted { class_id: class.id.clone(), title, teacher, period_id, at_ms });
        }
        if opened && class.record {
            self.start_recording(&live, class).await;
        }
    }

    pub(super) async fn start_recording(&self, live: &Arc<LiveClass>, class: &ClassRow) {
        let Some(rec) = &self.recording else { return };
        rec.begin(live.id.clone(), class.id.clone(), class.title.clone(), class.teacher.clone());
        match self.driver.set_recording(live.id.clone(), true).await {
            Ok(()) => {
                live.set_recording(true);
            }
            Err(_) => tracing::error!(class = %class.id, "cannot turn recording on"),
        }
    }

    /// The period is over: everyone is told, the lesson ends, the class closes.
    pub async fn close_scheduled(&self, class_id: &str) {
        let Some(live) = self.live.remove(class_id) else { return };
        live.set_scheduled(false);
        live.close_all_with(CLASS_OVER, "the class is over");
        tracing::info!(class = %class_id, "class closed by the timetable");
        self.class_over(&live.id, EndReason::PeriodOver, crate::store::unix_now_ms()).await;
    }

    /// Refuse what the timetable or a revocation rules out (see the module invariants).
    pub(super) fn check_scheduled_join(&self, class: &ClassRow, device: Option<&str>) -> Result<(), RoomError> {
        if let Some(room_id) = device {
            let room = self.store.district_room(room_id).map_err(|e| RoomError::Unavailable(e.to_string()))?;
            if room.is_none_or(|r| r.revoked) {
                return Err(AuthError::Revoked.into());
            }
        }
        if class.period_id.is_some() && !self.live.get(&class.id).is_some_and(|c| c.scheduled()) {
            return Err(RoomError::NotFound(format!("class {} is not in session: it opens at its timetable period", class.id)));
        }
        Ok(())
    }

    /// A device link was revoked: close the screens that joined with it.
    pub fn disconnect_device(&self, room_id: &str) -> usize {
        let sessions: Vec<_> = self.devices.remove(room_id).map(|(_, v)| v).unwrap_or_default();
        for (_, tx) in &sessions {
            tx.close(REVOKED, "this screen's device link was revoked");
        }
        tracing::info!(room = %room_id, screens = sessions.len(), "device link revoked");
        sessions.len()
    }
}
