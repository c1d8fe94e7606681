//! Keyframe requests toward a publisher: aggregated and rate-limited.
//!
//! Many subscribers of one publisher track ask for keyframes (a join, a loss
//! burst, a source switch). The publisher must see at most one request per
//! `min_interval`; a request that arrives inside the window is not lost but
//! deferred to the window's end, so a new subscriber still gets its keyframe
//! fast (within one interval) while a storm of PLIs costs the encoder one keyframe.
//!
//! Invariants: `request` and `handle_timeout` return `true` at most once per
//! `min_interval`; a request is never dropped, only merged with others.

use std::time::{Duration, Instant};

use str0m::format::{detect_h264_nalu, detect_vp8_keyframe};

/// Default spacing of keyframe requests toward one publisher track.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct KeyframeThrottle {
    min_interval: Duration,
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    pub fn new(min_interval: Duration) -> Self {
        KeyframeThrottle { min_interval, last_sent: None, pending: false }
    }

    /// A subscriber wants a keyframe. Returns whether to send a request now.
    pub fn request(&mut self, now: Instant) -> bool {
        if self.may_send(now) {
            self.sent(now);
            return true;
        }
        self.pending = true;
        false
    }

    /// When a deferred request falls due, if one is waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let due = self.last_sent? + self.min_interval;
        self.pending.then_some(due)
    }

    /// Time passed; returns whether a deferred request must be sent now.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.pending && self.may_send(now) {
            self.sent(now);
            return true;
        }
        false
    }

    fn may_send(&self, now: Instant) -> bool {
        self.last_sent.is_none_or(|t| now >= t + self.min_interval)
    }

    fn sent(&mut self, now: Instant) {
        self.last_sent = Some(now);
        self.pending = false;
    }
}

/// Video codecs the forwarder understands, for keyframe detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    Vp8,
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;

/// Whether an RTP payload starts a decodable picture: an H.264 packet carrying
/// SPS or an IDR slice (SPS comes first when the encoder sends both), or the first
/// packet of a VP8 key frame.
pub fn starts_keyframe(codec: VideoCodec, payload: &[u8]) -> bool {
    match codec {
        VideoCodec::H264 => detect_h264_nalu(payload, H264_SPS) || detect_h264_nalu(payload, H264_IDR),
        VideoCodec::Vp8 => detect_vp8_keyframe(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_request_goes_out_at_once() {
        let t = Instant::now();
        let mut k = KeyframeThrottle::new(500 * MS);
        assert!(k.request(t));
        assert_eq!(k.poll_timeout(), None);
    }

    #[test]
    fn storm_of_requests_becomes_one_per_interval() {
        let t = Instant::now();
        let mut k = KeyframeThrottle::new(500 * MS);
        let mut sent = 0;
        // 200 subscribers each send a PLI every 10 ms for 2 s.
        for step in 0..200u32 {
            let now = t + step * 10 * MS;
            for _ in 0..200 {
                sent += u32::from(k.request(now));
            }
            sent += u32::from(k.handle_timeout(now));
        }
        assert_eq!(sent, 4); // at 0, 500, 1000, 1500 ms
    }

    #[test]
    fn request_inside_window_is_deferred_not_lost() {
        let t = Instant::now();
        let mut k = KeyframeThrottle::new(500 * MS);
        assert!(k.request(t));
        assert!(!k.request(t + 100 * MS));
        assert_eq!(k.poll_timeout(), Some(t + 500 * MS));
        assert!(!k.handle_timeout(t + 499 * MS));
        assert!(k.handle_timeout(t + 500 * MS));
        assert_eq!(k.poll_timeout(), None);
        assert!(!k.handle_timeout(t + 2000 * MS));
    }

    #[test]
    fn detects_h264_sps_idr_and_vp8_keyframes() {
        assert!(starts_keyframe(VideoCodec::H264, &[0x67, 0x42])); // SPS
        assert!(starts_keyframe(VideoCodec::H264, &[0x65, 0x88])); // IDR slice
        assert!(starts_keyframe(VideoCodec::H264, &[0x7c, 0x85, 0x00])); // FU-A start of IDR
        assert!(!starts_keyframe(VideoCodec::H264, &[0x7c, 0x05, 0x00])); // FU-A middle
        assert!(!starts_keyframe(VideoCodec::H264, &[0x41, 0x9a])); // non-IDR slice
        assert!(!starts_keyframe(VideoCodec::H264, &[]));
        // VP8: S=1, PID=0, no extension; payload header P bit 0 = key frame.
        assert!(starts_keyframe(VideoCodec::Vp8, &[0x10, 0x00, 0x9d, 0x01, 0x2a]));
        assert!(!starts_keyframe(VideoCodec::Vp8, &[0x10, 0x01, 0x9d, 0x01, 0x2a]));
    }
}
