//! Test helpers: real media made by GStreamer itself (no network, no fixtures), and
//! readers that check what a recorded file holds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use classcast_recorder::fmp4::Fmp4Index;
use classcast_recorder::{Codec, RtpPacketIn, TrackRecorder, TrackSpec, TrackSummary};
use gst::prelude::*;
use gst_pbutils::prelude::*;

pub const PT_VIDEO: u8 = 96;
pub const PT_OPUS: u8 = 111;

/// A fresh, empty folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("recorder-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

pub fn spec(path: PathBuf, codec: Codec) -> TrackSpec {
    let payload_type = if codec == Codec::Opus {
        PT_OPUS
    } else {
        PT_VIDEO
    };
    TrackSpec {
        path,
        codec,
        payload_type,
        clock_rate: codec.default_clock_rate(),
    }
}

fn source_pipeline(codec: Codec, seconds: u32, gop: u32, pattern: &str) -> String {
    let frames = seconds * 30;
    let video = format!(
        "videotestsrc num-buffers={frames} pattern={pattern} \
         ! video/x-raw,format=I420,width=320,height=240,framerate=30/1"
    );
    match codec {
        Codec::H264 => format!(
            "{video} ! x264enc tune=zerolatency key-int-max={gop} \
             ! video/x-h264,profile=constrained-baseline \
             ! rtph264pay pt={PT_VIDEO} mtu=1200 config-interval=-1 ! appsink name=out sync=false"
        ),
        Codec::Vp8 => format!(
            "{video} ! vp8enc deadline=1 keyframe-max-dist={gop} \
             ! rtpvp8pay pt={PT_VIDEO} mtu=1200 ! appsink name=out sync=false"
        ),
        Codec::Opus => format!(
            "audiotestsrc num-buffers={} samplesperbuffer=960 wave=ticks \
             ! audio/x-raw,rate=48000,channels=2 ! opusenc \
             ! rtpopuspay pt={PT_OPUS} ! appsink name=out sync=false",
            seconds * 50
        ),
    }
}

/// `seconds` of `codec` as RTP packets (keyframe every `gop` frames for video), each
/// stamped with its media time as arrival time, in sending order.
pub fn rtp_packets(codec: Codec, seconds: u32, gop: u32) -> Vec<RtpPacketIn> {
    rtp_packets_of_pattern(codec, seconds, gop, "ball")
}

/// Like [`rtp_packets`], video drawn with videotestsrc's `pattern` (e.g. `white`).
pub fn rtp_packets_of_pattern(
    codec: Codec,
    seconds: u32,
    gop: u32,
    pattern: &str,
) -> Vec<RtpPacketIn> {
    let (mut packets, mut first) = (Vec::new(), None);
    let error = run_to_end(&source_pipeline(codec, seconds, gop, pattern), |buffer| {
        let map = buffer.map_readable().expect("readable buffer");
        // Encoders may shift their timeline (x264enc starts at 1000 h): count from the first.
        let pts = Duration::from_nanos(buffer.pts().expect("payloader sets PTS").nseconds());
        let arrival = pts - *first.get_or_insert(pts);
        packets.push(RtpPacketIn {
            bytes: Arc::from(map.as_slice()),
            arrival,
        });
    });
    assert_eq!(error, None, "the source pipeline runs");
    assert!(!packets.is_empty(), "the source made packets");
    packets
}

/// Runs a pipeline whose sink is `appsink name=out` to its end, giving each buffer to
/// `on_buffer`; returns the error that ended it, if any (waits on the bus: EOS or error).
pub fn run_to_end(desc: &str, mut on_buffer: impl FnMut(&gst::BufferRef)) -> Option<String> {
    classcast_recorder::init().expect("gstreamer");
    let pipeline = gst::parse::launch(desc)
        .expect("pipeline parses")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .expect("appsink out");
    let (tx, rx) = std::sync::mpsc::channel::<gst::Buffer>();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let _ = tx.send(sample.buffer_owned().ok_or(gst::FlowError::Error)?);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let bus = pipeline.bus().expect("bus");
    pipeline
        .set_state(gst::State::Playing)
        .expect("pipeline plays");
    let types = [gst::MessageType::Eos, gst::MessageType::Error];
    let msg = bus.timed_pop_filtered(gst::ClockTime::from_seconds(60), &types);
    pipeline
        .set_state(gst::State::Null)
        .expect("pipeline stops");
    rx.try_iter().for_each(|b| on_buffer(&b));
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => None,
        Some(gst::MessageView::Error(e)) => Some(format!("{} ({:?})", e.error(), e.debug())),
        _ => Some("no EOS within 60 s".into()),
    }
}

/// Lesson-time span covered by `packets`: first arrival to last arrival + one frame.
pub fn pushed_duration(packets: &[RtpPacketIn], frame: Duration) -> Duration {
    packets.last().unwrap().arrival - packets[0].arrival + frame
}

