//! One WebRTC connection (a str0m `Rtc`) and the tracks it carries.
//!
//! A peer is either a *publisher* (media flows in; its m-lines are tagged with
//! sources) or a *subscriber* (media flows out on down tracks bound to slots).
//!
//! Invariants:
//! - The server side is ICE-lite with only the configured host candidates.
//! - Codecs are limited to what the forwarder understands: Opus, H.264
//!   packetization-mode 1 (constrained baseline, baseline, main) and VP8.
//! - Down tracks of a subscriber are only written once negotiated; until then
//!   packets for them are dropped as `SubscriberNotReady`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid, Pt};
use str0m::{Candidate, Rtc, RtcConfig};

use str0m::media::Rid;

use super::allocate::TrackAlloc;
use super::forward::keyframe::{KEYFRAME_REQUEST_INTERVAL, KeyframeThrottle, VideoCodec};
use super::forward::layers::{self, LayerSelector, MAX_LAYERS};
use super::forward::rate::RateMeter;
use super::forward::red::RedHistory;
use super::forward::rewrite::RtpRewriter;
use super::room::{Policy, SlotKey};
use super::{PeerId, RoomId};
use crate::signaling::protocol::Source;

/// The codec of a publisher's payload type, as needed to pick the subscriber's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecKey {
    pub codec: Codec,
    pub profile_level_id: Option<u32>,
    pub clock_rate: u32,
}

impl CodecKey {
    pub fn of(p: &PayloadParams) -> CodecKey {
        let spec = p.spec();
        CodecKey { codec: spec.codec, profile_level_id: spec.format.profile_level_id, clock_rate: spec.clock_rate.get() }
    }

    pub fn video(&self) -> Option<VideoCodec> {
        match self.codec {
            Codec::H264 => Some(VideoCodec::H264),
            Codec::Vp8 => Some(VideoCodec::Vp8),
            _ => None,
        }
    }
}

/// One simulcast layer of a received track (the only one without simulcast).
#[derive(Debug)]
pub struct LayerIn {
    /// The rid it arrives under (`None` without simulcast).
    pub rid: Option<Rid>,
    pub keyframes: KeyframeThrottle,
    pub rate: RateMeter,
}

/// A track received from a publisher.
#[derive(Debug)]
pub struct TrackIn {
    /// The slot this track feeds, and the spotlight slot it feeds when called on.
    pub key: SlotKey,
    pub spotlight: Option<SlotKey>,
    /// Unique per track instance: a new instance is a new source for rewriters.
    /// Layer `l` is the source `generation + l`.
    pub generation: u64,
    pub layers: [LayerIn; MAX_LAYERS],
    /// Simulcast: how many layers the publisher has sent (the highest seen + 1),
    /// whether each is active (not paused at our request), and since when
    /// nobody receives it (see `publisher_layers`).
    pub known_layers: u8,
    pub active: [bool; MAX_LAYERS],
    pub unused_since: [Option<Instant>; MAX_LAYERS],
    codecs: HashMap<Pt, Option<CodecKey>>,
}

impl TrackIn {
    pub fn new(key: SlotKey, generation: u64) -> Self {
        let layer = || LayerIn { rid: None, keyframes: KeyframeThrottle::new(KEYFRAME_REQUEST_INTERVAL), rate: RateMeter::default() };
        TrackIn {
            spotlight: SlotKey::spotlight_of(key.source),
            key,
            generation,
            layers: [layer(), layer(), layer()],
            known_layers: 0,
            active: [true; MAX_LAYERS],
            unused_since: [None; MAX_LAYERS],
            codecs: HashMap::new(),
        }
    }

    /// The layer of a packet received under `rid` (0 without simulcast); `None`
    /// for a rid this server does not know.
    pub fn layer_of(&mut self, rid: Option<Rid>) -> Option<u8> {
        let Some(rid) = rid else { return Some(0) };
        let layer = layers::layer_of_rid(&rid)?;
        self.layers[usize::from(layer)].rid.get_or_insert(rid);
        self.known_layers = self.known_layers.max(layer + 1);
        Some(layer)
    }

    /// Number of layers to allocate from: all the publisher has sent while any
    /// arrives (a layer paused at our request can be resumed), else 0.
    pub fn usable_layers(&self, now: Instant) -> u8 {
        match self.live_layers(now) {
            0 => 0,
            live => live.max(self.known_layers),
        }
    }

    /// Number of layers arriving now: the highest live one + 1 (0: nothing arrives).
    pub fn live_layers(&self, now: Instant) -> u8 {
        (0..MAX_LAYERS as u8).rev().find(|l| self.layers[usize::from(*l)].rate.is_live(now)).map_or(0, |l| l + 1)
    }

