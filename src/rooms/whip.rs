//! WHIP (RFC 9725) publishing and WHEP viewing sessions: one connection each,
//! created by an offer and ended by DELETE (or by the connection dying).
//!
//! Invariants: a session is deleted only with a token for the same class and
//! identity that created it; a WHIP publisher is a member of the class for as
//! long as its session lives, like a browser publisher.

use crate::sfu::sdp_check::offered_codecs;
use crate::sfu::{PeerId, PublishRequest, RoomId};
use crate::signaling::protocol::{ParticipantInfo, Role, Source};
use crate::store::new_id;

use super::{Owner, RoomError, Rooms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhipKind {
    /// Publish into a class.
    Whip,
    /// Watch a class.
    Whep,
}

#[derive(Debug, Clone)]
pub struct WhipSession {
    kind: WhipKind,
    pub(super) class: RoomId,
    pub(super) peer: PeerId,
    identity: String,
    conn: u64,
}

impl WhipSession {
    /// A publishing session that is not created by a WHIP request (a bridge, `super::bridge`).
    pub(super) fn publisher(class: RoomId, peer: PeerId, identity: String, conn: u64) -> WhipSession {
        WhipSession { kind: WhipKind::Whip, class, peer, identity, conn }
    }
}

impl Rooms {
    /// Start a WHIP or WHEP session; returns its id and the SDP answer.
    pub async fn whip_start(
        &self,
        kind: WhipKind,
        class_id: &str,
        token: &str,
        offer: String,
        sources: Option<&str>,
    ) -> Result<(String, String), RoomError> {
        let (claims, class) = self.authenticate(token)?;
        if claims.cls != class_id {
            return Err(RoomError::Forbidden("this token is for another class".into()));
        }
        let room: RoomId = class.id.as_str().into();
        let conn = self.next_conn();
        let (peer, answer) = match kind {
            WhipKind::Whip => {
                if !claims.role.may_publish() {
                    return Err(RoomError::Forbidden("observers do not publish".into()));
                }
                let tagged = tag_sources(&offer, claims.role, sources)?;
                let req = PublishRequest { room: room.clone(), participant: claims.sub.clone(), peer: None, offer, sources: tagged };
                let r = self.driver.publish(req).await?;
                let info = ParticipantInfo { id: claims.sub.clone(), name: claims.name.clone(), role: claims.role, hand_raised: false };
                self.enter(&class, info, conn, None).await;
                r
            }
            WhipKind::Whep => self.driver.whep(room.clone(), claims.sub.clone(), offer).await?,
        };
        let id = new_id('w');
        self.owners.insert(peer, Owner::Whip { session: id.clone() });
        self.whips.insert(id.clone(), WhipSession { kind, class: room, peer, identity: claims.sub, conn });
        tracing::info!(class = %class_id, session = %id, ?kind, "whip session started");
        Ok((id, answer))
    }

    /// End a WHIP or WHEP session (HTTP DELETE).
    pub async fn whip_delete(&self, kind: WhipKind, class_id: &str, session: &str, token: &str) -> Result<(), RoomError> {
        let claims = self.tokens.verify(token)?;
        let found = self.whips.get(session).map(|s| s.clone()).filter(|s| s.kind == kind && &*s.class == class_id);
        let s = found.ok_or_else(|| RoomError::NotFound(format!("no session {session} in class {class_id}")))?;
        if claims.cls != class_id || claims.sub != s.identity {
            return Err(RoomError::Forbidden("this session belongs to someone else".into()));
        }
        self.owners.remove(&s.peer);
        self.driver.remove_peer(&s.class, s.peer).await?;
        self.whip_gone(session).await;
        tracing::info!(class = %class_id, session, ?kind, "whip session ended");
        Ok(())
    }
}

impl Rooms {
    /// A WHIP/WHEP session is over (DELETE, or its connection died): forget it,
    /// and a WHIP publisher leaves the class.
    pub(super) async fn whip_gone(&self, session: &str) {
        let Some((_, s)) = self.whips.remove(session) else { return };
        if let Some(class) = self.live.get(&s.class) {
            if s.kind == WhipKind::Whip {
                class.leave(&s.identity, s.conn);
            }
        }
        self.close_if_empty(&s.class).await;
    }
}

/// The source of each m-line of a WHIP offer: from `?sources=a,b` in m-line order,
/// else the first video is the camera, a second video the screen, audio the mic.
fn tag_sources(offer: &str, role: Role, sources: Option<&str>) -> Result<Vec<(String, Source)>, RoomError> {
    let media = offered_codecs(offer).media;
    let chosen: Vec<Source> = match sources {
        Some(list) => list.split(',').map(parse_source).collect::<Result<_, _>>()?,
        None => default_sources(&media),
    };
    let tagged: Vec<(String, Source)> = media.into_iter().map(|(_, mid)| mid).zip(chosen).collect();
    if let Some((_, s)) = tagged.iter().find(|(_, s)| !role.may_publish_source(*s)) {
        return Err(RoomError::Forbidden(format!("a {role:?} may not publish {}", s.as_str())));
    }
    Ok(tagged)
}

fn parse_source(s: &str) -> Result<Source, RoomError> {
    Source::ALL
        .into_iter()
        .find(|x| x.as_str() == s.trim())
        .ok_or_else(|| RoomError::BadRequest(format!("unknown source {s:?}: use camera, board, screen or mic")))
}

fn default_sources(media: &[(String, String)]) -> Vec<Source> {
    let mut videos = [Source::Camera, Source::Screen].into_iter();
    let mut audios = [Source::Mic].into_iter();
    let mut spare = [Source::Board].into_iter();
    media
        .iter()
        .map(|(kind, _)| if kind == "audio" { audios.next() } else { videos.next() })
        .map(|s| s.or_else(|| spare.next()).unwrap_or(Source::Board))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "m=video 9 X 96\na=mid:0\nm=audio 9 X 111\na=mid:1\nm=video 9 X 96\na=mid:2\n";

    #[test]
    fn default_tags_follow_m_line_order() {
        let t = tag_sources(OFFER, Role::Main, None).unwrap();
        assert_eq!(t, vec![("0".into(), Source::Camera), ("1".into(), Source::Mic), ("2".into(), Source::Screen)]);
    }

    #[test]
    fn explicit_tags_and_role_limits() {
        let t = tag_sources(OFFER, Role::Main, Some("board,mic,camera")).unwrap();
        assert_eq!(t[0].1, Source::Board);
        assert!(matches!(tag_sources(OFFER, Role::Classroom, None), Err(RoomError::Forbidden(_))));
        assert!(matches!(tag_sources(OFFER, Role::Main, Some("tv")), Err(RoomError::BadRequest(_))));
    }
}
