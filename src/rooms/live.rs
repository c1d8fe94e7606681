//! Live state of the classes in progress: who is in, raised hands, call-on,
//! which sources are live; and fan-out of room events to every member.
//!
//! Invariants:
//! - One member per identity: a second join with the same identity (a teacher
//!   reloading the page) replaces the first, which is told `replaced`.
//! - Only the connection that joined may remove its member (`conn` check), so a
//!   late close of a replaced connection never removes its successor.
//! - Sending to a member never blocks: a member whose queue is full is closed.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use dashmap::DashMap;
use tokio::sync::{Notify, mpsc};

use crate::sfu::RoomId;
use crate::signaling::protocol::{ParticipantInfo, ServerMsg};

/// What a session's writer task receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Msg(ServerMsg),
    /// Close the connection with this WebSocket close code and reason.
    Close(u16, String),
}

/// Queue depth per session; a client this far behind is disconnected.
pub const SESSION_QUEUE: usize = 256;

/// Sending side of a session's queue. Never blocks: when the queue is full the
/// session is told to close instead (a client that far behind cannot catch up).
#[derive(Debug, Clone)]
pub struct OutTx {
    tx: mpsc::Sender<Outgoing>,
    kill: Arc<Notify>,
}

/// Receiving side, owned by the session's writer.
#[derive(Debug)]
pub struct OutRx {
    rx: mpsc::Receiver<Outgoing>,
    kill: Arc<Notify>,
}

pub fn session_queue(depth: usize) -> (OutTx, OutRx) {
    let (tx, rx) = mpsc::channel(depth);
    let kill = Arc::new(Notify::new());
    (OutTx { tx, kill: kill.clone() }, OutRx { rx, kill })
}

impl OutTx {
    pub fn send(&self, msg: ServerMsg) {
        self.push(Outgoing::Msg(msg));
    }

    pub fn close(&self, code: u16, reason: &str) {
        self.push(Outgoing::Close(code, reason.into()));
    }

    fn push(&self, item: Outgoing) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(item) {
            self.kill.notify_one();
        }
    }
}

impl OutRx {
    /// The next item; `None` once every sender is gone.
    pub async fn next(&mut self) -> Option<Outgoing> {
        tokio::select! {
            biased;
            _ = self.kill.notified() => Some(Outgoing::Close(1008, "client too slow".into())),
            item = self.rx.recv() => item,
        }
    }
}

#[derive(Debug)]
struct Member {
    info: ParticipantInfo,
    conn: u64,
    tx: Option<OutTx>,
}

#[derive(Debug, Default)]
struct ClassState {
    members: HashMap<String, Member>,
    call_on: Option<String>,
    live: BTreeSet<String>,
    /// The lesson is being recorded now.
    recording: bool,
    /// When the last member left (the class closes after a grace period).
    empty_since: Option<std::time::Instant>,
    /// Opened by the timetable: stays open, empty or not, until the scheduler closes it.
    scheduled: bool,
}

/// Snapshot sent in `joined`.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub participants: Vec<ParticipantInfo>,
    pub call_on: Option<String>,
    pub live: Vec<String>,
    pub recording: bool,
}

#[derive(Debug)]
pub struct LiveClass {
    pub id: RoomId,
    pub title: String,
    state: Mutex<ClassState>,
}

impl LiveClass {
    fn state(&self) -> MutexGuard<'_, ClassState> {
        // A panic while holding this lock would be a bug in this module; recover the data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Add (or replace) a member; returns the replaced member's queue and a snapshot.
    pub fn join(&self, info: ParticipantInfo, conn: u64, tx: Option<OutTx>) -> (Option<OutTx>, Snapshot) {
        let mut s = self.state();
        let id = info.id.clone();
        let old = s.members.insert(id.clone(), Member { info: info.clone(), conn, tx });
        s.empty_since = None;
        let snapshot = Snapshot {
            participants: s.members.values().filter(|m| m.info.id != id).map(|m| m.info.clone()).collect(),
            call_on: s.call_on.clone(),
            live: s.live.iter().cloned().collect(),
            recording: s.recording,
        };
        broadcast(&s, &ServerMsg::ParticipantJoined { participant: info }, Some(&id));
        (old.and_then(|m| m.tx), snapshot)
    }

    /// Remove the member if `conn` still owns it; ends its call-on. Returns whether removed.
    pub fn leave(&self, id: &str, conn: u64) -> bool {
        let mut s = self.state();
        if s.members.get(id).is_none_or(|m| m.conn != conn) {
            return false;
        }
        s.members.remove(id);
        if s.members.is_empty() {
            s.empty_since = Some(std::time::Instant::now());
        }
        broadcast(&s, &ServerMsg::ParticipantLeft { id: id.into() }, None);
        true
    }

