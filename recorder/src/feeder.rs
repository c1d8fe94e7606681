//! The feeder thread of one track: takes packets from the bounded queue and hands them to
//! appsrc, stamped with their arrival time.
//!
//! Invariants:
//! - Only this thread moves the pipeline's clock, and only forward (to the latest arrival).
//! - A packet reaches GStreamer only if it is a well-formed RTP packet (version 2, header,
//!   CSRCs, extension and padding within its length) of the track's payload type and of
//!   the first SSRC seen; anything else is counted as `invalid`. Streams are never mixed:
//!   [`SSRC_SWITCH_PACKETS`] consecutive packets of one other SSRC mean a new publisher,
//!   which is a fault (the owner starts a new part); stray packets are just invalid.
//! - The pipeline never sees a hole longer than [`MAX_GAP`] between two packets (senders
//!   refuse the packet after one; should stray or invalid packets hide it from them, the
//!   feeder ends the part cleanly itself, before the gap: EOS, nothing after it).
//! - The packet bytes are not copied: the buffer wraps the sender's `Arc<[u8]>`.
//! - The thread ends on `Finish` or at a gap (after sending EOS), on `Abort`, when appsrc refuses a
//!   buffer (pipeline stopped), after a fault (packets still queued are discarded), or when
//!   every sender is gone. Senders then get `Closed`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::clock::ArrivalClock;
use crate::state::Shared;
use crate::track::{FRAGMENT, JITTER_LATENCY, MAX_GAP, RtpPacketIn};

/// Consecutive packets of one new SSRC that mean the publisher changed.
pub const SSRC_SWITCH_PACKETS: u32 = 50;

/// Pause between two hand-overs to the pipeline (recording is not latency-sensitive; the
/// track's queue holds far more than this much media).
pub const BATCH: Duration = Duration::from_millis(100);

pub(crate) enum Msg {
    Packet(RtpPacketIn),
    /// Drain: everything queued before this was pushed; send EOS and stop.
    Finish,
    /// Stop now (the pipeline is being torn down).
    Abort,
}

struct Feeder {
    appsrc: gst_app::AppSrc,
    clock: ArrivalClock,
    shared: Arc<Shared>,
    payload_type: u8,
    now: gst::ClockTime,
    /// Arrival of the latest packet handed to appsrc.
    last_fed: Option<Duration>,
    /// A packet came after a gap: the part ends (cleanly) before it.
    at_gap: bool,
    ssrc: Option<u32>,
    /// Another SSRC seen in a row, and how many times.
    other_ssrc: Option<(u32, u32)>,
}

pub(crate) fn spawn(
    rx: Receiver<Msg>,
    appsrc: gst_app::AppSrc,
    clock: ArrivalClock,
    shared: Arc<Shared>,
    payload_type: u8,
) -> std::io::Result<JoinHandle<()>> {
    let feeder = Feeder {
        appsrc,
        clock,
        shared,
        payload_type,
        now: gst::ClockTime::ZERO,
        last_fed: None,
        at_gap: false,
        ssrc: None,
        other_ssrc: None,
    };
    std::thread::Builder::new()
        .name("rec-feeder".into())
        .spawn(move || feeder.run(rx))
}

