//! Classes as people use them: who may join, with which role, what each role
//! publishes and receives, raised hands and call-on; and the routing of the
//! forwarding core's events back to the sessions they concern.
//!
//! Invariants:
//! - Every entry point checks the token first (401), then the class (404), then
//!   the role (403); nothing is created before all three pass.
//! - Every connection the core creates is owned by exactly one session (room
//!   protocol, WHIP or WHEP) and removed when that session ends.
//! - Nothing here touches a socket or a packet: media goes through `MediaDriver`.

pub mod auth;
pub mod bridge;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod live;
mod scheduled;
mod whip;

use std::sync::Arc;
use std::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use dashmap::DashMap;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::driver::{CallError, MediaDriver};
use crate::sfu::room::{MAIN, Policy, SlotKey};
use crate::sfu::{NegotiationError, PeerId, PublishRequest, RoomId, SfuEvent};
use crate::signaling::protocol::{MediaKind, ParticipantInfo, PublishedSource, Role, ServerMsg, TrackInfo};
use crate::store::{ClassRow, Store, StoreError};
use auth::{AuthError, Claims, Tokens};
use events::{ClassEvent, EndReason, EventBus};
use live::{LiveClass, LiveClasses, OutTx};
pub use scheduled::{CLASS_OVER, REVOKED};
pub use whip::WhipKind;

#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CallError> for RoomError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Negotiation(n) => RoomError::Negotiation(n),
            CallError::Gone(g) => RoomError::Unavailable(g.to_string()),
        }
    }
}

impl From<crate::driver::DriverGone> for RoomError {
    fn from(e: crate::driver::DriverGone) -> Self {
        RoomError::Unavailable(e.to_string())
    }
}

/// Who owns a connection of the core.
#[derive(Debug, Clone)]
enum Owner {
    /// A room-protocol session; subscribe offers and connection loss go to it.
    Session { tx: OutTx },
    /// A WHIP or WHEP session, by its id.
    Whip { session: String },
}

/// One joined room-protocol session.
#[derive(Debug)]
pub struct Joined {
    pub claims: Claims,
    pub class: Arc<LiveClass>,
    pub conn: u64,
    pub subscriber: PeerId,
    pub publisher: Option<PeerId>,
    pub tx: OutTx,
}

pub struct Rooms {
    pub store: Store,
    pub driver: MediaDriver,
    pub tokens: Tokens,
    pub live: LiveClasses,
    /// Class events for webhooks and the dashboard.
    pub events: EventBus,
    /// How each participant of a live class is doing (server and client views).
    pub health: dashboard::Health,
    owners: DashMap<PeerId, Owner>,
    whips: DashMap<String, whip::WhipSession>,
    /// Sessions joined through a device link, by district classroom (to close on revoke).
    devices: DashMap<String, Vec<(u64, OutTx)>>,
    next_conn: AtomicU64,
    /// Lessons are recorded when this is set and the class records.
    recording: Option<crate::recording::Recording>,
    /// How long an empty class stays open (a lone teacher's reload does not end the lesson).
    empty_grace: Duration,
    /// Classes that became empty, for the closing task (`run_events`).
    emptied: tokio::sync::mpsc::UnboundedSender<RoomId>,
    emptied_rx: std::sync::Mutex<Option<UnboundedReceiver<RoomId>>>,
}

impl Rooms {
    pub fn new(store: Store, driver: MediaDriver, tokens: Tokens, recording: Option<crate::recording::Recording>, empty_grace: Duration) -> Rooms {
        let (emptied, emptied_rx) = tokio::sync::mpsc::unbounded_channel();
        Rooms {
            empty_grace,
            emptied,
            emptied_rx: std::sync::Mutex::new(Some(emptied_rx)),
            store,
            driver,
            tokens,
            live: LiveClasses::default(),
            events: EventBus::default(),
            health: dashboard::Health::default(),
            owners: DashMap::new(),
            whips: DashMap::new(),
            devices: DashMap::new(),
            next_conn: AtomicU64::new(1),
            recording,
        }
    }

