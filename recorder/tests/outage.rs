//! A publisher that goes silent and comes back (a bridge reconnecting to its source after
//! 10 s): the part before the silence finishes cleanly with everything it got, and the
//! packets after it go to a new part (`PushError::Gap`), however the sender numbers them.
//! Without that, isofmp4mux never wrote anything after the silence and panicked at EOS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use classcast_recorder::fmp4::{self, Fmp4Index};
use classcast_recorder::{Codec, MAX_GAP, PushError, RtpPacketIn, TrackRecorder, TrackSummary};
use common::*;

/// Media before and after the silence, and the silence.
const BEFORE: u32 = 6;
const AFTER: u32 = 6;
const OUTAGE: Duration = Duration::from_secs(10);
/// Media a part may miss at its ends (the last frame, the jitter buffer's latency).
const SLACK: Duration = Duration::from_millis(500);

/// How the packets after the silence are numbered.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// Sequence and RTP time continue as if nothing happened (only arrival jumps).
    Continuing,
    /// Sequence continues, RTP time jumps by the silence (the SFU's rewriter after a
    /// publisher reconnects: what a recorded bridge track gets).
    TimeJumps,
    /// A fresh RTP time and sequence number (a restarted sender, same SSRC).
    Restarted,
}

fn renumbered(p: &RtpPacketIn, seq_add: u16, ts_add: u32, later: Duration) -> RtpPacketIn {
    let b = &p.bytes;
    let seq = u16::from_be_bytes([b[2], b[3]]).wrapping_add(seq_add);
    let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]]).wrapping_add(ts_add);
    let mut bytes = b.to_vec();
    bytes[2..4].copy_from_slice(&seq.to_be_bytes());
    bytes[4..8].copy_from_slice(&ts.to_be_bytes());
    RtpPacketIn { bytes: Arc::from(bytes), arrival: p.arrival + later }
}

/// `BEFORE` s of media, `silence` without packets, then `AFTER` s numbered as `resume` says.
/// Returns the packets and where the second stretch starts.
fn with_silence(codec: Codec, resume: Resume, silence: Duration) -> (Vec<RtpPacketIn>, usize) {
    let packets = rtp_packets(codec, BEFORE + AFTER, 30);
    let split = packets.partition_point(|p| p.arrival < Duration::from_secs(BEFORE.into()));
    let ticks = (silence.as_millis() as u64 * u64::from(codec.default_clock_rate()) / 1000) as u32;
    let (seq_add, ts_add) = match resume {
        Resume::Continuing => (0, 0),
        Resume::TimeJumps => (0, ticks),
        Resume::Restarted => (0x5a17, 0x1234_5678),
    };
    let mut out = packets[..split].to_vec();
    out.extend(packets[split..].iter().map(|p| renumbered(p, seq_add, ts_add, silence)));
    (out, split)
}

fn index_file(path: &std::path::Path) -> Fmp4Index {
    let mut file = std::fs::File::open(path).expect("the part file");
    let len = file.metadata().expect("metadata").len();
    fmp4::index(&mut file, len).expect("the part indexes")
}

fn start(dir: &std::path::Path, part: u32, codec: Codec) -> (TrackRecorder, std::path::PathBuf) {
    let path = dir.join(format!("main.mic.part{part}.mp4"));
    let recorder = TrackRecorder::start(spec(path.clone(), codec), 4096).expect("recorder starts");
    (recorder, path)
}

/// What the owner does: push until `Gap`, finish that part, push the rest into the next.
/// Returns each part's summary and index.
fn record_in_parts(name: &str, codec: Codec, packets: &[RtpPacketIn]) -> Vec<(TrackSummary, Fmp4Index)> {
    let dir = scratch(name);
    let mut parts = Vec::new();
    let mut rest = packets;
    while !rest.is_empty() {
        let (recorder, path) = start(&dir, parts.len() as u32 + 1, codec);
        let sender = recorder.sender();
        let taken = rest.iter().take_while(|p| match sender.try_push((*p).clone()) {
            Ok(()) => true,
            Err(PushError::Gap) => false,
            Err(e) => panic!("{name}: queue deep enough for the whole test: {e}"),
        });
        let n = taken.count();
        assert!(n > 0, "{name}: a new part takes the packet after the gap");
        rest = &rest[n..];
        let summary = recorder.finish().unwrap_or_else(|e| panic!("{name}: part {} finishes cleanly: {e}", parts.len() + 1));
        parts.push((summary, index_file(&path)));
    }
    parts
}

fn media(index: &Fmp4Index) -> Duration {
    Duration::from_secs_f64(fmp4::ticks_to_secs(index.media_duration(), index.timescale))
}

/// Two parts: everything before the silence, everything after it, on the lesson's clock.
fn assert_split_at_the_silence(name: &str, codec: Codec, resume: Resume) {
    let (packets, _) = with_silence(codec, resume, OUTAGE);
    let parts = record_in_parts(name, codec, &packets);
    for (i, (summary, index)) in parts.iter().enumerate() {
        eprintln!("{name}: part {}: {:?} of media in {} fragments, summary {:?} until {:?}", i + 1, media(index), index.fragments.len(), summary.duration, summary.stats.written_until);
    }
    assert_eq!(parts.len(), 2, "{name}: one part before the silence, one after");
    let (before, after) = (Duration::from_secs(BEFORE.into()), Duration::from_secs(AFTER.into()));
    for ((summary, index), sent) in parts.iter().zip([before, after]) {
        assert!(media(index) + SLACK >= sent && media(index) <= sent + SLACK, "{name}: {:?} in the file, {sent:?} sent", media(index));
        assert!(summary.duration + SLACK >= sent && summary.duration <= sent + SLACK, "{name}: summary {:?}, {sent:?} sent", summary.duration);
    }
    let end = parts[1].0.stats.written_until.expect("the second part wrote media");
    let lesson_end = before + OUTAGE + after;
    assert!(end + SLACK >= lesson_end && end <= lesson_end + SLACK, "{name}: the second part ends at {end:?} of the lesson, not {lesson_end:?}");
}

