//! Rooms and slots: which publisher track feeds which subscribers.
//!
//! A *slot* is a stable name for a source in a class (`main/camera`,
//! `<classroom>/mic`, `spotlight/camera`). Subscribers attach to slots, never to
//! publisher tracks, so a publisher that reconnects (or a spotlight that moves to
//! another classroom) continues on the subscribers' existing tracks.
//!
//! Invariants:
//! - A slot has at most one feed (publisher peer + mid) at a time; binding a new
//!   feed replaces the old one.
//! - Subscriber lists are copy-on-write `Arc<[..]>`: the forwarding path clones
//!   the `Arc`, never the list, and never holds a borrow of the room while writing
//!   to subscribers.
//! - `spotlight/*` slots exist from the room's creation and have no feed of their
//!   own: the called-on classroom's camera and mic are routed to them per packet.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use str0m::media::{MediaKind, Mid};

use super::PeerId;
use super::tap::TapId;
use crate::signaling::protocol::Source;

/// Owner name of the spotlight slots.
pub const SPOTLIGHT: &str = "spotlight";
/// Participant identity of the main classroom.
pub const MAIN: &str = "main";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotKey {
    pub owner: String,
    pub source: Source,
}

impl SlotKey {
    pub fn new(owner: &str, source: Source) -> Self {
        SlotKey { owner: owner.to_string(), source }
    }

    pub fn kind(&self) -> MediaKind {
        super::peer::media_kind_of(self.source)
    }

    /// The spotlight slot this source is routed to when its owner is called on.
    pub fn spotlight_of(source: Source) -> Option<SlotKey> {
        matches!(source, Source::Camera | Source::Mic).then(|| SlotKey::new(SPOTLIGHT, source))
    }

    /// Parse `owner/source` (as sent by clients in subscribe/unsubscribe).
    pub fn parse(s: &str) -> Option<SlotKey> {
        let (owner, source) = s.rsplit_once('/')?;
        let source = Source::ALL.into_iter().find(|x| x.as_str() == source)?;
        (!owner.is_empty()).then(|| SlotKey::new(owner, source))
    }
}

impl fmt::Display for SlotKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.source.as_str())
    }
}

/// The publisher track currently feeding a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    pub peer: PeerId,
    pub mid: Mid,
}

/// Where a slot's packets go: a subscriber connection's m-line, or a recording tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownRef {
    Peer { peer: PeerId, mid: Mid },
    Tap(TapId),
}

#[derive(Debug, Default)]
pub struct Slot {
    pub feed: Option<Feed>,
    pub subscribers: Arc<[DownRef]>,
    /// Whether subscribers were offered this slot (it has had a feed once).
    pub announced: bool,
}

impl Slot {
    pub fn attach(&mut self, down: DownRef) {
        let mut v = self.subscribers.to_vec();
        v.push(down);
        self.subscribers = v.into();
    }

    pub fn detach_peer(&mut self, peer: PeerId) {
        self.detach(|d| matches!(d, DownRef::Peer { peer: p, .. } if *p == peer));
    }

    pub fn detach_tap(&mut self, tap: TapId) {
        self.detach(|d| *d == DownRef::Tap(tap));
    }

    fn detach(&mut self, matches: impl Fn(&DownRef) -> bool) {
        if self.subscribers.iter().any(&matches) {
            self.subscribers = self.subscribers.iter().filter(|d| !matches(d)).copied().collect();
        }
    }

    /// The recording tap of this slot, if it is recorded.
    pub fn tap(&self) -> Option<TapId> {
        self.subscribers.iter().find_map(|d| match d {
            DownRef::Tap(t) => Some(*t),
            DownRef::Peer { .. } => None,
        })
    }
}

/// What a subscriber connection receives automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// The teacher: every classroom's camera and mic.
    Main,
    /// A listening classroom (its own id) or an observer (`None`): main's sources and the spotlight.
    Audience { own_id: Option<String> },
    /// A WHEP viewer: slots fixed by its offer, nothing added later.
    Fixed,
}

impl Policy {
    pub fn wants(&self, key: &SlotKey) -> bool {
        match self {
            Policy::Main => key.owner != MAIN && key.owner != SPOTLIGHT,
            Policy::Audience { own_id } => {
                (key.owner == MAIN || key.owner == SPOTLIGHT) && own_id.as_deref() != Some(key.owner.as_str())
            }
            Policy::Fixed => false,
        }
    }
}

