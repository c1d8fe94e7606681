//! A WebRTC sender changes resolution mid-stream (its encoder follows the bandwidth
//! estimate: 320x180 first, larger once the estimate grows). The recording must stay
//! decodable across the change: the new SPS/PPS travel in-band (`avc3`), and a decoder
//! reading the file ends at the new size with every frame decoded.

mod common;

use std::sync::Arc;
use std::time::Duration;

use classcast_recorder::{Codec, RtpPacketIn, TrackRecorder};
use common::*;
use gst::prelude::*;

const SSRC: u32 = 0x1234_5678;
const FRAMES: u32 = 60;

/// `FRAMES` frames of H.264 at `w`x`h` as RTP, numbered from `seq`/`ts`, arriving from `at`.
fn segment(w: u32, h: u32, seq: u16, ts: u32, at: Duration) -> Vec<RtpPacketIn> {
    let desc = format!(
        "videotestsrc num-buffers={FRAMES} pattern=ball ! video/x-raw,format=I420,width={w},height={h},framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! video/x-h264,profile=constrained-baseline \
         ! rtph264pay pt={PT_VIDEO} mtu=1200 config-interval=-1 ssrc={SSRC} seqnum-offset={seq} timestamp-offset={ts} \
         ! appsink name=out sync=false"
    );
    let (mut packets, mut first) = (Vec::new(), None);
    let error = run_to_end(&desc, |b| {
        let pts = Duration::from_nanos(b.pts().expect("payloader sets PTS").nseconds());
        let map = b.map_readable().expect("readable");
        packets.push(RtpPacketIn { bytes: Arc::from(map.as_slice()), arrival: at + (pts - *first.get_or_insert(pts)) });
    });
    assert_eq!(error, None);
    packets
}

fn rtp_seq_ts(p: &RtpPacketIn) -> (u16, u32) {
    (u16::from_be_bytes([p.bytes[2], p.bytes[3]]), u32::from_be_bytes([p.bytes[4], p.bytes[5], p.bytes[6], p.bytes[7]]))
}

/// Decodes the file; returns the frames decoded and the size of the last one.
fn decode_sizes(path: &std::path::Path) -> (u32, Option<(i32, i32)>) {
    let desc = format!("filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! appsink name=out sync=false", path.display());
    let pipeline = gst::parse::launch(&desc).expect("parses").downcast::<gst::Pipeline>().expect("pipeline");
    let sink = pipeline.by_name("out").and_then(|e| e.downcast::<gst_app::AppSink>().ok()).expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("plays");
    let (mut frames, mut size) = (0, None);
    while let Ok(sample) = sink.pull_sample() {
        frames += 1;
        let s = sample.caps().and_then(|c| c.structure(0).map(|s| (s.get::<i32>("width").ok(), s.get::<i32>("height").ok())));
        if let Some((Some(w), Some(h))) = s {
            size = Some((w, h));
        }
    }
    pipeline.set_state(gst::State::Null).expect("stops");
    (frames, size)
}

#[test]
fn a_resolution_change_mid_stream_stays_decodable() {
    let small = segment(320, 180, 1000, 90_000, Duration::ZERO);
    let (seq, ts) = rtp_seq_ts(small.last().expect("packets"));
    let next_at = small.last().expect("packets").arrival + Duration::from_millis(33);
    let large = segment(640, 360, seq.wrapping_add(1), ts.wrapping_add(3000), next_at);
    let path = scratch("resolution").join("main.camera.part1.mp4");
    let recorder = TrackRecorder::start(spec(path.clone(), Codec::H264), 4096).expect("recorder starts");
    let sender = recorder.sender();
    for p in small.iter().chain(&large) {
        sender.try_push(p.clone()).expect("queue deep enough");
    }
    recorder.finish().expect("the file is complete");
    let (frames, size) = decode_sizes(&path);
    assert_eq!(size, Some((640, 360)), "the decoder follows the new parameter sets");
    assert!(frames >= 2 * FRAMES - 2, "every frame decodes: {frames} of {}", 2 * FRAMES);
}
