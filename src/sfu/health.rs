//! Per-connection health, once a second, from str0m's statistics events.
//!
//! str0m (with `set_stats_interval`) emits, per connection and interval, one
//! `PeerStats` followed by one `MediaIngressStats` per received track and one
//! `MediaEgressStats` per sent track, all before its next `Output::Timeout`. A
//! `HealthTracker` folds one such round into a compact `PeerHealth` (bitrates,
//! loss fractions, round-trip time, packets per kind, when media last moved),
//! which the core emits as `SfuEvent::PeerHealth` for the layer above.
//!
//! Invariants:
//! - Nothing here runs per packet: the tracker only sees the stats events, so the
//!   forwarding path gains no work, lock or allocation.
//! - Cumulative counters are turned into per-interval figures by difference; a
//!   counter that goes backwards (a track's stream restarted) counts from zero.
//! - Time is whatever `now` str0m stamped the round with; nothing reads a clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{MediaKind, Mid};
use str0m::stats::{MediaEgressStats, MediaIngressStats, PeerStats};

use super::{PeerId, RoomId};

/// How often str0m reports statistics for each connection.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Which way a connection's media goes, seen from the participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// A publish connection: media comes up from the participant.
    Up,
    /// A subscribe (or WHEP) connection: media goes down to the participant.
    Down,
}

/// A value per media kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerKind<T> {
    pub audio: T,
    pub video: T,
}

impl<T> PerKind<T> {
    pub fn get_mut(&mut self, kind: MediaKind) -> &mut T {
        match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        }
    }
}

/// One connection's health over the last stats interval.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerHealth {
    pub peer: PeerId,
    pub room: RoomId,
    pub participant: Arc<str>,
    pub side: Side,
    /// When str0m took the figures.
    pub at: Instant,
    /// ICE and DTLS are up and ICE is not disconnected.
    pub connected: bool,
    /// Media payload received from / sent to the participant, bits per second.
    pub bitrate_in: u64,
    pub bitrate_out: u64,
    /// Fraction (0..=1) of packets lost on the way to the server during the interval:
    /// from transport-wide sequence numbers, else the server's latest receiver report
    /// of a video track (of an audio track when there is no video; those come every 5 s).
    pub loss_in: Option<f32>,
    /// Fraction lost on the way to the participant: from its transport-wide feedback,
    /// else its receiver reports (video first, as above). Transport-wide sequence numbers
    /// are per hop, so they show this hop only; receiver reports also count what the
    /// publisher's uplink lost (a forwarded gap stays a gap). `None` when nothing new was
    /// reported during the interval.
    pub loss_out: Option<f32>,
    pub rtt: Option<Duration>,
    /// RTP packets received / sent during the interval.
    pub packets_in: PerKind<u64>,
    pub packets_out: PerKind<u64>,
    /// When media of each kind last arrived from / left for the participant (the end
    /// of the stats interval it was seen in).
    pub last_in: PerKind<Option<Instant>>,
    pub last_out: PerKind<Option<Instant>>,
}

/// The figures of the round being collected.
#[derive(Debug)]
struct Round {
    at: Instant,
    bytes_in: u64,
    bytes_out: u64,
    twcc_in: Option<f32>,
    twcc_out: Option<f32>,
    reported_in: PerKind<Option<f32>>,
    reported_out: PerKind<Option<f32>>,
    rtt: Option<Duration>,
    track_rtt: Option<Duration>,
    packets_in: PerKind<u64>,
    packets_out: PerKind<u64>,
}

/// Folds str0m's stats events of one connection into `PeerHealth`, one per round.
#[derive(Debug)]
pub struct HealthTracker {
    round: Option<Round>,
    /// The previous round's time and cumulative media bytes in / out.
    prev: (Instant, u64, u64),
    packets_in: HashMap<Mid, u64>,
    packets_out: HashMap<Mid, u64>,
    last_in: PerKind<Option<Instant>>,
    last_out: PerKind<Option<Instant>>,
}

impl HealthTracker {
    /// A tracker for a connection created at `now` (its counters start at zero then).
    pub fn new(now: Instant) -> Self {
        HealthTracker {
            round: None,
            prev: (now, 0, 0),
            packets_in: HashMap::new(),
            packets_out: HashMap::new(),
            last_in: PerKind::default(),
            last_out: PerKind::default(),
        }
    }

    /// The first event of a round.
    pub fn peer_stats(&mut self, s: &PeerStats) {
        self.round = Some(Round {
            at: s.timestamp,
            bytes_in: s.bytes_rx,
            bytes_out: s.bytes_tx,
            twcc_in: worst(None, s.ingress_loss_fraction),
            twcc_out: worst(None, s.egress_loss_fraction),
            reported_in: PerKind::default(),
            reported_out: PerKind::default(),
            rtt: rtt_of(s),
            track_rtt: None,
            packets_in: PerKind::default(),
            packets_out: PerKind::default(),
        });
    }

