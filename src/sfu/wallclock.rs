//! Capture time of forwarded packets, for the sender reports str0m writes.
//!
//! str0m builds each subscriber leg's RTCP sender reports from the (RTP time,
//! wallclock) pairs given to `write_rtp`. To keep a publisher's audio and video in
//! sync at the subscriber, both must be placed on one clock: the publisher's own
//! sender-report clock (NTP), mapped onto our `Instant`s once per publisher.
//!
//! Invariants: all tracks of one publisher share one NTP→Instant anchor; before
//! the first usable sender report of a track, arrival time is used (and said so:
//! the recorder must not mix the two within one track); a report that describes no
//! packet (`sender_packet_count == 0`, as aiortc sends before its first frame) is
//! not usable; the result never panics on odd NTP values.

use std::time::{Duration, Instant, SystemTime};


use str0m::rtp::RtpPacket;

/// When a packet was captured, on our clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captured {
    pub at: Instant,
    /// `at` comes from the publisher's sender reports (else it is the arrival time).
    pub by_sender: bool,
}

/// The capture instant of `pkt` on our clock, anchoring the publisher's NTP clock
/// on first use.
pub fn capture_instant(anchor: &mut Option<(SystemTime, Instant)>, pkt: &RtpPacket) -> Captured {
    let arrival = Captured { at: pkt.timestamp, by_sender: false };
    let Some(sr) = pkt.last_sender_info.as_ref().filter(|sr| sr.sender_packet_count > 0) else { return arrival };
    let offset_secs = pkt.time.as_seconds() - sr.rtp_time.rebase(pkt.time.frequency()).as_seconds();
    let Some(captured_ntp) = shift(sr.ntp_time, offset_secs) else { return arrival };
    let (ntp0, at0) = *anchor.get_or_insert((captured_ntp, pkt.timestamp));
    let at = match captured_ntp.duration_since(ntp0) {
        Ok(d) => at0 + d,
        Err(e) => at0.checked_sub(e.duration()).unwrap_or(at0),
    };
    Captured { at, by_sender: true }
}

fn shift(t: SystemTime, secs: f64) -> Option<SystemTime> {
    let d = Duration::try_from_secs_f64(secs.abs()).ok()?;
    if secs >= 0.0 { t.checked_add(d) } else { t.checked_sub(d) }
}