    /// Token (401), then class (404).
    /// The recording service, when lessons are recorded on this server.
    pub fn recording(&self) -> Option<&crate::recording::Recording> {
        self.recording.as_ref()
    }

    pub fn authenticate(&self, token: &str) -> Result<(Claims, ClassRow), RoomError> {
        let claims = self.tokens.verify(token)?;
        if !claims.role.may_join_live() {
            return Err(RoomError::Forbidden("a student token opens recorded lessons only".into()));
        }
        let class = self.store.class(&claims.cls)?.ok_or_else(|| RoomError::NotFound(format!("class {} does not exist", claims.cls)))?;
        self.check_scheduled_join(&class, claims.dev.as_deref())?;
        Ok((claims, class))
    }

    /// Join a class over the room protocol; replaces an earlier session of the same identity.
    pub async fn join(&self, claims: Claims, class: ClassRow, tx: OutTx) -> Result<Joined, RoomError> {
        let conn = self.next_conn.fetch_add(1, Relaxed);
        let info = ParticipantInfo { id: claims.sub.clone(), name: claims.name.clone(), role: claims.role, hand_raised: false };
        let (live, snapshot) = self.enter(&class, info.clone(), conn, Some(tx.clone())).await;
        tx.send(ServerMsg::Joined {
            v: crate::signaling::protocol::PROTOCOL_VERSION,
            class_id: class.id.clone(),
            class_title: class.title.clone(),
            you: info,
            participants: snapshot.participants,
            call_on: snapshot.call_on,
            live: snapshot.live,
        });
        tx.send(ServerMsg::Recording { on: snapshot.recording });
        let policy = policy_of(&claims);
        let subscriber = match self.driver.subscribe(live.id.clone(), claims.sub.clone(), policy).await {
            Ok(id) => id,
            Err(e) => {
                live.leave(&claims.sub, conn);
                return Err(e.into());
            }
        };
        self.owners.insert(subscriber, Owner::Session { tx: tx.clone() });
        if let Some(dev) = &claims.dev {
            self.devices.entry(dev.clone()).or_default().push((conn, tx.clone()));
        }
        self.driver.start_offers(&live.id, subscriber).await?;
        tracing::info!(class = %class.id, participant = %claims.sub, role = ?claims.role, "joined");
        let at_ms = crate::store::unix_now_ms();
        let (participant, name) = (claims.sub.clone(), claims.name.clone());
        self.events.publish(ClassEvent::ClassroomJoined { class_id: class.id.clone(), participant, name, role: claims.role, at_ms });
        Ok(Joined { claims, class: live, conn, subscriber, publisher: None, tx })
    }

    /// Offer (or re-offer) of a session's publish connection.
    pub async fn publish(&self, s: &mut Joined, sdp: String, sources: Vec<PublishedSource>) -> Result<String, RoomError> {
        check_sources(s.claims.role, &sources)?;
        let req = PublishRequest {
            room: s.class.id.clone(),
            participant: s.claims.sub.clone(),
            peer: s.publisher,
            offer: sdp,
            sources: sources.into_iter().map(|p| (p.mid, p.source)).collect(),
        };
        let (peer, answer) = self.driver.publish(req).await?;
        if s.publisher != Some(peer) {
            self.owners.insert(peer, Owner::Session { tx: s.tx.clone() });
            s.publisher = Some(peer);
        }
        Ok(answer)
    }

    pub async fn subscribe_answer(&self, s: &Joined, sdp: String) -> Result<(), RoomError> {
        Ok(self.driver.accept_answer(&s.class.id, s.subscriber, sdp).await?)
    }

    /// Restart ICE on a session's subscribe connection (a new offer follows).
    pub async fn restart_ice(&self, s: &Joined) -> Result<(), RoomError> {
        Ok(self.driver.restart_ice(&s.class.id, s.subscriber).await?)
    }