impl Feeder {
    /// Hands packets over in batches: everything queued, then a pause of [`BATCH`]. Each
    /// hand-over wakes the pipeline's threads; one wake-up per batch instead of per packet
    /// is most of what a recorded track costs (see the recording cost in PERFORMANCE.md).
    fn run(mut self, rx: Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next {
                let more = match msg {
                    Msg::Packet(p) => self.push(p),
                    Msg::Finish => return self.finish(),
                    Msg::Abort => false,
                };
                if !more {
                    if self.at_gap {
                        self.finish();
                    }
                    return;
                }
                next = rx.try_recv().ok();
            }
            std::thread::sleep(BATCH);
        }
    }

    /// False when the pipeline no longer takes buffers (stopped, or a fault).
    fn push(&mut self, p: RtpPacketIn) -> bool {
        if self.shared.failed.load(Ordering::Relaxed) {
            return false;
        }
        match check_rtp(&p.bytes, self.payload_type).map(|ssrc| self.check_ssrc(ssrc)) {
            Some(SsrcCheck::Ours) => {}
            Some(SsrcCheck::Switched) => return false,
            Some(SsrcCheck::Stray) | None => {
                Shared::bump(&self.shared.invalid);
                return true;
            }
        }
        if self.last_fed.is_some_and(|last| p.arrival > last + MAX_GAP) {
            self.shared.gap.store(true, Ordering::Relaxed);
            self.shared.closed.store(true, Ordering::Relaxed);
            self.at_gap = true;
            return false;
        }
        self.last_fed = Some(p.arrival.max(self.last_fed.unwrap_or_default()));
        let arrival = gst::ClockTime::from_nseconds(p.arrival.as_nanos() as u64);
        self.advance_clock(arrival);
        let mut buffer = gst::Buffer::from_slice(p.bytes);
        {
            // A new buffer has exactly one reference: get_mut cannot fail.
            let b = buffer.get_mut().expect("fresh buffer is writable");
            b.set_pts(arrival);
            b.set_dts(arrival);
        }
        let ok = self.appsrc.push_buffer(buffer).is_ok();
        if ok {
            Shared::bump(&self.shared.packets);
        }
        ok
    }

    fn check_ssrc(&mut self, ssrc: u32) -> SsrcCheck {
        let ours = *self.ssrc.get_or_insert(ssrc);
        if ssrc == ours {
            self.other_ssrc = None;
            return SsrcCheck::Ours;
        }
        let seen = match self.other_ssrc {
            Some((other, n)) if other == ssrc => n + 1,
            _ => 1,
        };
        self.other_ssrc = Some((ssrc, seen));
        if seen < SSRC_SWITCH_PACKETS {
            return SsrcCheck::Stray;
        }
        self.shared.record_fault(format!(
            "SSRC changed from {ours:08x} to {ssrc:08x}: start a new part"
        ));
        SsrcCheck::Switched
    }

    fn advance_clock(&mut self, to: gst::ClockTime) {
        if to > self.now {
            self.now = to;
            self.clock.advance_to(to);
        }
    }

    /// Lets rtpjitterbuffer release what it holds (its timers run on arrival time), then EOS.
    fn finish(mut self) {
        let flush = Duration::from_nanos(self.now.nseconds()) + JITTER_LATENCY + FRAGMENT;
        self.advance_clock(gst::ClockTime::from_nseconds(flush.as_nanos() as u64));
        let _ = self.appsrc.end_of_stream();
    }
}

enum SsrcCheck {
    Ours,
    /// A packet of another SSRC (ignored).
    Stray,
    /// Another SSRC took over: fault, stop.
    Switched,
}

/// The SSRC of a well-formed RTP packet of payload type `pt`, else `None`.
pub(crate) fn check_rtp(b: &[u8], pt: u8) -> Option<u32> {
    if b.len() < 12 || b[0] >> 6 != 2 || b[1] & 0x7f != pt {
        return None;
    }
    let mut header = 12 + 4 * usize::from(b[0] & 0x0f);
    if b[0] & 0x10 != 0 {
        let words = b.get(header + 2..header + 4)?;
        header += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let padding = if b[0] & 0x20 != 0 {
        usize::from(*b.last()?)
    } else {
        0
    };
    if b[0] & 0x20 != 0 && padding == 0 {
        return None;
    }
    (header + padding < b.len()).then(|| u32::from_be_bytes([b[8], b[9], b[10], b[11]]))
}

#[cfg(test)]
mod tests {
    use super::check_rtp;

    fn packet(first: u8, pt: u8, tail: &[u8]) -> Vec<u8> {
        let mut p = vec![first, pt, 0, 1, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef];
        p.extend_from_slice(tail);
        p
    }

    #[test]
    fn accepts_plain_packet_and_returns_ssrc() {
        assert_eq!(
            check_rtp(&packet(0x80, 96, &[1, 2, 3]), 96),
            Some(0xdead_beef)
        );
        assert_eq!(
            check_rtp(&packet(0x80, 96 | 0x80, &[1]), 96),
            Some(0xdead_beef),
            "marker bit"
        );
    }

    #[test]
    fn rejects_malformed_or_foreign_packets() {
        assert_eq!(check_rtp(&[0x80, 96, 0], 96), None, "short");
        assert_eq!(check_rtp(&packet(0x40, 96, &[1]), 96), None, "version 1");
        assert_eq!(
            check_rtp(&packet(0x80, 97, &[1]), 96),
            None,
            "other payload type"
        );
        assert_eq!(check_rtp(&packet(0x80, 96, &[]), 96), None, "no payload");
        assert_eq!(
            check_rtp(&packet(0x8f, 96, &[1; 8]), 96),
            None,
            "15 CSRCs missing"
        );
        assert_eq!(
            check_rtp(&packet(0x90, 96, &[0xbe, 0xde, 0, 9, 1]), 96),
            None,
            "extension too long"
        );
        assert_eq!(
            check_rtp(&packet(0xa0, 96, &[1, 2, 9]), 96),
            None,
            "padding too long"
        );
        assert_eq!(
            check_rtp(&packet(0xa0, 96, &[1, 2, 0]), 96),
            None,
            "zero padding length"
        );
    }

    #[test]
    fn accepts_extension_and_padding_within_bounds() {
        let ext = [0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0, 7];
        assert!(check_rtp(&packet(0x90, 96, &ext), 96).is_some());
        assert!(check_rtp(&packet(0xa0, 96, &[7, 0, 2]), 96).is_some());
    }
}
