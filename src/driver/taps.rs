//! The bounded queue from the forwarding threads to the recorder.
//!
//! Invariants:
//! - The forwarding thread never blocks on it: a packet that does not fit is
//!   dropped and counted (`recorder_behind`).
//! - Control messages (a tap started or ended) keep `CONTROL_HEADROOM` places
//!   of their own, so a recorder that falls behind loses packets, not the
//!   knowledge of which tracks exist; and they are queued before the packets
//!   of the same step, so a track is always announced before its first packet.

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::sfu::RoomId;
use crate::sfu::room::SlotKey;
use crate::sfu::stats::{DropReason, SfuCounters};
use crate::sfu::tap::{TapId, TapPacket};

/// Places kept free for control messages.
pub const CONTROL_HEADROOM: usize = 64;

#[derive(Debug)]
pub enum TapMsg {
    Started { room: RoomId, tap: TapId, key: SlotKey },
    Packet(TapPacket),
    Ended { tap: TapId },
}

#[derive(Debug, Clone)]
pub struct TapSink {
    tx: Sender<TapMsg>,
    packet_limit: usize,
}

/// A queue holding `capacity` messages; the receiver goes to the recorder.
pub fn tap_queue(capacity: usize) -> (TapSink, Receiver<TapMsg>) {
    let capacity = capacity.max(CONTROL_HEADROOM * 2);
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    (TapSink { tx, packet_limit: capacity - CONTROL_HEADROOM }, rx)
}

impl TapSink {
    pub fn packet(&self, p: TapPacket, counters: &SfuCounters) {
        if self.tx.len() >= self.packet_limit || self.tx.try_send(TapMsg::Packet(p)).is_err() {
            counters.dropped(DropReason::RecorderBehind);
        }
    }

    /// Returns false if even the headroom was full (the recorder is stuck).
    pub fn control(&self, m: TapMsg) -> bool {
        match self.tx.try_send(m) {
            Ok(()) => true,
            Err(TrySendError::Full(m)) => {
                tracing::error!(?m, "recorder queue full, control message lost");
                false
            }
            // No recorder (recording disabled in this server): nothing to tell.
            Err(TrySendError::Disconnected(_)) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    fn packet(seq: u64) -> TapPacket {
        let codec = crate::sfu::peer::CodecKey { codec: str0m::format::Codec::Opus, profile_level_id: None, clock_rate: 48_000 };
        let now = Instant::now();
        TapPacket { tap: TapId(1), codec, seq, ts: 0, marker: false, payload: Arc::from(&[1u8][..]), captured: now, captured_by_sender: false, arrival: now }
    }

    #[test]
    fn a_stalled_recorder_loses_packets_but_not_control_messages() {
        let (sink, rx) = tap_queue(200);
        let counters = SfuCounters::default();
        for seq in 0..500 {
            sink.packet(packet(seq), &counters);
        }
        assert_eq!(rx.len(), 200 - CONTROL_HEADROOM);
        assert_eq!(counters.drops(DropReason::RecorderBehind), 500 - (200 - CONTROL_HEADROOM) as u64);
        assert!(sink.control(TapMsg::Ended { tap: TapId(1) }), "control still fits");
        assert_eq!(rx.len(), 200 - CONTROL_HEADROOM + 1);
    }
}