    /// Since when nobody is in the class (`None` while someone is, or while it is scheduled).
    pub fn empty_since(&self) -> Option<std::time::Instant> {
        let s = self.state();
        if s.members.is_empty() && !s.scheduled { Some(s.empty_since.unwrap_or_else(std::time::Instant::now)) } else { None }
    }

    /// Whether the timetable holds this class open.
    pub fn scheduled(&self) -> bool {
        self.state().scheduled
    }

    /// Hold the class open for its period (or let the empty-class rule apply again).
    /// Returns whether this changed anything.
    pub fn set_scheduled(&self, on: bool) -> bool {
        let mut s = self.state();
        let changed = s.scheduled != on;
        s.scheduled = on;
        changed
    }

    pub fn member_count(&self) -> usize {
        self.state().members.len()
    }

    pub fn participants(&self) -> Vec<ParticipantInfo> {
        self.state().members.values().map(|m| m.info.clone()).collect()
    }

    pub fn set_hand(&self, id: &str, raised: bool) {
        let mut s = self.state();
        if let Some(m) = s.members.get_mut(id) {
            m.info.hand_raised = raised;
            broadcast(&s, &ServerMsg::Hand { id: id.into(), raised }, None);
        }
    }

    /// Change the call-on; returns false if it was already so.
    pub fn set_call_on(&self, who: Option<String>) -> bool {
        let mut s = self.state();
        if s.call_on == who {
            return false;
        }
        s.call_on = who.clone();
        broadcast(&s, &ServerMsg::CallOn { participant: who }, None);
        true
    }

    /// Whether the class is recorded now; tells everyone when it changes.
    pub fn set_recording(&self, on: bool) -> bool {
        let mut s = self.state();
        if s.recording == on {
            return false;
        }
        s.recording = on;
        broadcast(&s, &ServerMsg::Recording { on }, None);
        true
    }

    pub fn recording(&self) -> bool {
        self.state().recording
    }

    pub fn call_on(&self) -> Option<String> {
        self.state().call_on.clone()
    }

    pub fn set_source_live(&self, key: String, live: bool) {
        let mut s = self.state();
        let changed = if live { s.live.insert(key.clone()) } else { s.live.remove(&key) };
        if changed {
            broadcast(&s, &ServerMsg::SourceState { key, live }, None);
        }
    }

    /// Close every member's connection (the class was deleted).
    pub fn close_all(&self, reason: &str) {
        self.close_all_with(1000, reason);
    }

    /// Close every member's connection with a close code (4002: rejoin).
    pub fn close_all_with(&self, code: u16, reason: &str) {
        for m in self.state().members.values() {
            if let Some(tx) = &m.tx {
                tx.close(code, reason);
            }
        }
    }
}

fn broadcast(s: &ClassState, msg: &ServerMsg, except: Option<&str>) {
    for m in s.members.values().filter(|m| Some(m.info.id.as_str()) != except) {
        if let Some(tx) = &m.tx {
            tx.send(msg.clone());
        }
    }
}

/// What `LiveClasses::join` returns.
pub struct Joining {
    pub class: Arc<LiveClass>,
    pub opened: bool,
    pub replaced: Option<OutTx>,
    pub snapshot: Snapshot,
}

/// Every class with someone in it.
#[derive(Debug, Default)]
pub struct LiveClasses {
    classes: DashMap<RoomId, Arc<LiveClass>>,
}

impl LiveClasses {
    /// Join the live class (opening it if needed), atomically with respect to
    /// `close_if_empty`: a join can never land in a class that is being closed.
    /// Returns the class, whether this join opened it, the replaced member's queue
    /// and the snapshot for `joined`.
    pub fn join(&self, id: &str, title: &str, info: ParticipantInfo, conn: u64, tx: Option<OutTx>) -> Joining {
        let mut opened = false;
        let entry = self.classes.entry(id.into()).or_insert_with(|| {
            opened = true;
            Arc::new(LiveClass { id: id.into(), title: title.into(), state: Mutex::default() })
        });
        // The map's entry stays locked until the member is in.
        let (replaced, snapshot) = entry.value().join(info, conn, tx);
        Joining { class: entry.value().clone(), opened, replaced, snapshot }
    }

    /// Open a class nobody has joined yet (the timetable's period started); returns
    /// the class and whether it was opened now (false: it was already live).
    pub fn open(&self, id: &str, title: &str) -> (Arc<LiveClass>, bool) {
        let mut opened = false;
        let entry = self.classes.entry(id.into()).or_insert_with(|| {
            opened = true;
            Arc::new(LiveClass { id: id.into(), title: title.into(), state: Mutex::default() })
        });
        entry.value().set_scheduled(true);
        (entry.value().clone(), opened)
    }

    pub fn get(&self, id: &str) -> Option<Arc<LiveClass>> {
        self.classes.get(id).map(|c| c.value().clone())
    }

