//! Counters of the forwarding core: every dropped packet has a reason.
//!
//! Invariants:
//! - A datagram or RTP packet that enters the core is either forwarded (to each
//!   subscriber) or counted under exactly one `DropReason` (per subscriber for
//!   subscriber-level reasons).
//! - Counters are relaxed atomics owned by one `Sfu` (one shard); the metrics
//!   endpoint sums them across shards. Tests own their own instance, so counts
//!   never leak between tests.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a datagram or packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Datagram from an address no peer owns, and not a STUN request naming one.
    UnknownSource,
    /// Datagram that is not STUN, DTLS, RTP or RTCP.
    Unrecognized,
    /// The WebRTC stack rejected the datagram (bad SRTP auth, truncated, replay...).
    Rejected,
    /// RTP on an m-line the publisher did not tag with a source.
    UnknownTrack,
    /// The subscriber's connection is not negotiated or not yet connected.
    SubscriberNotReady,
    /// The subscriber asked not to receive this track.
    SubscriberPaused,
    /// Video waits for a keyframe after a (re)start or source switch.
    AwaitingKeyframe,
    /// The subscriber did not negotiate the publisher's codec.
    CodecMismatch,
    /// A late packet from before the current source's first forwarded packet.
    BeforeSwitch,
    /// The subscriber is the publisher itself (a called-on classroom).
    OwnMedia,
    /// The recorder's queue was full: the packet is not recorded (the class goes on).
    RecorderBehind,
    /// A simulcast layer this subscriber does not receive now (not a loss: the
    /// subscriber gets another layer of the same source).
    LayerNotSelected,
    /// Video paused for this subscriber: its bandwidth estimate cannot carry the
    /// lowest layer (audio goes on).
    BandwidthPaused,
    // ICE-TCP (src/driver/tcp.rs): each closes its TCP connection except the last two.
    /// A TCP frame (RFC 4571) of length 0, or a first frame that is not a STUN request naming a known ufrag.
    TcpBadFraming,
    /// A TCP frame longer than the largest datagram accepted.
    TcpOversize,
    /// A TCP connection refused because the connection limit was reached.
    TcpTooManyConnections,
    /// A TCP connection closed after carrying nothing for the idle timeout.
    TcpIdle,
    /// A frame for a TCP connection whose send queue was full (slow or stuck client).
    TcpBackpressure,
    /// A frame for a TCP connection that is gone.
    TcpNoConnection,
}

impl DropReason {
    pub const ALL: [DropReason; 19] = [
        DropReason::UnknownSource,
        DropReason::Unrecognized,
        DropReason::Rejected,
        DropReason::UnknownTrack,
        DropReason::SubscriberNotReady,
        DropReason::SubscriberPaused,
        DropReason::AwaitingKeyframe,
        DropReason::CodecMismatch,
        DropReason::BeforeSwitch,
        DropReason::OwnMedia,
        DropReason::RecorderBehind,
        DropReason::LayerNotSelected,
        DropReason::BandwidthPaused,
        DropReason::TcpBadFraming,
        DropReason::TcpOversize,
        DropReason::TcpTooManyConnections,
        DropReason::TcpIdle,
        DropReason::TcpBackpressure,
        DropReason::TcpNoConnection,
    ];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownSource => "unknown_source",
            DropReason::Unrecognized => "unrecognized",
            DropReason::Rejected => "rejected",
            DropReason::UnknownTrack => "unknown_track",
            DropReason::SubscriberNotReady => "subscriber_not_ready",
            DropReason::SubscriberPaused => "subscriber_paused",
            DropReason::AwaitingKeyframe => "awaiting_keyframe",
            DropReason::CodecMismatch => "codec_mismatch",
            DropReason::BeforeSwitch => "before_switch",
            DropReason::OwnMedia => "own_media",
            DropReason::RecorderBehind => "recorder_behind",
            DropReason::LayerNotSelected => "layer_not_selected",
            DropReason::BandwidthPaused => "bandwidth_paused",
            DropReason::TcpBadFraming => "tcp_bad_framing",
            DropReason::TcpOversize => "tcp_oversize",
            DropReason::TcpTooManyConnections => "tcp_too_many_connections",
            DropReason::TcpIdle => "tcp_idle",
            DropReason::TcpBackpressure => "tcp_backpressure",
            DropReason::TcpNoConnection => "tcp_no_connection",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one forwarding core.
#[derive(Debug, Default)]
pub struct SfuCounters {
    drops: [AtomicU64; DropReason::ALL.len()],
    pub packets_received: AtomicU64,
    pub packets_forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    /// Keyframe requests sent to publishers (after aggregation and throttling).
    pub keyframe_requests_sent: AtomicU64,
    /// Keyframe requests from subscribers (before aggregation).
    pub keyframe_requests_received: AtomicU64,
}

impl SfuCounters {
    pub fn dropped(&self, reason: DropReason) {
        self.drops[reason.index()].fetch_add(1, Relaxed);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].load(Relaxed)
    }

    pub fn forwarded(&self, bytes: usize) {
        self.packets_forwarded.fetch_add(1, Relaxed);
        self.bytes_forwarded.fetch_add(bytes as u64, Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_distinct_indexes_and_labels() {
        let c = SfuCounters::default();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            c.dropped(*r);
        }
        let labels: std::collections::HashSet<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), DropReason::ALL.len());
        assert!(DropReason::ALL.iter().all(|r| c.drops(*r) == 1));
    }
}
