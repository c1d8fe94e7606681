//! The per-packet path: one RTP packet from a publisher track to every
//! subscriber of the slots it feeds.
//!
//! Invariants:
//! - Everything about the packet is read once from the publisher (`Incoming`),
//!   then the publisher is no longer borrowed; subscriber lists are `Arc` clones.
//! - The payload is shared, never copied, up to str0m's SRTP protect.
//! - Each subscriber either gets the packet or one `DropReason` is counted.
//! - Only the header extensions that describe the media (audio level, voice
//!   activity, orientation, content type, capture time) are carried over; the
//!   transport ones (mid, rid, transport-cc, send time) belong to each leg.

pub mod keyframe;
pub mod layers;
pub mod rate;
pub mod red;
pub mod rewrite;

use std::sync::Arc;
use std::time::Instant;

use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};

use self::keyframe::starts_keyframe;
use self::rewrite::{Rewritten, SourcePacket};
use super::peer::{CodecKey, DownTrack};
use str0m::media::Mid;

use super::room::DownRef;
use super::tap::{TapId, TapPacket};
use super::stats::DropReason;
use super::{PeerId, Sfu, wallclock};

/// One received packet, detached from its publisher.
struct Incoming {
    owner: Arc<str>,
    generation: u64,
    /// Simulcast layer (0 without simulcast), and the highest layer arriving now.
    layer: u8,
    top_layer: u8,
    codec: CodecKey,
    video: bool,
    keyframe: bool,
    seq: u64,
    ts: u32,
    marker: bool,
    ext: ExtensionValues,
    payload: Arc<[u8]>,
    captured: wallclock::Captured,
    at: Instant,
}

impl Sfu {
    pub(super) fn forward(&mut self, from: PeerId, pkt: RtpPacket, now: Instant) {
        super::stats::SfuCounters::incr(&self.counters.packets_received);
        let Some((inc, mid, fan_out)) = self.route(from, pkt, now) else {
            self.counters.dropped(DropReason::UnknownTrack);
            return;
        };
        let mut want_keyframe = false;
        for subs in fan_out.iter().flatten() {
            want_keyframe |= self.forward_to(subs, &inc);
        }
        want_keyframe |= std::mem::take(&mut self.tap_keyframe_due);
        if want_keyframe {
            self.request_keyframe(from, mid, inc.layer, now);
        }
    }

    /// Read the packet once from its publisher and find who gets it.
    fn route(&mut self, from: PeerId, pkt: RtpPacket, now: Instant) -> Option<(Incoming, Mid, [Option<Arc<[DownRef]>>; 2])> {
        let peer = self.peers.get_mut(&from)?;
        let (mid, rid) = peer.rtc.direct_api().stream_rx(&pkt.header.ssrc).map(|s| (s.mid(), s.rid()))?;
        let track = peer.tracks_in.get_mut(&mid)?;
        let codec = track.codec(&peer.rtc, pkt.header.payload_type)?;
        let layer = track.layer_of(rid)?;
        track.layers[usize::from(layer)].rate.add(now, pkt.payload.len());
        let fan_out = self.rooms.get(&peer.room)?.fan_out(&track.key, track.spotlight.as_ref(), &peer.participant);
        let video = codec.video();
        let inc = Incoming {
            owner: peer.participant.clone(),
            generation: track.generation + u64::from(layer),
            layer,
            top_layer: track.live_layers(now).saturating_sub(1),
            codec,
            video: video.is_some(),
            keyframe: video.is_none_or(|v| starts_keyframe(v, &pkt.payload)),
            seq: *pkt.seq_no,
            ts: pkt.header.timestamp,
            marker: pkt.header.marker,
            ext: media_extensions(&pkt.header.ext_vals),
            captured: wallclock::capture_instant(&mut peer.ntp_anchor, &pkt),
            at: pkt.timestamp,
            payload: pkt.payload,
        };
        if inc.video && inc.keyframe {
            tracing::debug!(peer = %from, %mid, layer, "keyframe received");
        }
        Some((inc, mid, fan_out))
    }

    /// Write to every subscriber of one slot; returns whether one waits for a keyframe.
    fn forward_to(&mut self, subs: &[DownRef], inc: &Incoming) -> bool {
        let mut want_keyframe = false;
        for down in subs {
            match self.write_down(*down, inc) {
                Ok(bytes) => self.counters.forwarded(bytes),
                Err(reason) => {
                    want_keyframe |= reason == DropReason::AwaitingKeyframe;
                    self.counters.dropped(reason);
                }
            }
        }
        want_keyframe
    }

