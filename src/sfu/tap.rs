//! Recording taps: the recorder as just another subscriber of a slot.
//!
//! A tap receives a slot's packets through the same gate and rewriter as a
//! subscriber's track (keyframe after every source switch, one continuous
//! sequence and timestamp line across publisher reconnects), but instead of
//! being written into a WebRTC connection each packet is queued, in the clear,
//! for the layer above (`poll_tap`), which hands it to the recorder through a
//! bounded queue that drops and counts rather than stalling the room.
//!
//! A recorded video track gets a keyframe at least every
//! [`RECORDING_KEYFRAME_INTERVAL`] (WebRTC senders only key on request): replay
//! segments start at keyframes, so this bounds how far a seek lands from its target.
//!
//! Invariants:
//! - A recorded room has exactly one tap per published (non-spotlight) slot;
//!   taps start with `TapStarted` and end with `TapEnded`.
//! - A tap never holds a lock or blocks: `poll_tap` only drains what the last
//!   input produced.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::peer::{CodecKey, DownTrack};
use super::room::{DownRef, SPOTLIGHT, SlotKey};
use super::{RoomId, Sfu, SfuEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TapId(pub u64);

impl std::fmt::Display for TapId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tap-{:x}", self.0)
    }
}

/// Longest time a recorded video track goes without a keyframe.
pub const RECORDING_KEYFRAME_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Tap {
    pub room: RoomId,
    pub down: DownTrack,
    /// Arrival of the last keyframe recorded, or of the last request for one.
    pub last_keyframe: Option<Instant>,
}

impl Tap {
    /// Whether a video packet arriving at `at` finds the last keyframe too old; if so
    /// the request counts as the new reference, so one is asked per interval.
    pub fn keyframe_due(&mut self, keyframe: bool, at: Instant) -> bool {
        let due = !keyframe && self.last_keyframe.is_some_and(|t| at.saturating_duration_since(t) >= RECORDING_KEYFRAME_INTERVAL);
        if keyframe || due {
            self.last_keyframe = Some(at);
        }
        due
    }
}

/// One packet for the recorder, already rewritten onto the tap's continuous line.
#[derive(Debug, Clone)]
pub struct TapPacket {
    pub tap: TapId,
    pub codec: CodecKey,
    pub seq: u64,
    pub ts: u32,
    pub marker: bool,
    pub payload: Arc<[u8]>,
    /// Capture time on the server's clock, for alignment: from the publisher's sender
    /// reports when `captured_by_sender`, else the arrival time.
    pub captured: Instant,
    pub captured_by_sender: bool,
    /// When the packet reached the server.
    pub arrival: Instant,
}

impl Sfu {
    /// Record every published slot of `room` (and every slot published later), or stop.
    pub fn set_recording(&mut self, now: Instant, room: &RoomId, on: bool) {
        let r = self.rooms.entry(room.clone()).or_insert_with(super::room::Room::new);
        r.recording = on;
        let keys: Vec<SlotKey> = r.slots.iter().filter(|(k, s)| s.feed.is_some() && k.owner != SPOTLIGHT).map(|(k, _)| k.clone()).collect();
        if on {
            for key in keys {
                self.ensure_tap(room, key, now);
            }
        } else {
            self.end_taps(room);
        }
    }

    /// A tap on `key` if the room is recorded and the slot has none yet.
    pub(super) fn ensure_tap(&mut self, room: &RoomId, key: SlotKey, now: Instant) {
        let wanted = self.rooms.get(room).is_some_and(|r| {
            r.recording && key.owner != SPOTLIGHT && r.slots.get(&key).is_some_and(|s| s.tap().is_none())
        });
        if !wanted {
            return;
        }
        self.next_id += 1;
        let id = TapId(self.next_id);
        let mut down = DownTrack::new(key.clone(), self.next_random_u16());
        down.negotiated = true;
        self.taps.insert(id, Tap { room: room.clone(), down, last_keyframe: None });
        let slot = self.rooms.get_mut(room).and_then(|r| r.slots.get_mut(&key));
        let feed = slot.and_then(|s| {
            s.attach(DownRef::Tap(id));
            s.feed
        });
        tracing::info!(room = %room, %key, tap = %id, "recording track");
        self.events.push_back(SfuEvent::TapStarted { room: room.clone(), tap: id, key });
        if let Some(feed) = feed {
            let top = self.peers.get(&feed.peer).and_then(|p| p.tracks_in.get(&feed.mid)).map_or(0, |t| t.live_layers(now).saturating_sub(1));
            self.request_keyframe(feed.peer, feed.mid, top, now);
        }
    }

    /// End every tap of a room.
    pub(super) fn end_taps(&mut self, room: &RoomId) {
        let ids: Vec<TapId> = self.taps.iter().filter(|(_, t)| &t.room == room).map(|(id, _)| *id).collect();
        for id in ids {
            let Some(tap) = self.taps.remove(&id) else { continue };
            if let Some(slot) = self.rooms.get_mut(room).and_then(|r| r.slots.get_mut(&tap.down.slot)) {
                slot.detach_tap(id);
            }
            self.events.push_back(SfuEvent::TapEnded { tap: id });
        }
    }

    /// The next packet for the recorder, if any.
    pub fn poll_tap(&mut self) -> Option<TapPacket> {
        self.tap_out.pop_front()
    }
}