#[derive(Debug)]
pub struct Room {
    pub slots: HashMap<SlotKey, Slot>,
    /// The classroom currently called on.
    pub spotlight: Option<String>,
    pub peers: Vec<PeerId>,
    /// Whether every published slot is recorded (each gets a tap).
    pub recording: bool,
}

impl Room {
    pub fn new() -> Self {
        let mut slots = HashMap::new();
        for source in [Source::Camera, Source::Mic] {
            slots.insert(SlotKey::new(SPOTLIGHT, source), Slot { announced: true, ..Slot::default() });
        }
        Room { slots, spotlight: None, peers: Vec::new(), recording: false }
    }

    /// The subscribers a packet of a track goes to: those of its own slot, plus
    /// those of the spotlight slot when its owner is called on. No allocation.
    pub fn fan_out(&self, own: &SlotKey, spotlight: Option<&SlotKey>, owner: &str) -> [Option<Arc<[DownRef]>>; 2] {
        let own_subs = self.slots.get(own).map(|s| s.subscribers.clone());
        let called_on = self.spotlight.as_deref() == Some(owner);
        let spot_subs = spotlight.filter(|_| called_on).and_then(|k| self.slots.get(k)).map(|s| s.subscribers.clone());
        [own_subs, spot_subs]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_route_as_the_protocol_says() {
        let cam = |o: &str| SlotKey::new(o, Source::Camera);
        let classroom = Policy::Audience { own_id: Some("c2".into()) };
        assert!(classroom.wants(&cam(MAIN)));
        assert!(classroom.wants(&cam(SPOTLIGHT)));
        assert!(!classroom.wants(&cam("c2")));
        assert!(!classroom.wants(&cam("c3")));
        assert!(Policy::Main.wants(&cam("c3")));
        assert!(!Policy::Main.wants(&cam(MAIN)));
        assert!(!Policy::Main.wants(&cam(SPOTLIGHT)));
        assert!(!Policy::Fixed.wants(&cam(MAIN)));
    }

    #[test]
    fn slot_keys_round_trip() {
        let k = SlotKey::new("room-7", Source::Board);
        assert_eq!(SlotKey::parse(&k.to_string()), Some(k));
        assert_eq!(SlotKey::parse("main/unknown"), None);
        assert_eq!(SlotKey::parse("/mic"), None);
    }

    #[test]
    fn called_on_classroom_also_feeds_spotlight() {
        let mut r = Room::new();
        let own = SlotKey::new("c1", Source::Camera);
        let spot = SlotKey::spotlight_of(Source::Camera);
        r.slots.entry(own.clone()).or_default().attach(DownRef::Peer { peer: PeerId(1), mid: Mid::from("0") });
        r.slots.get_mut(spot.as_ref().unwrap()).unwrap().attach(DownRef::Peer { peer: PeerId(2), mid: Mid::from("0") });
        let lens = |r: &Room, owner: &str| r.fan_out(&own, spot.as_ref(), owner).map(|s| s.map(|l| l.len()));
        assert_eq!(lens(&r, "c1"), [Some(1), None]);
        r.spotlight = Some("c1".into());
        assert_eq!(lens(&r, "c1"), [Some(1), Some(1)]);
        assert_eq!(lens(&r, "c2"), [Some(1), None], "only the called-on owner feeds the spotlight");
    }

    #[test]
    fn copy_on_write_detach() {
        let mut s = Slot::default();
        let (a, b) = (PeerId(1), PeerId(2));
        s.attach(DownRef::Peer { peer: a, mid: Mid::from("0") });
        s.attach(DownRef::Peer { peer: b, mid: Mid::from("1") });
        s.attach(DownRef::Tap(TapId(7)));
        let snapshot = s.subscribers.clone();
        s.detach_peer(a);
        assert_eq!(snapshot.len(), 3);
        assert_eq!(s.subscribers.len(), 2);
        assert_eq!(s.tap(), Some(TapId(7)));
        s.detach_tap(TapId(7));
        assert_eq!(s.tap(), None);
    }
}