    pub async fn set_paused(&self, s: &Joined, keys: &[String], paused: bool) -> Result<(), RoomError> {
        let parsed: Option<Vec<SlotKey>> = keys.iter().map(|k| SlotKey::parse(k)).collect();
        let keys = parsed.ok_or_else(|| RoomError::BadRequest("track keys look like main/camera".into()))?;
        Ok(self.driver.set_paused(&s.class.id, s.subscriber, keys, paused).await?)
    }

    pub fn raise_hand(&self, s: &Joined, raised: bool) -> Result<(), RoomError> {
        if s.claims.role != Role::Classroom {
            return Err(RoomError::Forbidden("only a listening classroom raises its hand".into()));
        }
        s.class.set_hand(&s.claims.sub, raised);
        Ok(())
    }

    pub async fn call_on(&self, s: &Joined, who: Option<String>) -> Result<(), RoomError> {
        if s.claims.role != Role::Main {
            return Err(RoomError::Forbidden("only the main classroom calls on a classroom".into()));
        }
        if let Some(id) = &who {
            let is_classroom = s.class.participants().iter().any(|p| &p.id == id && p.role == Role::Classroom);
            if !is_classroom {
                return Err(RoomError::NotFound(format!("classroom {id} is not in the class")));
            }
        }
        self.set_call_on(&s.class, who).await
    }

    /// Teacher only: start or stop recording the live lesson.
    pub async fn set_recording(&self, s: &Joined, on: bool) -> Result<(), RoomError> {
        if s.claims.role != Role::Main {
            return Err(RoomError::Forbidden("only the main classroom starts or stops recording".into()));
        }
        let rec = self.recording.as_ref().ok_or_else(|| RoomError::Unavailable("recording is off on this server".into()))?;
        let class = self.store.class(&s.class.id)?.ok_or_else(|| RoomError::NotFound("the class no longer exists".into()))?;
        if on {
            rec.begin(s.class.id.clone(), class.id.clone(), class.title.clone(), class.teacher.clone());
        }
        self.driver.set_recording(s.class.id.clone(), on).await?;
        if s.class.set_recording(on) {
            tracing::info!(class = %s.class.id, on, "recording switched by the teacher");
        }
        Ok(())
    }

    async fn set_call_on(&self, class: &LiveClass, who: Option<String>) -> Result<(), RoomError> {
        if class.set_call_on(who.clone()) {
            self.driver.set_spotlight(class.id.clone(), who).await?;
        }
        Ok(())
    }

    /// End a session: its connections go, its member leaves, its call-on ends.
    pub async fn leave(&self, s: &Joined) {
        if let Some(dev) = &s.claims.dev {
            self.devices.remove_if_mut(dev, |_, v| {
                v.retain(|(c, _)| *c != s.conn);
                v.is_empty()
            });
        }
        for peer in [Some(s.subscriber), s.publisher].into_iter().flatten() {
            self.owners.remove(&peer);
            let _ = self.driver.remove_peer(&s.class.id, peer).await;
        }
        if s.class.leave(&s.claims.sub, s.conn) {
            if s.class.call_on().as_deref() == Some(s.claims.sub.as_str()) {
                let _ = self.set_call_on(&s.class, None).await;
            }
            tracing::info!(class = %s.class.id, participant = %s.claims.sub, "left");
            self.health.book().forget(&s.class.id, &s.claims.sub);
            let at_ms = crate::store::unix_now_ms();
            self.events.publish(ClassEvent::ClassroomLeft { class_id: s.class.id.to_string(), participant: s.claims.sub.clone(), at_ms });
        }
        self.close_if_empty(&s.class.id).await;
    }