#[test]
fn opus_continuing_numbers_after_a_silence_go_to_a_new_part() {
    assert_split_at_the_silence("outage-opus-continuing", Codec::Opus, Resume::Continuing);
}

#[test]
fn opus_rtp_time_jumping_by_the_silence_goes_to_a_new_part() {
    assert_split_at_the_silence("outage-opus-time-jumps", Codec::Opus, Resume::TimeJumps);
}

#[test]
fn opus_from_a_restarted_sender_goes_to_a_new_part() {
    assert_split_at_the_silence("outage-opus-restarted", Codec::Opus, Resume::Restarted);
}

#[test]
fn h264_continuing_numbers_after_a_silence_go_to_a_new_part() {
    assert_split_at_the_silence("outage-h264-continuing", Codec::H264, Resume::Continuing);
}

#[test]
fn h264_rtp_time_jumping_by_the_silence_goes_to_a_new_part() {
    assert_split_at_the_silence("outage-h264-time-jumps", Codec::H264, Resume::TimeJumps);
}

#[test]
fn h264_from_a_restarted_sender_goes_to_a_new_part() {
    assert_split_at_the_silence("outage-h264-restarted", Codec::H264, Resume::Restarted);
}

#[test]
fn a_silence_shorter_than_max_gap_stays_in_one_part() {
    let silence = MAX_GAP - Duration::from_millis(300);
    let (packets, _) = with_silence(Codec::Opus, Resume::TimeJumps, silence);
    let parts = record_in_parts("outage-short", Codec::Opus, &packets);
    assert_eq!(parts.len(), 1, "one part");
    let sent = Duration::from_secs((BEFORE + AFTER).into()) + silence;
    let duration = parts[0].0.duration;
    assert!(duration + SLACK >= sent && duration <= sent + SLACK, "{duration:?} recorded, {sent:?} spanned");
}

#[test]
fn packets_pushed_after_a_gap_anyway_are_refused_and_the_part_finishes() {
    let (packets, split) = with_silence(Codec::Opus, Resume::TimeJumps, OUTAGE);
    let (recorder, path) = start(&scratch("outage-careless"), 1, Codec::Opus);
    let sender = recorder.sender();
    let results: Vec<_> = packets.iter().map(|p| sender.try_push(p.clone())).collect();
    assert!(results[..split].iter().all(Result::is_ok));
    assert!(results[split..].iter().all(|r| *r == Err(PushError::Gap)), "every packet after the gap is refused");
    let summary = recorder.finish().expect("the part before the gap finishes cleanly");
    assert_eq!(summary.stats.packets, split as u64);
    assert!(summary.duration + SLACK >= Duration::from_secs(BEFORE.into()), "{summary:?}");
    assert_eq!(media(&index_file(&path)), summary.duration);
}

#[test]
fn a_gap_hidden_by_invalid_packets_still_ends_the_part_cleanly() {
    // Packets of another payload type keep arriving during the silence: the sender sees no
    // gap, the feeder (which drops them) does, and ends the part before it.
    let (packets, split) = with_silence(Codec::Opus, Resume::TimeJumps, OUTAGE);
    let last = packets[split - 1].arrival;
    let stray = (1..100u32).map(|i| {
        let mut bytes = packets[0].bytes.to_vec();
        bytes[1] = 100;
        RtpPacketIn { bytes: Arc::from(bytes), arrival: last + OUTAGE * i / 100 }
    });
    let mut all = packets[..split].to_vec();
    all.extend(stray);
    all.extend_from_slice(&packets[split..]);
    let (recorder, path) = start(&scratch("outage-hidden"), 1, Codec::Opus);
    let sender = recorder.sender();
    for p in &all {
        // Taken, or refused once the feeder ended the part.
        let _ = sender.try_push(p.clone());
    }
    let summary = recorder.finish().expect("the part before the gap finishes cleanly");
    assert_eq!(summary.stats.packets, split as u64, "nothing after the gap entered the part");
    assert!(summary.duration + SLACK >= Duration::from_secs(BEFORE.into()), "{summary:?}");
    assert_eq!(media(&index_file(&path)), summary.duration);
}

#[test]
fn rtp_time_jumping_without_a_silence_stays_in_one_clean_part() {
    // A sender that jumps its RTP clock by 10 s while packets keep coming: rtpjitterbuffer
    // stamps by arrival after such a jump, so the muxer sees no hole.
    for codec in [Codec::Opus, Codec::H264] {
        let packets = rtp_packets(codec, BEFORE + AFTER, 30);
        let split = packets.partition_point(|p| p.arrival < Duration::from_secs(BEFORE.into()));
        let ticks = (OUTAGE.as_millis() as u64 * u64::from(codec.default_clock_rate()) / 1000) as u32;
        let mut jumped = packets[..split].to_vec();
        jumped.extend(packets[split..].iter().map(|p| renumbered(p, 0, ticks, Duration::ZERO)));
        let name = format!("ts-jump-{}", codec.as_str());
        let parts = record_in_parts(&name, codec, &jumped);
        assert_eq!(parts.len(), 1, "{name}: one part");
        let sent = Duration::from_secs((BEFORE + AFTER).into());
        let (duration, media) = (parts[0].0.duration, media(&parts[0].1));
        eprintln!("{name}: summary {duration:?}, {media:?} in the file");
        assert!(duration + SLACK >= sent && duration <= sent + SLACK, "{name}: {duration:?} recorded, {sent:?} sent");
    }
}
