//! The room signaling protocol: the contract between the server and `web-client/`.
//!
//! Invariants:
//! - Every message is one JSON object with a `"type"` tag; unknown types and
//!   unknown fields are rejected (the connection is closed with a reason).
//! - The protocol is versioned by `PROTOCOL_VERSION`, sent by the client in
//!   `join.v` and echoed by the server in `joined.v`. New behaviour gets a new
//!   variant; existing variants never change meaning, so a client speaking any
//!   version from `MIN_PROTOCOL_VERSION` on is served (it just never sends the
//!   variants added after its version).
//! - Two peer connections per participant: the *publish* connection is always
//!   offered by the client, the *subscribe* connection is always offered by
//!   the server. Offers therefore never collide (no glare).
//!
//! The human-readable description lives in `docs/protocol.md`; keep both in step.

use serde::{Deserialize, Serialize};

pub use super::report::TrackReport;

/// Version of this protocol. Bumped only when a variant is added.
/// 2: `receive_report`.
/// 3: `restart_ice`.
pub const PROTOCOL_VERSION: u32 = 3;

/// The oldest version still served (version 1 lacks `receive_report` and `restart_ice`).
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// Largest accepted text message, in bytes (an SDP offer with four m-lines is ~6 KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Role of a participant in a class. Carried in the join token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The main classroom (teacher): publishes camera, board, screen and mic.
    Main,
    /// A listening classroom: publishes camera and mic, watches main and the called-on classroom.
    Classroom,
    /// Watch only (visiting teachers, the 名师课堂 audience).
    Observer,
    /// Replays the class's recorded lessons; never joins a live class.
    Student,
}

impl Role {
    /// Whether this role may send media into the class.
    pub fn may_publish(self) -> bool {
        matches!(self, Role::Main | Role::Classroom)
    }

    /// Whether this role may take part in a live class (join, WHIP, WHEP).
    pub fn may_join_live(self) -> bool {
        !matches!(self, Role::Student)
    }

    /// Whether this role may publish the given source.
    pub fn may_publish_source(self, source: Source) -> bool {
        match self {
            Role::Main => true,
            Role::Classroom => matches!(source, Source::Camera | Source::Mic),
            Role::Observer | Role::Student => false,
        }
    }
}

/// What a published track shows. A participant publishes at most one track per source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The teacher's (or a classroom's) camera.
    Camera,
    /// A camera pointed at the blackboard.
    Board,
    /// Courseware: a shared screen or window.
    Screen,
    /// The room microphone.
    Mic,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Camera, Source::Board, Source::Screen, Source::Mic];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Camera => "camera",
            Source::Board => "board",
            Source::Screen => "screen",
            Source::Mic => "mic",
        }
    }

    pub fn is_audio(self) -> bool {
        matches!(self, Source::Mic)
    }
}

/// One track the client announces in a publish offer: which m-line carries which source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedSource {
    /// The `a=mid` of the m-line in the offer.
    pub mid: String,
    pub source: Source,
}

/// Messages from the browser (or any client) to the server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// First message on a connection. `v` is the client's protocol version.
    Join { v: u32, token: String },
    /// Offer (or re-offer) for the publish connection, with the source of each m-line.
    Publish { sdp: String, sources: Vec<PublishedSource> },
    /// Answer to a `subscribe_offer`.
    SubscribeAnswer { sdp: String },
    /// Resume receiving the named tracks (see `TrackInfo::key`).
    Subscribe { keys: Vec<String> },
    /// Stop receiving the named tracks without renegotiation (they stay in the SDP).
    Unsubscribe { keys: Vec<String> },
    /// A classroom raises or lowers its hand.
    RaiseHand { raised: bool },
    /// Teacher only: call on a classroom (its media goes to every classroom), or end it with `null`.
    CallOn { participant: Option<String> },
    /// Teacher only: start or stop recording the lesson (a restart continues the same
    /// lesson in new parts).
    SetRecording { on: bool },
    /// Leave the class; the server closes the connection.
    Leave {},
    /// Keep-alive; answered with `pong`.
    Ping {},
    /// Since version 2, every 2 s: how the client receives (per received track, and the
    /// round-trip time of its subscribe connection), for the dashboard. Not answered;
    /// a report with a value out of bounds is refused with `error` (`bad_message`).
    ReceiveReport { tracks: Vec<TrackReport>, rtt_ms: Option<f64> },
    /// Since version 3: the subscribe connection lost its media path (ICE disconnected
    /// or failed); the server answers with a `subscribe_offer` that restarts ICE (new
    /// credentials). The publish connection is restarted by a `publish` re-offer.
    RestartIce {},
}