    /// The codec of a payload type in this publisher's session (cached).
    pub fn codec(&mut self, rtc: &Rtc, pt: Pt) -> Option<CodecKey> {
        *self.codecs.entry(pt).or_insert_with(|| rtc.codec_config().find(|p| p.pt() == pt).map(CodecKey::of))
    }
}

/// A track sent to a subscriber, bound to a slot.
#[derive(Debug)]
pub struct DownTrack {
    pub slot: SlotKey,
    pub rewriter: RtpRewriter,
    pub negotiated: bool,
    pub paused: bool,
    pub awaiting_keyframe: bool,
    /// Which simulcast layer is forwarded, and which one the allocator wants.
    pub layers: LayerSelector,
    pub alloc: TrackAlloc,
    /// Video: when a keyframe was last asked for a switch, resume or start that
    /// still waits for one (`None`: not waiting).
    pub keyframe_asked_at: Option<Instant>,
    /// Audio: the previous packet sent, for RED redundancy (see `forward::red`).
    pub red: RedHistory,
    pts: Vec<(CodecKey, Option<Pt>)>,
    /// The subscriber's RED payload type for a primary payload type (cached until renegotiation).
    red_pts: Vec<(Pt, Option<Pt>)>,
}

impl DownTrack {
    pub fn new(slot: SlotKey, initial_seq: u16) -> Self {
        DownTrack {
            slot,
            rewriter: RtpRewriter::new(initial_seq),
            negotiated: false,
            paused: false,
            awaiting_keyframe: true,
            layers: LayerSelector::default(),
            alloc: TrackAlloc::starting_at(Some(0)),
            keyframe_asked_at: None,
            red: RedHistory::default(),
            pts: Vec::new(),
            red_pts: Vec::new(),
        }
    }

    /// The subscriber's payload type for the publisher's codec (cached until renegotiation).
    pub fn pt_for(&mut self, rtc: &Rtc, mid: Mid, codec: CodecKey) -> Option<Pt> {
        if let Some((_, pt)) = self.pts.iter().find(|(c, _)| *c == codec) {
            return *pt;
        }
        let pt = matching_pt(rtc, mid, codec);
        self.pts.push((codec, pt));
        pt
    }

    /// The RED payload type wrapping `primary` on this connection, if negotiated.
    pub fn red_for(&mut self, rtc: &Rtc, primary: Pt) -> Option<Pt> {
        if let Some((_, red)) = self.red_pts.iter().find(|(p, _)| *p == primary) {
            return *red;
        }
        let red = rtc.codec_config().find(|p| p.pt() == primary).and_then(|p| p.red());
        self.red_pts.push((primary, red));
        red
    }

    pub fn renegotiated(&mut self) {
        self.negotiated = true;
        self.pts.clear();
        self.red_pts.clear();
    }
}