/// The first H.264 SPS NAL unit found in RTP packets (single NAL or STAP-A).
pub fn sps_from_rtp(packets: &[RtpPacketIn]) -> Option<Vec<u8>> {
    packets.iter().find_map(|p| {
        let cc = usize::from(p.bytes[0] & 0x0f);
        let payload = &p.bytes[12 + 4 * cc..];
        match payload.first()? & 0x1f {
            7 => Some(payload.to_vec()),
            24 => stap_a_sps(&payload[1..]),
            _ => None,
        }
    })
}

fn stap_a_sps(mut rest: &[u8]) -> Option<Vec<u8>> {
    while rest.len() > 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let nal = rest.get(2..2 + len)?;
        if nal.first()? & 0x1f == 7 {
            return Some(nal.to_vec());
        }
        rest = &rest[2 + len..];
    }
    None
}

/// The first SPS in an `avcC` record (H.264 `codec_data` in MP4).
pub fn sps_from_avcc(avcc: &[u8]) -> Option<Vec<u8>> {
    let count = avcc.get(5)? & 0x1f;
    let len = usize::from(u16::from_be_bytes([*avcc.get(6)?, *avcc.get(7)?]));
    (count >= 1)
        .then(|| avcc.get(8..8 + len).map(<[u8]>::to_vec))
        .flatten()
}

/// What `Discoverer` (the library behind gst-discoverer-1.0) says about a file.
pub struct Discovered {
    pub caps: gst::Caps,
    pub duration: Duration,
}

pub fn discover(path: &Path) -> Discovered {
    let discoverer =
        gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(15)).expect("discoverer");
    let uri = gst::glib::filename_to_uri(path, None).expect("file uri");
    let info = discoverer.discover_uri(&uri).expect("file is discoverable");
    let stream = info.stream_list().into_iter().next().expect("one stream");
    let caps = stream.caps().expect("stream caps");
    let duration = Duration::from_nanos(info.duration().expect("a duration").nseconds());
    Discovered { caps, duration }
}

/// What a player gets out of a file: decoded units and the time span they cover.
#[derive(Debug)]
pub struct Decoded {
    pub frames: usize,
    pub first: Option<Duration>,
    pub last_end: Option<Duration>,
    pub error: Option<String>,
}

impl Decoded {
    pub fn span(&self) -> Duration {
        match (self.first, self.last_end) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        }
    }
}

/// Demuxes and decodes the file with GStreamer (as a player would), counting frames.
pub fn decode(path: &Path, codec: Codec) -> Decoded {
    let decoder = match codec {
        Codec::H264 => "h264parse ! avdec_h264",
        Codec::Vp8 => "vp8dec",
        Codec::Opus => "opusdec",
    };
    let desc = format!(
        "filesrc location={} ! qtdemux ! {decoder} ! appsink name=out sync=false",
        path.display()
    );
    let mut out = Decoded {
        frames: 0,
        first: None,
        last_end: None,
        error: None,
    };
    out.error = run_to_end(&desc, |b| {
        let Some(pts) = b.pts() else { return };
        let pts = Duration::from_nanos(pts.nseconds());
        let end = pts
            + b.duration()
                .map_or(Duration::ZERO, |d| Duration::from_nanos(d.nseconds()));
        out.frames += 1;
        out.first = Some(out.first.map_or(pts, |f| f.min(pts)));
        out.last_end = Some(out.last_end.map_or(end, |e| e.max(end)));
    });
    out
}

pub fn caps_name(caps: &gst::Caps) -> String {
    caps.structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default()
}

/// A small deterministic PRNG (xorshift64*): garbage without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// The same packet with another SSRC.
pub fn with_ssrc(p: &RtpPacketIn, ssrc: u32) -> RtpPacketIn {
    let mut bytes = p.bytes.to_vec();
    bytes[8..12].copy_from_slice(&ssrc.to_be_bytes());
    RtpPacketIn {
        bytes: Arc::from(bytes),
        arrival: p.arrival,
    }
}

/// Records `packets` into `<scratch(name)>/main.camera.part1.mp4` and finishes the file.
pub fn record(name: &str, codec: Codec, packets: &[RtpPacketIn]) -> (PathBuf, TrackSummary) {
    let path = scratch(name).join("main.camera.part1.mp4");
    let recorder = TrackRecorder::start(spec(path.clone(), codec), 4096).expect("recorder starts");
    let sender = recorder.sender();
    for p in packets {
        sender
            .try_push(p.clone())
            .expect("queue deep enough for the whole test");
    }
    let summary = recorder.finish().expect("finish completes the file");
    (path, summary)
}

/// Fragments follow the init and each other without gaps, up to `end`.
pub fn assert_tiles(index: &Fmp4Index, end: u64) {
    let mut offset = index.init.len;
    for f in &index.fragments {
        assert_eq!(
            f.offset, offset,
            "fragments are contiguous: {:?}",
            index.fragments
        );
        offset = f.end();
    }
    assert_eq!(offset, end, "the fragments reach the end of the file");
}