/// A participant as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Stable identity: `main` for the main classroom, the classroom id otherwise.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub hand_raised: bool,
}

/// A track in the subscribe connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// The m-line of the subscribe offer that carries it.
    pub mid: String,
    /// `<participant id>/<source>`, or `spotlight/camera` and `spotlight/mic` for
    /// whichever classroom is called on. Stable for the whole class: a publisher that
    /// reconnects continues on the same key and the same m-line.
    pub key: String,
    pub source: Source,
    pub kind: MediaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Audio,
    Video,
}

/// Messages from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Joined {
        v: u32,
        class_id: String,
        class_title: String,
        you: ParticipantInfo,
        participants: Vec<ParticipantInfo>,
        /// The classroom currently called on, if any.
        call_on: Option<String>,
        /// Sources currently live, as track keys (`main/camera`, ...).
        live: Vec<String>,
    },
    PublishAnswer { sdp: String },
    /// Offer for the subscribe connection; answer with `subscribe_answer`.
    SubscribeOffer { sdp: String, tracks: Vec<TrackInfo> },
    ParticipantJoined { participant: ParticipantInfo },
    ParticipantLeft { id: String },
    Hand { id: String, raised: bool },
    CallOn { participant: Option<String> },
    /// A source started (`live: true`) or stopped sending.
    SourceState { key: String, live: bool },
    /// Whether the lesson is being recorded; sent after `joined` and on every change.
    Recording { on: bool },
    /// Simulcast: send only these layers (rids) of the publish m-line `mid`; the
    /// others nobody receives now. Added with protocol v3; older clients ignore it.
    Layers { mid: String, active: Vec<String> },
    Error { code: ErrorCode, message: String },
    Pong,
}

/// Machine-readable error codes carried by `ServerMsg::Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadMessage,
    Unauthorized,
    Forbidden,
    NotFound,
    BadSdp,
    UnsupportedVersion,
    /// Another connection joined with the same identity (e.g. the teacher reloaded).
    Replaced,
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_from_documented_json() {
        let m: ClientMsg = serde_json::from_str(r#"{"type":"join","v":1,"token":"t"}"#).unwrap();
        assert_eq!(m, ClientMsg::Join { v: 1, token: "t".into() });
        let m: ClientMsg = serde_json::from_str(
            r#"{"type":"publish","sdp":"x","sources":[{"mid":"0","source":"board"}]}"#,
        )
        .unwrap();
        assert!(matches!(m, ClientMsg::Publish { sources, .. } if sources[0].source == Source::Board));
        let m: ClientMsg = serde_json::from_str(r#"{"type":"call_on","participant":null}"#).unwrap();
        assert_eq!(m, ClientMsg::CallOn { participant: None });
        let m: ClientMsg = serde_json::from_str(r#"{"type":"restart_ice"}"#).unwrap();
        assert_eq!(m, ClientMsg::RestartIce {});
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"restart_ice","peer":1}"#).is_err(), "no fields");
    }

    #[test]
    fn unknown_type_and_fields_are_rejected() {
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"hack"}"#).is_err());
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"ping","x":1}"#).is_err());
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"raise_hand"}"#).is_err());
    }

    #[test]
    fn server_messages_are_tagged_snake_case() {
        let s = serde_json::to_string(&ServerMsg::Hand { id: "c1".into(), raised: true }).unwrap();
        assert_eq!(s, r#"{"type":"hand","id":"c1","raised":true}"#);
    }

    #[test]
    fn classroom_may_not_publish_screen() {
        assert!(!Role::Classroom.may_publish_source(Source::Screen));
        assert!(Role::Main.may_publish_source(Source::Board));
        assert!(!Role::Observer.may_publish());
    }
}
