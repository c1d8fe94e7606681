//! The recorder under bad conditions: a queue that overflows, garbage instead of RTP, a
//! publisher that changes, a path that cannot be written. Nothing may block, panic or hang.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use classcast_recorder::{
    Codec, FINISH_TIMEOUT, FinishError, PushError, RecorderError, RtpPacketIn, SSRC_SWITCH_PACKETS, TrackEvent,
    TrackRecorder, TrackStats,
};
use common::*;

/// Generous bound for one `try_push` (a lock-free `try_send`); a blocking push would wait
/// for the feeder thread and GStreamer, far longer than this.
const PUSH_BOUND: Duration = Duration::from_millis(20);

struct Pushed {
    ok: u64,
    full: u64,
    closed: u64,
    /// Refused: more than `MAX_GAP` after the last packet taken (the next part's).
    gap: u64,
    slowest: Duration,
}

fn push_all(recorder: &TrackRecorder, packets: impl IntoIterator<Item = RtpPacketIn>) -> Pushed {
    let sender = recorder.sender();
    let mut pushed = Pushed {
        ok: 0,
        full: 0,
        closed: 0,
        gap: 0,
        slowest: Duration::ZERO,
    };
    for p in packets {
        let t = Instant::now();
        let result = sender.try_push(p);
        pushed.slowest = pushed.slowest.max(t.elapsed());
        match result {
            Ok(()) => pushed.ok += 1,
            Err(PushError::Full) => pushed.full += 1,
            Err(PushError::Closed) => pushed.closed += 1,
            Err(PushError::Gap) => pushed.gap += 1,
        }
    }
    pushed
}

fn start(name: &str, codec: Codec, depth: usize) -> TrackRecorder {
    let path = scratch(name).join("r1.mic.part1.mp4");
    TrackRecorder::start(spec(path, codec), depth).expect("recorder starts")
}

/// Every packet taken by the queue was either handed to GStreamer or counted as invalid.
fn assert_accounted(stats: TrackStats, pushed: &Pushed) {
    assert_eq!(stats.dropped, pushed.full, "every Full is counted");
    assert_eq!(
        stats.packets + stats.invalid,
        pushed.ok,
        "every queued packet is accounted"
    );
}

#[test]
fn full_queue_drops_and_counts_without_blocking() {
    let packets = rtp_packets(Codec::H264, 6, 30);
    let recorder = start("queue-full", Codec::H264, 4);
    let pushed = push_all(&recorder, packets.iter().cloned());
    assert!(
        pushed.full > 0,
        "a depth-4 queue overflows when {} packets arrive at once",
        packets.len()
    );
    assert!(
        pushed.slowest < PUSH_BOUND,
        "a push took {:?}",
        pushed.slowest
    );
    // Once the drops leave more than MAX_GAP between two packets taken, the rest belongs
    // to the next part (the muxer must never see such a hole).
    assert_eq!(pushed.ok + pushed.full + pushed.gap, packets.len() as u64);
    let summary = recorder.finish().expect("what was queued is recorded");
    assert_accounted(summary.stats, &pushed);
    assert_eq!(summary.stats.invalid, 0);
}

#[test]
fn pushing_after_finish_is_refused() {
    let packets = rtp_packets(Codec::Opus, 1, 30);
    let recorder = start("closed", Codec::Opus, 64);
    let sender = recorder.sender();
    recorder.finish().expect("an empty part finishes");
    assert_eq!(sender.try_push(packets[0].clone()), Err(PushError::Closed));
    assert_eq!(sender.stats().packets, 0);
}