    /// Enter the live class of `class` (replacing a member of the same identity);
    /// the first participant opens it and, if the class records, starts its lesson.
    async fn enter(&self, class: &ClassRow, info: ParticipantInfo, conn: u64, tx: Option<OutTx>) -> (Arc<LiveClass>, live::Snapshot) {
        let j = self.live.join(&class.id, &class.title, info, conn, tx);
        close_replaced(j.replaced);
        if j.opened {
            let (title, teacher) = (class.title.clone(), class.teacher.clone());
            let at_ms = crate::store::unix_now_ms();
            self.events.publish(ClassEvent::ClassStarted { class_id: class.id.clone(), title, teacher, period_id: None, at_ms });
        }
        if j.opened && class.record {
            self.start_recording(&j.class, class).await;
        }
        (j.class, j.snapshot)
    }

    /// The last participant left: after the grace period (if nobody came back) the class
    /// closes and its lesson ends.
    pub(crate) async fn close_if_empty(&self, class_id: &RoomId) {
        if self.live.get(class_id).is_some_and(|c| c.empty_since().is_some()) {
            let _ = self.emptied.send(class_id.clone());
        }
    }

    /// Closes classes once they have been empty for the grace period (runs with `run_events`).
    async fn run_closing(self: Arc<Self>, mut rx: UnboundedReceiver<RoomId>) {
        while let Some(id) = rx.recv().await {
            let rooms = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(rooms.empty_grace).await;
                rooms.close_now_if_empty(&id).await;
            });
        }
    }

    async fn close_now_if_empty(&self, class_id: &RoomId) {
        let emptied_at_ms = crate::store::unix_now_ms() - self.empty_grace.as_millis() as i64;
        if !self.live.close_if_empty(class_id, self.empty_grace, std::time::Instant::now()) {
            return;
        }
        tracing::info!(class = %class_id, "class closed");
        self.class_over(class_id, EndReason::Empty, emptied_at_ms).await;
    }

    /// A class that just left `live` is over: its health is forgotten, listeners hear
    /// why, its recording stops and its lesson ends at `at_ms`. Every way a class ends
    /// (empty, deleted, its period over) comes through here.
    pub(crate) async fn class_over(&self, class_id: &RoomId, reason: EndReason, at_ms: i64) {
        self.health.book().forget_class(class_id);
        self.events.publish(ClassEvent::ClassEnded { class_id: class_id.to_string(), reason, at_ms });
        if let Some(rec) = &self.recording {
            let _ = self.driver.set_recording(class_id.clone(), false).await;
            rec.end(class_id.clone(), at_ms);
        }
    }

    /// Delete a class: everyone is disconnected, then the record goes.
    pub async fn delete_class(&self, id: &str) -> Result<bool, RoomError> {
        if let Some(class) = self.live.remove(id) {
            class.close_all("the class was deleted");
            self.class_over(&class.id, EndReason::Deleted, crate::store::unix_now_ms()).await;
        }
        let _ = self.driver.close_room(id).await;
        Ok(self.store.delete_class(id)?)
    }

    /// Route the core's events to the sessions they concern (runs for the server's life).
    pub async fn run_events(self: Arc<Self>, mut rx: UnboundedReceiver<SfuEvent>) {
        let emptied = self.emptied_rx.lock().ok().and_then(|mut r| r.take());
        if let Some(emptied) = emptied {
            tokio::spawn(self.clone().run_closing(emptied));
        }
        while let Some(event) = rx.recv().await {
            self.on_event(event).await;
        }
    }

    async fn on_event(&self, event: SfuEvent) {
        match event {
            SfuEvent::SubscribeOffer { peer, sdp, tracks } => {
                if let Some(Owner::Session { tx }) = self.owners.get(&peer).map(|o| o.clone()) {
                    tx.send(ServerMsg::SubscribeOffer { sdp, tracks: tracks.into_iter().map(track_info).collect() });
                }
            }
            SfuEvent::PublisherLayers { peer, mid, active } => {
                if let Some(Owner::Session { tx }) = self.owners.get(&peer).map(|o| o.clone()) {
                    tx.send(ServerMsg::Layers { mid, active });
                }
            }
            SfuEvent::SourceState { room, key, live } => {
                if let Some(class) = self.live.get(&room) {
                    class.set_source_live(key.to_string(), live);
                }
            }
            // Recording is wired to the recorder by the recording layer (not yet built).
            SfuEvent::PeerConnected { .. } | SfuEvent::TapStarted { .. } | SfuEvent::TapEnded { .. } | SfuEvent::IceUfrag { .. } => {}
            SfuEvent::PeerHealth(h) => self.health.book().peer(*h),
            SfuEvent::PeerClosed { peer, reason, .. } => {
                self.health.book().peer_closed(peer);
                self.on_peer_closed(peer, reason).await
            }
            SfuEvent::ShardReset { rooms } => self.on_shard_reset(&rooms).await,
        }
    }

    async fn on_peer_closed(&self, peer: PeerId, reason: crate::sfu::CloseReason) {
        match self.owners.remove(&peer).map(|(_, o)| o) {
            Some(Owner::Session { tx }) if reason != crate::sfu::CloseReason::Removed => {
                // The client rejoins by itself and gets fresh connections.
                tx.close(4002, "media connection lost");
            }
            Some(Owner::Whip { session }) => self.whip_gone(&session).await,
            _ => {}
        }
    }

    /// The media of these rooms restarted: every session rejoins, WHIP/WHEP sessions end.
    async fn on_shard_reset(&self, rooms: &[RoomId]) {
        self.health.book().rooms_reset(rooms);
        for room in rooms {
            if let Some(class) = self.live.get(room) {
                class.close_all_with(4002, "media server restarted; rejoining");
            }
            let stale: Vec<String> = self.whips.iter().filter(|w| &w.class == room).map(|w| w.key().clone()).collect();
            for session in stale {
                self.whip_gone(&session).await;
            }
        }
    }

    fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Relaxed)
    }
}