    fn write_down(&mut self, d: DownRef, inc: &Incoming) -> Result<usize, DropReason> {
        let (peer_id, mid) = match d {
            DownRef::Peer { peer, mid } => (peer, mid),
            DownRef::Tap(tap) => return self.write_tap(tap, inc),
        };
        let peer = self.peers.get_mut(&peer_id).ok_or(DropReason::SubscriberNotReady)?;
        if *peer.participant == *inc.owner {
            return Err(DropReason::OwnMedia);
        }
        let down = peer.down.get_mut(&mid).ok_or(DropReason::SubscriberNotReady)?;
        if !peer.connected || !down.negotiated {
            return Err(DropReason::SubscriberNotReady);
        }
        let pt = down.pt_for(&peer.rtc, mid, inc.codec).ok_or(DropReason::CodecMismatch)?;
        let out = admit(down, inc)?;
        let (pt, payload) = match down.red_for(&peer.rtc, pt) {
            Some(red_pt) if !inc.video => (red_pt, down.red.wrap(out.ts, *pt, &inc.payload)),
            _ => (pt, inc.payload.clone()),
        };
        let mut ext = inc.ext.clone();
        if let Some((min, max)) = peer.playout_delay.extension().filter(|_| inc.video) {
            (ext.play_delay_min, ext.play_delay_max) = (Some(min), Some(max));
        }
        let write = RtpWrite::new(pt, out.seq.into(), out.ts, inc.captured.at, payload)
            .marker(inc.marker)
            .ext_vals(ext)
            .nackable(inc.video);
        let mut api = peer.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None).ok_or(DropReason::SubscriberNotReady)?;
        tx.write_rtp(write);
        self.mark_dirty(peer_id);
        Ok(inc.payload.len())
    }

    fn write_tap(&mut self, id: TapId, inc: &Incoming) -> Result<usize, DropReason> {
        let tap = self.taps.get_mut(&id).ok_or(DropReason::SubscriberNotReady)?;
        tap.down.layers.set_target(Some(inc.top_layer));
        let out = admit(&mut tap.down, inc)?;
        if inc.video && tap.keyframe_due(inc.keyframe, inc.at) {
            self.tap_keyframe_due = true;
        }
        let packet = TapPacket {
            tap: id,
            codec: inc.codec,
            seq: out.seq,
            ts: out.ts,
            marker: inc.marker,
            payload: inc.payload.clone(),
            captured: inc.captured.at,
            captured_by_sender: inc.captured.by_sender,
            arrival: inc.at,
        };
        self.tap_out.push_back(packet);
        Ok(inc.payload.len())
    }
}

/// The gate every down track applies: not paused; its simulcast layer (or paused
/// for bandwidth); after a source switch video waits for a keyframe; then the
/// packet is rewritten onto the track's line.
fn admit(down: &mut DownTrack, inc: &Incoming) -> Result<Rewritten, DropReason> {
    if down.paused {
        return Err(DropReason::SubscriberPaused);
    }
    // A layer switch lands on a video keyframe: only those are checked for one.
    let before = (inc.video && inc.keyframe).then(|| down.layers.current());
    let gate = down.layers.gate(inc.layer, inc.keyframe);
    if let Some(from) = before.filter(|from| *from != down.layers.current()) {
        tracing::debug!(slot = %down.slot, ?from, to = ?down.layers.current(), "layer switched");
    }
    if let Some(reason) = gate.drop_reason() {
        return Err(reason);
    }
    if inc.video && down.rewriter.is_switch(inc.generation) {
        down.awaiting_keyframe = true;
    }
    if inc.video && down.awaiting_keyframe {
        if !inc.keyframe {
            return Err(DropReason::AwaitingKeyframe);
        }
        down.awaiting_keyframe = false;
    }
    let src = SourcePacket { source: inc.generation, seq: inc.seq, ts: inc.ts, clock_rate: inc.codec.clock_rate, at: inc.at };
    down.rewriter.rewrite(src).map_err(|_| DropReason::BeforeSwitch)
}

/// The header extensions that describe the media itself.
fn media_extensions(e: &ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: e.audio_level,
        voice_activity: e.voice_activity,
        video_orientation: e.video_orientation,
        video_content_type: e.video_content_type,
        abs_capture_time: e.abs_capture_time,
        ..Default::default()
    }
}