fn garbage(rng: &mut Rng, valid_header: bool, pt: u8, i: u64) -> RtpPacketIn {
    let len = (rng.next() % 1400) as usize;
    let mut bytes = rng.bytes(len.max(if valid_header { 13 } else { 0 }));
    if valid_header {
        bytes[0] = 0x80;
        bytes[1] = pt;
        bytes[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    }
    RtpPacketIn {
        bytes: Arc::from(bytes),
        arrival: Duration::from_millis(i * 5),
    }
}

/// Pushes 2000 garbage packets through a new recorder; it must neither panic nor hang.
/// Returns the final counters (through a sender: `finish` may report a fault).
fn push_garbage(name: &str, codec: Codec, valid_header: bool) -> TrackStats {
    let recorder = start(name, codec, 8192);
    let pt = spec(Default::default(), codec).payload_type;
    let mut rng = Rng::new(0x5eed ^ u64::from(pt) ^ u64::from(valid_header));
    let sender = recorder.sender();
    let pushed = push_all(
        &recorder,
        (0..2000)
            .map(|i| garbage(&mut rng, valid_header, pt, i))
            .collect::<Vec<_>>(),
    );
    let started = Instant::now();
    let result = recorder.finish();
    assert!(
        started.elapsed() <= FINISH_TIMEOUT + Duration::from_secs(1),
        "finish is bounded"
    );
    let stats = sender.stats();
    assert_eq!(stats.dropped, pushed.full);
    match result {
        Ok(summary) => assert_accounted(summary.stats, &pushed),
        Err(e) => eprintln!("{name}: garbage ended the part with: {e}"),
    }
    stats
}

/// Random bytes (almost none is RTP of our payload type), then random payloads behind
/// valid RTP headers of one SSRC (they reach the depayloader and parsers).
fn survive_garbage(codec: Codec) {
    let random = push_garbage(&format!("garbage-{}", codec.as_str()), codec, false);
    assert!(
        random.invalid >= 1900,
        "random bytes are not RTP: {random:?}"
    );
    let payloads = push_garbage(&format!("garbage-payload-{}", codec.as_str()), codec, true);
    assert_eq!(
        payloads.invalid, 0,
        "well-formed headers are accepted: {payloads:?}"
    );
    assert_eq!(
        payloads.packets, 2000,
        "and handed to GStreamer: {payloads:?}"
    );
}

#[test]
fn garbage_h264_neither_panics_nor_hangs() {
    survive_garbage(Codec::H264);
}

#[test]
fn garbage_vp8_neither_panics_nor_hangs() {
    survive_garbage(Codec::Vp8);
}

#[test]
fn garbage_opus_neither_panics_nor_hangs() {
    survive_garbage(Codec::Opus);
}

#[test]
fn garbage_between_real_packets_is_ignored() {
    let packets = rtp_packets(Codec::H264, 4, 30);
    let mut rng = Rng::new(42);
    let path = scratch("garbage-mixed").join("main.camera.part1.mp4");
    let recorder = TrackRecorder::start(spec(path.clone(), Codec::H264), 8192).expect("starts");
    let mut mixed = Vec::new();
    for p in &packets {
        mixed.push(p.clone());
        // Not RTP: version 0 (top two bits clear), any length.
        let len = (rng.next() % 300) as usize;
        let mut junk = rng.bytes(len);
        if let Some(b) = junk.first_mut() {
            *b &= 0x3f;
        }
        mixed.push(RtpPacketIn {
            bytes: Arc::from(junk),
            arrival: p.arrival,
        });
    }
    let pushed = push_all(&recorder, mixed);
    let stats = recorder
        .finish()
        .expect("the real stream is recorded")
        .stats;
    assert_eq!(
        stats.invalid,
        packets.len() as u64,
        "each junk packet is counted"
    );
    assert_eq!(
        stats.packets,
        packets.len() as u64,
        "each real packet is recorded"
    );
    assert_eq!(pushed.full, 0);
    let decoded = decode(&path, Codec::H264);
    assert_eq!(decoded.frames, 4 * 30, "every frame survives: {decoded:?}");
}

#[test]
fn a_new_ssrc_is_a_fault_but_stray_packets_are_not() {
    let packets = rtp_packets(Codec::Opus, 2, 30);
    let recorder = start("ssrc", Codec::Opus, 8192);
    let events = recorder.events();
    let half = packets.len() / 2;
    let stray = packets[..half].iter().enumerate().map(|(i, p)| {
        if i % 10 == 5 {
            with_ssrc(p, 7)
        } else {
            p.clone()
        }
    });
    push_all(&recorder, stray.collect::<Vec<_>>());
    let switch = packets[half..].iter().map(|p| with_ssrc(p, 0xbeef));
    push_all(&recorder, switch.collect::<Vec<_>>());
    assert!(packets.len() - half > SSRC_SWITCH_PACKETS as usize);
    let result = recorder.finish();
    assert!(
        matches!(&result, Err(FinishError { error: RecorderError::Pipeline(m), .. }) if m.contains("SSRC changed")),
        "{result:?}"
    );
    let fault = events
        .try_iter()
        .find(|e| matches!(e, TrackEvent::Fault(_)));
    assert!(fault.is_some(), "the fault is also an event");
}

#[test]
fn an_unwritable_path_fails_start_cleanly() {
    let path = scratch("unwritable")
        .join("no-such-folder")
        .join("main.camera.part1.mp4");
    let result = TrackRecorder::start(spec(path, Codec::Vp8), 16);
    assert!(
        matches!(result, Err(RecorderError::Pipeline(_))),
        "{:?}",
        result.err()
    );
}

#[test]
fn invalid_specs_are_refused() {
    let path = scratch("spec").join("main.camera.part1.mp4");
    let mut bad_pt = spec(path.clone(), Codec::H264);
    bad_pt.payload_type = 8;
    assert!(matches!(
        TrackRecorder::start(bad_pt, 16),
        Err(RecorderError::InvalidSpec(_))
    ));
    assert!(matches!(
        TrackRecorder::start(spec(path, Codec::H264), 0),
        Err(RecorderError::InvalidSpec(_))
    ));
}

#[test]
fn video_recorders_ask_for_a_keyframe_at_start() {
    let recorder = start("keyframe", Codec::Vp8, 16);
    assert_eq!(recorder.events().try_recv(), Ok(TrackEvent::KeyframeWanted));
    assert_eq!(recorder.stats().keyframe_requests, 1);
}
