//! Measures the CPU a track recorder costs: generates N seconds of 1280x720 30 fps H.264
//! at a given bitrate (default 1,500 kbit/s, a teacher camera) and of Opus as RTP, then
//! pushes them through `TrackRecorder`s as fast as they are taken and reports CPU seconds
//! per media second (process user + system time while recording; generation is excluded).
//! With `realtime` as third argument, packets are pushed at their real pace (as a live
//! class does), so the cost includes the recorder threads waking up for every packet.
//! Run: `cargo run --release -p classcast-recorder --example cpu_per_track [seconds]
//! [kbit/s] [realtime]` (Linux only: reads /proc); `make bench` runs it with 60 s at
//! 1,500 kbit/s, both ways.

use std::sync::Arc;
use std::time::Duration;

use classcast_recorder::{Codec, RtpPacketIn, TrackRecorder, TrackSpec};
use gst::prelude::*;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("linux /proc");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    ticks / 100.0
}

fn generate(desc: &str) -> Vec<RtpPacketIn> {
    let pipeline = gst::parse::launch(desc)
        .expect("pipeline")
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("plays");
    let (mut packets, mut first) = (Vec::new(), None);
    while let Ok(sample) = sink.pull_sample() {
        let buffer = sample.buffer().expect("buffer");
        let pts = Duration::from_nanos(buffer.pts().expect("pts").nseconds());
        let arrival = pts - *first.get_or_insert(pts);
        let map = buffer.map_readable().expect("readable");
        packets.push(RtpPacketIn {
            bytes: Arc::from(map.as_slice()),
            arrival,
        });
    }
    pipeline.set_state(gst::State::Null).expect("stops");
    packets
}

fn record(codec: Codec, payload_type: u8, packets: Vec<RtpPacketIn>, realtime: bool) -> f64 {
    let path = std::env::temp_dir().join(format!("cpu_per_track.{}.mp4", codec.as_str()));
    let spec = TrackSpec {
        path: path.clone(),
        codec,
        payload_type,
        clock_rate: codec.default_clock_rate(),
    };
    let before = cpu_seconds();
    let recorder = TrackRecorder::start(spec, 1 << 20).expect("recorder");
    let sender = recorder.sender();
    let started = std::time::Instant::now();
    for p in packets {
        if realtime {
            std::thread::sleep(p.arrival.saturating_sub(started.elapsed()));
        }
        sender.try_push(p).expect("queue large enough");
    }
    let summary = recorder.finish().expect("finished");
    let cpu = cpu_seconds() - before;
    println!(
        "{}: {:?} of media, {} bytes, {:.2} s CPU",
        codec.as_str(),
        summary.duration,
        summary.bytes,
        cpu
    );
    let _ = std::fs::remove_file(path);
    cpu / summary.duration.as_secs_f64()
}

fn main() {
    let seconds: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let kbps: u32 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let realtime = std::env::args().nth(3).is_some_and(|a| a == "realtime");
    classcast_recorder::init().expect("gstreamer");
    // `snow` changes every pixel every frame, so the encoder spends its whole bitrate.
    let video = generate(&format!(
        "videotestsrc num-buffers={} pattern=snow ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max=150 \
         ! video/x-h264,profile=constrained-baseline ! rtph264pay pt=96 mtu=1200 ! appsink name=out sync=false",
        seconds * 30
    ));
    let audio = generate(&format!(
        "audiotestsrc num-buffers={} samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! opusenc \
         ! rtpopuspay pt=111 ! appsink name=out sync=false",
        seconds * 50
    ));
    println!(
        "{} H.264 packets, {} Opus packets",
        video.len(),
        audio.len()
    );
    let video_bytes: usize = video.iter().map(|p| p.bytes.len()).sum();
    let h264 = record(Codec::H264, 96, video, realtime);
    let opus = record(Codec::Opus, 111, audio, realtime);
    let actual_kbps = video_bytes as f64 * 8.0 / 1000.0 / f64::from(seconds);
    println!(
        "summary record_cost mode={} video_kbps={actual_kbps:.0} h264_720p_core_pct={:.3} opus_core_pct={:.3}",
        if realtime { "realtime" } else { "batch" },
        h264 * 100.0,
        opus * 100.0
    );
}
