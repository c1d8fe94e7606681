//! Real media through a `TrackRecorder`, checked with GStreamer's Discoverer (the library
//! behind gst-discoverer-1.0) and by decoding: right codec, right duration, and for H.264
//! the encoder's own SPS in the file (the video was not re-encoded).

mod common;

use std::time::Duration;

use classcast_recorder::Codec;
use common::*;

const SECONDS: u32 = 6;
const TOLERANCE: Duration = Duration::from_millis(200);

fn assert_close(what: &str, got: Duration, want: Duration) {
    let diff = got.abs_diff(want);
    assert!(
        diff <= TOLERANCE,
        "{what}: {got:?}, expected {want:?} ± {TOLERANCE:?}"
    );
}

fn check(name: &str, codec: Codec, caps_want: &str, frame: Duration) -> gst::Caps {
    let packets = rtp_packets(codec, SECONDS, 30);
    let pushed = pushed_duration(&packets, frame);
    let (path, summary) = record(name, codec, &packets);
    let found = discover(&path);
    assert_eq!(caps_name(&found.caps), caps_want);
    assert_close("discovered duration", found.duration, pushed);
    assert_close("summary duration", summary.duration, pushed);
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
    let decoded = decode(&path, codec);
    assert_eq!(decoded.error, None);
    assert_close("decoded span", decoded.span(), pushed);
    found.caps
}

#[test]
fn h264_is_recorded_without_reencoding() {
    let packets = rtp_packets(Codec::H264, 1, 30);
    let encoder_sps = sps_from_rtp(&packets).expect("the payloader sends the SPS");
    let caps = check(
        "h264",
        Codec::H264,
        "video/x-h264",
        Duration::from_millis(33),
    );
    let s = caps.structure(0).unwrap();
    let avcc = s
        .get::<gst::Buffer>("codec_data")
        .expect("avcC in the file");
    let file_sps = sps_from_avcc(&avcc.map_readable().unwrap()).expect("an SPS in avcC");
    assert_eq!(
        file_sps, encoder_sps,
        "the file carries the encoder's own SPS"
    );
}

#[test]
fn vp8_is_recorded() {
    check("vp8", Codec::Vp8, "video/x-vp8", Duration::from_millis(33));
}

#[test]
fn opus_is_recorded() {
    check(
        "opus",
        Codec::Opus,
        "audio/x-opus",
        Duration::from_millis(20),
    );
}

#[test]
fn a_part_started_later_keeps_lesson_time() {
    let offset = Duration::from_secs(600);
    let packets: Vec<_> = rtp_packets(Codec::Vp8, 2, 30)
        .into_iter()
        .map(|p| classcast_recorder::RtpPacketIn {
            arrival: p.arrival + offset,
            ..p
        })
        .collect();
    let (path, summary) = record("lesson-time", Codec::Vp8, &packets);
    assert_close("summary duration", summary.duration, Duration::from_secs(2));
    let decoded = decode(&path, Codec::Vp8);
    assert_close("first frame in lesson time", decoded.first.unwrap(), offset);
    assert_close(
        "last frame in lesson time",
        decoded.last_end.unwrap(),
        offset + Duration::from_secs(2),
    );
}
