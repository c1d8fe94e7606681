//! What happens in classes, for whoever listens: webhooks, the dashboard, logs.
//!
//! Invariants:
//! - Publishing never blocks and never fails: the bus is a broadcast channel, and a
//!   listener that falls more than `BUS_DEPTH` events behind loses the oldest ones
//!   (it sees `Lagged` and counts them); rooms never wait for a listener.
//! - Every event carries the wall-clock time it happened (`at_ms`, Unix ms), so a
//!   delivery retried later still says when.
//! - The serialized form (`type` + snake_case fields) is the webhook payload: add
//!   variants or optional fields, never rename.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::signaling::protocol::Role;

/// Events a listener may fall behind by before it loses the oldest.
pub const BUS_DEPTH: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClassEvent {
    /// A class opened: by the timetable (`period_id`) or by its first participant.
    ClassStarted { class_id: String, title: String, teacher: String, period_id: Option<String>, at_ms: i64 },
    /// A class closed: its period ended, it stayed empty, or it was deleted.
    ClassEnded { class_id: String, reason: EndReason, at_ms: i64 },
    /// A classroom (the main one, a listening one, an observer) joined a live class.
    ClassroomJoined { class_id: String, participant: String, name: String, role: Role, at_ms: i64 },
    /// It left (closed its page, lost its network and did not come back, was replaced...).
    ClassroomLeft { class_id: String, participant: String, at_ms: i64 },
    /// A lesson's recording is finished and can be replayed.
    RecordingReady { class_id: String, lesson_id: String, title: String, teacher: String, duration_ms: i64, at_ms: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The timetable period is over.
    PeriodOver,
    /// Everyone left and nobody came back within the grace period.
    Empty,
    /// An administrator deleted the class.
    Deleted,
}

impl ClassEvent {
    /// The event's name, as webhook subscriptions and headers spell it.
    pub fn name(&self) -> &'static str {
        match self {
            ClassEvent::ClassStarted { .. } => "class_started",
            ClassEvent::ClassEnded { .. } => "class_ended",
            ClassEvent::ClassroomJoined { .. } => "classroom_joined",
            ClassEvent::ClassroomLeft { .. } => "classroom_left",
            ClassEvent::RecordingReady { .. } => "recording_ready",
        }
    }

    /// Every event name (what a webhook may subscribe to).
    pub const NAMES: [&'static str; 5] = ["class_started", "class_ended", "classroom_joined", "classroom_left", "recording_ready"];
}

/// The publishing side; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<ClassEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus { tx: broadcast::channel(BUS_DEPTH).0 }
    }
}

impl EventBus {
    pub fn publish(&self, event: ClassEvent) {
        tracing::debug!(event = event.name(), "class event");
        // No listener is fine: nothing is configured to hear it.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ClassEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_snake_case() {
        let e = ClassEvent::ClassEnded { class_id: "k1".into(), reason: EndReason::PeriodOver, at_ms: 5 };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v, serde_json::json!({"type": "class_ended", "class_id": "k1", "reason": "period_over", "at_ms": 5}));
        assert_eq!(v["type"], e.name());
        assert!(ClassEvent::NAMES.contains(&e.name()));
    }

    #[test]
    fn a_lagging_listener_loses_the_oldest_and_publishing_never_blocks() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        for i in 0..(BUS_DEPTH as i64 + 10) {
            bus.publish(ClassEvent::ClassroomLeft { class_id: "k".into(), participant: "r".into(), at_ms: i });
        }
        assert!(matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
        assert!(matches!(rx.try_recv(), Ok(ClassEvent::ClassroomLeft { at_ms: 10, .. })));
    }
}
