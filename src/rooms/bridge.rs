//! Bridged sources (RTSP cameras, SRT and RTMP encoders, `crate::bridges`) publish
//! into a class through here, the same way a WHIP publisher does: a publish
//! connection of the core under the role's identity (`main`, or the classroom id),
//! and a class member `bridge-<id>` for as long as the connection lives.
//!
//! Invariants:
//! - The slots a bridge feeds are the role's own (`main/board`, `<classroom>/camera`):
//!   subscribers, recording and the dashboard see it as that role's source.
//! - The member id is never a person's identity, so a bridge never replaces the
//!   teacher's or a classroom's session; a scheduled class refuses it outside its period.
//! - A bridge session ends like a WHIP session (`whip_gone`): on removal or when
//!   its connection dies.

use crate::sfu::room::MAIN;
use crate::sfu::{PublishRequest, RoomId};
use crate::signaling::protocol::{ParticipantInfo, Role, Source};
use crate::store::new_id;

use super::whip::WhipSession;
use super::{Owner, RoomError, Rooms};

/// Who a bridge publishes as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeIdentity {
    pub bridge_id: String,
    pub class_id: String,
    pub role: Role,
    /// The classroom id when `role` is `Classroom`.
    pub classroom: Option<String>,
    pub name: String,
}

impl BridgeIdentity {
    /// The slot owner: `main` or the classroom id.
    pub fn owner(&self) -> Result<String, RoomError> {
        match (self.role, &self.classroom) {
            (Role::Main, _) => Ok(MAIN.to_string()),
            (Role::Classroom, Some(c)) => Ok(c.clone()),
            _ => Err(RoomError::BadRequest("a bridge publishes as main or as a classroom".into())),
        }
    }

    pub fn member_id(&self) -> String {
        format!("bridge-{}", self.bridge_id)
    }
}

impl Rooms {
    /// Publish a bridge's offer (`sources` tags its mids); returns the session id and the answer.
    pub async fn bridge_start(&self, who: &BridgeIdentity, offer: String, sources: Vec<(String, Source)>) -> Result<(String, String), RoomError> {
        let owner = who.owner()?;
        if let Some((_, s)) = sources.iter().find(|(_, s)| !who.role.may_publish_source(*s)) {
            return Err(RoomError::Forbidden(format!("a {:?} may not publish {}", who.role, s.as_str())));
        }
        let class = self.store.class(&who.class_id)?.ok_or_else(|| RoomError::NotFound(format!("class {} does not exist", who.class_id)))?;
        self.check_scheduled_join(&class, None)?;
        let room: RoomId = class.id.as_str().into();
        let req = PublishRequest { room: room.clone(), participant: owner, peer: None, offer, sources };
        let (peer, answer) = self.driver.publish(req).await?;
        let conn = self.next_conn();
        let info = ParticipantInfo { id: who.member_id(), name: who.name.clone(), role: who.role, hand_raised: false };
        self.enter(&class, info, conn, None).await;
        let session = new_id('w');
        self.owners.insert(peer, Owner::Whip { session: session.clone() });
        self.whips.insert(session.clone(), WhipSession::publisher(room, peer, who.member_id(), conn));
        tracing::info!(class = %who.class_id, bridge = %who.bridge_id, session = %session, "bridge publishing");
        Ok((session, answer))
    }

    /// End a bridge's session (the source dropped, or the bridge was deleted).
    pub async fn bridge_stop(&self, session: &str) {
        let Some(s) = self.whips.get(session).map(|s| s.clone()) else { return };
        self.owners.remove(&s.peer);
        if let Err(e) = self.driver.remove_peer(&s.class, s.peer).await {
            tracing::warn!(session, error = %e, "removing a bridge connection");
        }
        self.whip_gone(session).await;
    }
}
