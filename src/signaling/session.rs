//! One room-protocol session, independent of the WebSocket framing: parses each
//! client message, checks it against the session's state, and answers.
//!
//! Invariants:
//! - The first message must be `join`; nothing else is accepted before it.
//! - A malformed, oversized or out-of-place message ends the session with a
//!   close code and reason (`Close`); a refused but well-formed request is
//!   answered with an `error` message and the session goes on.

use std::sync::Arc;

use crate::rooms::live::OutTx;
use crate::rooms::{Joined, RoomError, Rooms};
use crate::signaling::protocol::{ClientMsg, ErrorCode, MAX_MESSAGE_BYTES, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, ServerMsg};

/// How a session must end: WebSocket close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Close {
        Close { code, reason: reason.into() }
    }
}

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;

pub struct Session {
    rooms: Arc<Rooms>,
    tx: OutTx,
    joined: Option<Joined>,
}

impl Session {
    pub fn new(rooms: Arc<Rooms>, tx: OutTx) -> Session {
        Session { rooms, tx, joined: None }
    }

    pub fn is_joined(&self) -> bool {
        self.joined.is_some()
    }

    pub async fn handle_text(&mut self, text: &str) -> Result<(), Close> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(Close::new(CLOSE_TOO_BIG, format!("message of {} bytes exceeds {MAX_MESSAGE_BYTES}", text.len())));
        }
        let msg: ClientMsg = serde_json::from_str(text).map_err(|e| Close::new(CLOSE_POLICY, format!("invalid message: {e}")))?;
        match self.joined.take() {
            None => self.join(msg).await,
            Some(mut joined) => {
                let result = self.in_class(&mut joined, msg).await;
                self.joined = Some(joined);
                result
            }
        }
    }

    async fn join(&mut self, msg: ClientMsg) -> Result<(), Close> {
        let ClientMsg::Join { v, token } = msg else {
            return Err(Close::new(CLOSE_POLICY, "the first message must be join"));
        };
        if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&v) {
            let message = format!("protocol version {v} is not supported; this server speaks {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}");
            return Err(self.refuse(ErrorCode::UnsupportedVersion, message, 4400));
        }
        let (claims, class) = match self.rooms.authenticate(&token) {
            Ok(ok) => ok,
            Err(e) => return Err(self.refuse_error(e)),
        };
        match self.rooms.join(claims, class, self.tx.clone()).await {
            Ok(joined) => {
                self.joined = Some(joined);
                Ok(())
            }
            Err(e) => Err(self.refuse_error(e)),
        }
    }

    async fn in_class(&self, j: &mut Joined, msg: ClientMsg) -> Result<(), Close> {
        let rooms = &self.rooms;
        let result = match msg {
            ClientMsg::Join { .. } => Err(RoomError::BadRequest("already joined".into())),
            ClientMsg::Publish { sdp, sources } => {
                rooms.publish(j, sdp, sources).await.map(|sdp| self.tx.send(ServerMsg::PublishAnswer { sdp }))
            }
            ClientMsg::SubscribeAnswer { sdp } => rooms.subscribe_answer(j, sdp).await,
            ClientMsg::Subscribe { keys } => rooms.set_paused(j, &keys, false).await,
            ClientMsg::Unsubscribe { keys } => rooms.set_paused(j, &keys, true).await,
            ClientMsg::RaiseHand { raised } => rooms.raise_hand(j, raised),
            ClientMsg::CallOn { participant } => rooms.call_on(j, participant).await,
            ClientMsg::SetRecording { on } => rooms.set_recording(j, on).await,
            ClientMsg::ReceiveReport { tracks, rtt_ms } => rooms.receive_report(j, tracks, rtt_ms),
            ClientMsg::RestartIce {} => rooms.restart_ice(j).await,
            ClientMsg::Leave {} => return Err(Close::new(CLOSE_NORMAL, "left the class")),
            ClientMsg::Ping {} => {
                self.tx.send(ServerMsg::Pong);
                Ok(())
            }
        };
        if let Err(e) = result {
            self.tx.send(ServerMsg::Error { code: error_code(&e), message: e.to_string() });
        }
        Ok(())
    }

    /// Tell the client why its join failed, then close.
    fn refuse(&self, code: ErrorCode, message: String, close_code: u16) -> Close {
        self.tx.send(ServerMsg::Error { code, message: message.clone() });
        Close::new(close_code, message)
    }

    fn refuse_error(&self, e: RoomError) -> Close {
        let code = error_code(&e);
        let close = match code {
            ErrorCode::Unauthorized => 4401,
            ErrorCode::Forbidden => 4403,
            ErrorCode::NotFound => 4404,
            _ => 4500,
        };
        self.refuse(code, e.to_string(), close)
    }

    /// The session is over: release its connections and membership.
    pub async fn end(self) {
        if let Some(j) = self.joined {
            self.rooms.leave(&j).await;
        }
    }
}

pub fn error_code(e: &RoomError) -> ErrorCode {
    match e {
        RoomError::Unauthorized(_) => ErrorCode::Unauthorized,
        RoomError::Forbidden(_) => ErrorCode::Forbidden,
        RoomError::NotFound(_) => ErrorCode::NotFound,
        RoomError::BadRequest(_) => ErrorCode::BadMessage,
        RoomError::Negotiation(_) => ErrorCode::BadSdp,
        RoomError::Unavailable(_) | RoomError::Store(_) => ErrorCode::Internal,
    }
}