    /// A received track's figures (`kind` of its m-line).
    pub fn ingress(&mut self, kind: MediaKind, s: &MediaIngressStats) {
        let Some(round) = self.round.as_mut() else { return };
        let n = delta(&mut self.packets_in, s.mid, s.packets);
        tally(kind, n, s.loss, round.at, (&mut round.packets_in, &mut self.last_in, &mut round.reported_in));
        round.track_rtt = round.track_rtt.max(s.rtt);
    }

    /// A sent track's figures, with the participant's receiver reports.
    pub fn egress(&mut self, kind: MediaKind, s: &MediaEgressStats) {
        let Some(round) = self.round.as_mut() else { return };
        let n = delta(&mut self.packets_out, s.mid, s.packets);
        tally(kind, n, s.loss, round.at, (&mut round.packets_out, &mut self.last_out, &mut round.reported_out));
        round.track_rtt = round.track_rtt.max(s.rtt);
    }

    /// The round is complete (str0m has nothing more to say): its health, if a round ran.
    pub fn finish(&mut self, peer: PeerId, room: &RoomId, participant: &Arc<str>, side: Side, connected: bool) -> Option<PeerHealth> {
        let r = self.round.take()?;
        let (prev_at, prev_in, prev_out) = std::mem::replace(&mut self.prev, (r.at, r.bytes_in, r.bytes_out));
        let secs = r.at.saturating_duration_since(prev_at).as_secs_f64();
        Some(PeerHealth {
            peer,
            room: room.clone(),
            participant: participant.clone(),
            side,
            at: r.at,
            connected,
            bitrate_in: bits_per_second(r.bytes_in.saturating_sub(prev_in), secs),
            bitrate_out: bits_per_second(r.bytes_out.saturating_sub(prev_out), secs),
            loss_in: r.twcc_in.or(r.reported_in.video).or(r.reported_in.audio),
            loss_out: r.twcc_out.or(r.reported_out.video).or(r.reported_out.audio),
            // Receiver reports measure the media path itself; prefer them.
            rtt: r.track_rtt.or(r.rtt),
            packets_in: r.packets_in,
            packets_out: r.packets_out,
            last_in: self.last_in,
            last_out: self.last_out,
        })
    }
}

/// Growth of a cumulative counter since last seen (from zero if it went backwards).
fn delta(seen: &mut HashMap<Mid, u64>, mid: Mid, now: u64) -> u64 {
    let before = seen.insert(mid, now).unwrap_or(0);
    if now >= before { now - before } else { now }
}

/// One track's round into a direction's figures: its new packets, when media last
/// moved (this round, if any did), and the worst loss reported so far.
fn tally(kind: MediaKind, n: u64, loss: Option<f32>, at: Instant, into: (&mut PerKind<u64>, &mut PerKind<Option<Instant>>, &mut PerKind<Option<f32>>)) {
    let (packets, last, reported) = into;
    *packets.get_mut(kind) += n;
    if n > 0 {
        *last.get_mut(kind) = Some(at);
    }
    let r = reported.get_mut(kind);
    *r = worst(*r, loss);
}