/// Prefer the exact codec (same H.264 profile), else the same codec name.
fn matching_pt(rtc: &Rtc, mid: Mid, want: CodecKey) -> Option<Pt> {
    let remote = rtc.media(mid)?.remote_pts();
    let candidates: Vec<&PayloadParams> =
        remote.iter().filter_map(|pt| rtc.codec_config().find(|p| p.pt() == *pt)).collect();
    let exact = candidates.iter().find(|p| CodecKey::of(p) == want);
    let same = candidates.iter().find(|p| p.spec().codec == want.codec);
    exact.or(same).map(|p| p.pt())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerKind {
    Publisher,
    Subscriber(Policy),
}

#[derive(Debug)]
pub struct Peer {
    pub id: PeerId,
    pub room: RoomId,
    /// Participant identity (`main`, classroom id, observer id).
    pub participant: std::sync::Arc<str>,
    pub kind: PeerKind,
    pub rtc: Rtc,
    pub ufrag: String,
    pub addrs: Vec<SocketAddr>,
    pub connected: bool,
    /// Since when ICE reports the connection lost (closed after a grace period).
    pub disconnected_at: Option<Instant>,
    /// Publisher: maps the remote NTP clock of sender reports onto ours.
    pub ntp_anchor: Option<(std::time::SystemTime, Instant)>,
    pub next_timeout: Instant,
    pub dirty: bool,
    /// Publisher: the source of each offered mid, and the tracks received.
    pub source_tags: HashMap<Mid, Source>,
    pub tracks_in: HashMap<Mid, TrackIn>,
    /// Subscriber: tracks sent, and slots waiting for the next offer.
    pub down: HashMap<Mid, DownTrack>,
    pub to_add: Vec<SlotKey>,
    /// Whether the layer above is ready for this subscriber's offers.
    pub offers_started: bool,
    pub pending_offer: Option<SdpPendingOffer>,
    /// Folds str0m's stats events into one `PeerHealth` per interval.
    pub health: super::health::HealthTracker,
    /// Subscriber: the latest send-side bandwidth estimate (bits/s), and what
    /// was last asked of str0m's estimator (probe, desired).
    pub estimate: Option<u64>,
    /// Subscriber: str0m's estimate as its pacer uses it, unsmoothed (from the
    /// last stats interval); the events carry a 3 s average of its changes.
    pub raw_estimate: Option<u64>,
    pub loss_cap: super::loss_cap::LossCap,
    /// Subscriber: the minimum playout delay its video asks for (lossy links).
    pub playout_delay: super::playout_delay::PlayoutDelay,
    pub bwe_asked: (u64, u64),
    pub probe_nudged_at: Option<Instant>,
    /// Subscriber: when str0m's estimator is restarted to probe (see `reprobe`).
    pub reprobe: super::reprobe::Reprobe,
    /// The receiver sends no congestion feedback: never constrained (see `bandwidth`).
    pub unconstrained: bool,
    pub created_at: Instant,
}

impl Peer {
    pub fn new(id: PeerId, room: RoomId, participant: std::sync::Arc<str>, kind: PeerKind, mut rtc: Rtc, now: Instant) -> Self {
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        Peer {
            id,
            room,
            participant,
            kind,
            rtc,
            ufrag,
            addrs: Vec::new(),
            connected: false,
            disconnected_at: None,
            ntp_anchor: None,
            next_timeout: now,
            dirty: true,
            source_tags: HashMap::new(),
            tracks_in: HashMap::new(),
            down: HashMap::new(),
            to_add: Vec::new(),
            offers_started: false,
            pending_offer: None,
            health: super::health::HealthTracker::new(now),
            estimate: None,
            raw_estimate: None,
            loss_cap: Default::default(),
            playout_delay: Default::default(),
            bwe_asked: (0, 0),
            probe_nudged_at: None,
            reprobe: Default::default(),
            unconstrained: false,
            created_at: now,
        }
    }

    /// Which way this connection's media goes, seen from the participant.
    pub fn side(&self) -> super::health::Side {
        match self.kind {
            PeerKind::Publisher => super::health::Side::Up,
            PeerKind::Subscriber(_) => super::health::Side::Down,
        }
    }

    /// Media can flow: DTLS is up and ICE is not disconnected.
    pub fn is_connected(&self) -> bool {
        self.connected && self.disconnected_at.is_none()
    }

    pub fn policy(&self) -> Option<&Policy> {
        match &self.kind {
            PeerKind::Subscriber(p) => Some(p),
            PeerKind::Publisher => None,
        }
    }
}

/// Header extension id of the playout delay offered to subscribers (`playout_delay`);
/// str0m's standard map leaves it free.
const PLAYOUT_DELAY_EXTENSION_ID: u8 = 5;

/// Starting point of the bandwidth estimate of a subscriber connection.
pub const INITIAL_ESTIMATE_BPS: u64 = 800_000;

/// Build the `Rtc` for one peer: RTP mode, ICE-lite, forwarded codecs only, stats
/// once per `STATS_INTERVAL` (for the dashboard; see `health`); subscribers also
/// estimate their bandwidth (transport-wide congestion control, see `allocate`).
pub fn build_rtc(now: Instant, candidates: &[SocketAddr], estimate_bandwidth: bool) -> Rtc {
    let mut config = RtcConfig::new()
        .set_rtp_mode(true)
        .set_ice_lite(true)
        .set_stats_interval(Some(super::health::STATS_INTERVAL))
        .clear_codecs()
        // RED for Opus is offered to subscribers only (the server adds the redundancy).
        .enable_opus(true, estimate_bandwidth);
    let codecs = config.codec_config();
    for (pt, rtx, profile_level_id) in [(127u8, 121u8, 0x42e01f), (125, 107, 0x42001f), (123, 119, 0x4d001f)] {
        codecs.add_h264(pt.into(), Some(rtx.into()), true, profile_level_id);
    }
    if estimate_bandwidth {
        config = config
            .enable_bwe(Some(str0m::bwe::Bitrate::bps(INITIAL_ESTIMATE_BPS)))
            .set_extension(PLAYOUT_DELAY_EXTENSION_ID, str0m::rtp::Extension::PlayoutDelay);
    }
    let mut rtc = config.enable_vp8(true).build(now);
    for addr in candidates {
        // A host candidate from a valid socket address is always accepted.
        if let Ok(c) = Candidate::host(*addr, "udp") {
            rtc.add_local_candidate(c);
        }
    }
    rtc
}

pub fn media_kind_of(source: Source) -> MediaKind {
    if source.is_audio() { MediaKind::Audio } else { MediaKind::Video }
}