/// Tell a session that a newer join with its identity took its place.
fn close_replaced(old: Option<OutTx>) {
    if let Some(old) = old {
        let message = "joined again from another page".into();
        old.send(ServerMsg::Error { code: crate::signaling::protocol::ErrorCode::Replaced, message });
        old.close(4001, "replaced by a newer connection");
    }
}

/// What each role receives (see docs/protocol.md).
fn policy_of(c: &Claims) -> Policy {
    match c.role {
        Role::Main => Policy::Main,
        Role::Classroom => Policy::Audience { own_id: Some(c.sub.clone()) },
        Role::Observer | Role::Student => Policy::Audience { own_id: None },
    }
}

fn check_sources(role: Role, sources: &[PublishedSource]) -> Result<(), RoomError> {
    if !role.may_publish() {
        return Err(RoomError::Forbidden("observers do not publish".into()));
    }
    if let Some(p) = sources.iter().find(|p| !role.may_publish_source(p.source)) {
        return Err(RoomError::Forbidden(format!("a {role:?} may not publish {}", p.source.as_str())));
    }
    let mut seen: Vec<_> = sources.iter().map(|p| p.source).collect();
    seen.sort();
    seen.dedup();
    if seen.len() != sources.len() {
        return Err(RoomError::BadRequest("each source may be published once".into()));
    }
    Ok(())
}

fn track_info(t: crate::sfu::TrackDesc) -> TrackInfo {
    let kind = if t.key.source.is_audio() { MediaKind::Audio } else { MediaKind::Video };
    TrackInfo { mid: t.mid, key: t.key.to_string(), source: t.key.source, kind }
}

/// The identity a role's token carries when the admin API mints it.
pub fn identity_for(role: Role, classroom_id: Option<&str>) -> String {
    match role {
        Role::Main => MAIN.to_string(),
        Role::Classroom => classroom_id.unwrap_or_default().to_string(),
        Role::Observer => crate::store::new_id('o'),
        Role::Student => crate::store::new_id('s'),
    }
}