fn worst(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    let b = b.filter(|x| x.is_finite()).map(|x| x.clamp(0.0, 1.0));
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn bits_per_second(bytes: u64, secs: f64) -> u64 {
    if secs <= 0.0 { 0 } else { (bytes as f64 * 8.0 / secs) as u64 }
}

/// A connection's round trip time: from RTCP, else from ICE consent checks.
pub fn rtt_of(s: &PeerStats) -> Option<Duration> {
    s.rtt.or(s.selected_candidate_pair.as_ref().and_then(|p| p.current_round_trip_time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::stats::RemoteIngressStats;

    fn peer_stats(at: Instant, rx: u64, tx: u64, loss_in: Option<f32>) -> PeerStats {
        PeerStats {
            peer_bytes_rx: rx,
            peer_bytes_tx: tx,
            bytes_rx: rx,
            bytes_tx: tx,
            timestamp: at,
            bwe_tx: None,
            egress_loss_fraction: None,
            ingress_loss_fraction: loss_in,
            rtt: None,
            selected_candidate_pair: None,
        }
    }

    fn ingress(mid: &str, at: Instant, packets: u64, loss: Option<f32>) -> MediaIngressStats {
        MediaIngressStats {
            mid: Mid::from(mid),
            rid: None,
            bytes: packets * 1000,
            packets,
            firs: 0,
            plis: 0,
            nacks: 0,
            jitter: 0,
            rtt: None,
            loss,
            timestamp: at,
            remote: None,
        }
    }

    fn egress(mid: &str, at: Instant, packets: u64, loss: Option<f32>, rtt_ms: u64) -> MediaEgressStats {
        MediaEgressStats {
            mid: Mid::from(mid),
            rid: None,
            bytes: packets * 1000,
            packets,
            firs: 0,
            plis: 0,
            nacks: 0,
            rtt: Some(Duration::from_millis(rtt_ms)),
            loss,
            timestamp: at,
            remote: Some(RemoteIngressStats { jitter: 0, maximum_sequence_number: 0.into(), packets_lost: 0 }),
        }
    }

    fn finish(t: &mut HealthTracker, side: Side) -> Option<PeerHealth> {
        t.finish(PeerId(1), &RoomId::from("k1"), &Arc::from("c1"), side, true)
    }

    #[test]
    fn a_round_becomes_bitrates_packets_per_kind_and_the_worst_loss() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(t0);
        let t1 = t0 + Duration::from_secs(1);
        t.peer_stats(&peer_stats(t1, 125_000, 0, Some(0.02)));
        t.ingress(MediaKind::Video, &ingress("0", t1, 90, Some(0.1)));
        t.ingress(MediaKind::Audio, &ingress("1", t1, 50, None));
        let h = finish(&mut t, Side::Up).unwrap();
        assert_eq!(h.bitrate_in, 1_000_000);
        assert_eq!(h.packets_in, PerKind { audio: 50, video: 90 });
        assert_eq!(h.loss_in, Some(0.02), "transport-wide loss covers exactly the interval");
        assert_eq!(h.last_in, PerKind { audio: Some(t1), video: Some(t1) });
        assert!(finish(&mut t, Side::Up).is_none(), "one health per round");

        // Next second: video keeps coming, audio stopped.
        let t2 = t1 + Duration::from_secs(1);
        t.peer_stats(&peer_stats(t2, 187_500, 0, None));
        t.ingress(MediaKind::Video, &ingress("0", t2, 180, None));
        t.ingress(MediaKind::Audio, &ingress("1", t2, 50, None));
        let h = finish(&mut t, Side::Up).unwrap();
        assert_eq!(h.bitrate_in, 500_000);
        assert_eq!(h.packets_in, PerKind { audio: 0, video: 90 });
        assert_eq!(h.last_in, PerKind { audio: Some(t1), video: Some(t2) });
        assert_eq!(h.loss_in, None, "nothing reported this round: unknown, not zero");
    }

    #[test]
    fn receiver_reports_give_loss_and_rtt_of_the_way_down() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(t0);
        let t1 = t0 + Duration::from_millis(500);
        t.peer_stats(&peer_stats(t1, 0, 50_000, None));
        t.egress(MediaKind::Video, &egress("0", t1, 40, Some(0.2), 40));
        t.egress(MediaKind::Audio, &egress("1", t1, 25, Some(0.25), 60));
        let h = finish(&mut t, Side::Down).unwrap();
        assert_eq!(h.bitrate_out, 800_000);
        assert_eq!(h.loss_out, Some(0.2), "video reports first: audio ones cover 5 s");
        // An audio-only connection goes by its audio reports.
        let t2 = t1 + Duration::from_secs(1);
        t.peer_stats(&peer_stats(t2, 0, 60_000, None));
        t.egress(MediaKind::Audio, &egress("1", t2, 50, Some(0.25), 60));
        assert_eq!(finish(&mut t, Side::Down).unwrap().loss_out, Some(0.25));
        assert_eq!(h.rtt, Some(Duration::from_millis(60)));
        assert_eq!(h.packets_out, PerKind { audio: 25, video: 40 });
    }

    #[test]
    fn transport_wide_feedback_measures_this_hop_only() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(t0);
        let t1 = t0 + Duration::from_secs(1);
        let mut s = peer_stats(t1, 0, 100_000, None);
        s.egress_loss_fraction = Some(0.0);
        t.peer_stats(&s);
        // The receiver report counts gaps the publisher's uplink left in the stream.
        t.egress(MediaKind::Video, &egress("0", t1, 90, Some(0.25), 20));
        assert_eq!(finish(&mut t, Side::Down).unwrap().loss_out, Some(0.0));
    }

    #[test]
    fn a_restarted_stream_counts_from_zero_and_bad_numbers_are_ignored() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(t0);
        let t1 = t0 + Duration::from_secs(1);
        t.peer_stats(&peer_stats(t1, 0, 0, Some(f32::NAN)));
        t.ingress(MediaKind::Video, &ingress("0", t1, 500, Some(f32::INFINITY)));
        let h = finish(&mut t, Side::Up).unwrap();
        assert_eq!(h.loss_in, None);
        let t2 = t1 + Duration::from_secs(1);
        t.peer_stats(&peer_stats(t2, 0, 0, None));
        t.ingress(MediaKind::Video, &ingress("0", t2, 20, Some(7.0)));
        let h = finish(&mut t, Side::Up).unwrap();
        assert_eq!(h.packets_in.video, 20);
        assert_eq!(h.loss_in, Some(1.0), "without transport-wide figures, the receiver report's, clamped to a fraction");
    }

    #[test]
    fn media_events_without_a_round_are_ignored() {
        let t0 = Instant::now();
        let mut t = HealthTracker::new(t0);
        t.ingress(MediaKind::Video, &ingress("0", t0, 10, None));
        assert!(finish(&mut t, Side::Up).is_none());
    }
}