    /// Forget a class once nobody has been in it for `grace` at `now`; returns whether it was closed.
    pub fn close_if_empty(&self, id: &str, grace: std::time::Duration, now: std::time::Instant) -> bool {
        self.classes.remove_if(id, |_, c| c.empty_since().is_some_and(|t| now.saturating_duration_since(t) >= grace)).is_some()
    }

    pub fn remove(&self, id: &str) -> Option<Arc<LiveClass>> {
        self.classes.remove(id).map(|(_, c)| c)
    }

    pub fn count(&self) -> usize {
        self.classes.len()
    }

    /// Every live class (a snapshot: the map is not locked afterwards).
    pub fn all(&self) -> Vec<Arc<LiveClass>> {
        self.classes.iter().map(|c| c.value().clone()).collect()
    }

    pub fn participant_count(&self) -> usize {
        self.classes.iter().map(|c| c.member_count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::protocol::Role;

    fn info(id: &str, role: Role) -> ParticipantInfo {
        ParticipantInfo { id: id.into(), name: id.into(), role, hand_raised: false }
    }

    #[test]
    fn rejoin_replaces_and_late_close_does_not_remove_successor() {
        let live = LiveClasses::default();
        let (tx1, _rx1) = session_queue(8);
        let (tx2, _rx2) = session_queue(8);
        let first = live.join("k1", "Math", info("main", Role::Main), 1, Some(tx1));
        assert!(first.opened && first.replaced.is_none());
        let second = live.join("k1", "Math", info("main", Role::Main), 2, Some(tx2));
        assert!(!second.opened && second.replaced.is_some());
        let class = second.class;
        assert!(!class.leave("main", 1), "the old connection no longer owns the member");
        assert_eq!(class.participants().len(), 1, "the newer connection is still in");
        assert!(class.leave("main", 2));
        assert!(live.close_if_empty("k1", std::time::Duration::ZERO, std::time::Instant::now()));
        assert_eq!(live.count(), 0);
    }

    #[test]
    fn an_empty_class_stays_open_for_its_grace_and_a_rejoin_keeps_it() {
        let live = LiveClasses::default();
        let grace = std::time::Duration::from_secs(10);
        let later = || std::time::Instant::now() + grace;
        let class = live.join("k1", "Math", info("main", Role::Main), 1, None).class;
        assert!(!live.close_if_empty("k1", std::time::Duration::ZERO, later()), "not empty");
        assert!(class.leave("main", 1));
        assert!(!live.close_if_empty("k1", grace, std::time::Instant::now()), "empty, but only just");
        let again = live.join("k1", "Math", info("main", Role::Main), 2, None);
        assert!(!again.opened, "the teacher's reload lands in the same class");
        assert!(!live.close_if_empty("k1", grace, later()), "someone is back");
        assert!(again.class.leave("main", 2));
        assert!(live.close_if_empty("k1", grace, later()), "empty for the whole grace");
    }

    #[test]
    fn members_hear_hands_and_call_on() {
        let live = LiveClasses::default();
        let (tx, mut rx) = session_queue(8);
        let class = live.join("k1", "Math", info("main", Role::Main), 1, Some(tx)).class;
        live.join("k1", "Math", info("r1", Role::Classroom), 2, None);
        class.set_hand("r1", true);
        assert!(class.set_call_on(Some("r1".into())));
        assert!(!class.set_call_on(Some("r1".into())));
        let got: Vec<_> = std::iter::from_fn(|| rx.rx.try_recv().ok()).collect();
        assert_eq!(got, vec![
            Outgoing::Msg(ServerMsg::ParticipantJoined { participant: info("r1", Role::Classroom) }),
            Outgoing::Msg(ServerMsg::Hand { id: "r1".into(), raised: true }),
            Outgoing::Msg(ServerMsg::CallOn { participant: Some("r1".into()) }),
        ]);
    }

    #[test]
    fn a_scheduled_class_stays_open_empty_until_released() {
        let live = LiveClasses::default();
        let (class, opened) = live.open("k1", "Math");
        assert!(opened && class.scheduled());
        let later = std::time::Instant::now() + std::time::Duration::from_secs(3600);
        assert!(!live.close_if_empty("k1", std::time::Duration::ZERO, later), "nobody in, but its period runs");
        let joined = live.join("k1", "Math", info("b1", Role::Classroom), 1, None);
        assert!(!joined.opened, "the classroom lands in the scheduled class");
        assert!(joined.class.leave("b1", 1));
        assert!(!live.open("k1", "Math").1, "opening twice is harmless");
        assert!(class.set_scheduled(false));
        assert!(live.close_if_empty("k1", std::time::Duration::ZERO, later), "released: the usual rule applies");
    }

    #[tokio::test]
    async fn a_full_queue_closes_instead_of_blocking() {
        let (tx, mut rx) = session_queue(1);
        tx.send(ServerMsg::Pong);
        tx.send(ServerMsg::Pong);
        assert_eq!(rx.next().await, Some(Outgoing::Close(1008, "client too slow".into())));
    }
}
