//! An ingest pipeline: a source, a `parsebin` per source pad (depayloads, demuxes,
//! parses), then one branch per elementary stream chosen by [`crate::route::route`].
//!
//! Invariants:
//! - Every outcome reaches the owner as an [`IngestEvent`] through one callback:
//!   packets, the path each stream took, errors and end of stream.
//! - Dropping the [`Ingest`] stops the pipeline (state Null) and joins its bus
//!   thread; no GStreamer thread outlives it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gst::prelude::*;

use crate::branch;
use crate::route::{MediaPath, StreamKind, route};
use crate::PipelineError;

/// RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// Where the media comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// Pull from an RTSP server; credentials may be in the URL (`rtsp://user:pw@host/path`).
    Rtsp { url: String, transport: Transport },
    /// SRT, `srt://host:port?mode=listener` or `?mode=caller` (MPEG-TS inside).
    Srt { uri: String },
    /// FLV bytes pushed by the owner with [`Ingest::push_flv`] (an RTMP publish).
    Flv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestEvent {
    /// One RTP packet (payload type [`crate::VIDEO_PT`] or [`crate::AUDIO_PT`]).
    Rtp { kind: StreamKind, packet: Vec<u8> },
    /// A stream was found and routed; `detail` describes what came in (codec, profile, size).
    Routed { kind: StreamKind, path: MediaPath, detail: String },
    /// A stream was discarded (an extra stream or not audio/video).
    Ignored { caps: String },
    /// A buffer was dropped on purpose (see [`crate::branch::UNTIMED`]).
    Dropped { kind: StreamKind, reason: &'static str },
    Error(String),
    Eos,
}

pub type Callback = Arc<dyn Fn(IngestEvent) + Send + Sync>;

pub struct Ingest {
    pipeline: gst::Pipeline,
    appsrc: Option<gst_app::AppSrc>,
    stop: Arc<AtomicBool>,
    bus: Option<JoinHandle<()>>,
}

impl Ingest {
    /// Builds the pipeline for `spec` and sets it playing.
    pub fn start(spec: &SourceSpec, cb: Callback) -> Result<Ingest, PipelineError> {
        crate::init()?;
        let pipeline = gst::Pipeline::new();
        let taken = Arc::new(Mutex::new((false, false)));
        let appsrc = add_source(&pipeline, spec, &cb, &taken)?;
        let stop = Arc::new(AtomicBool::new(false));
        let bus = watch_bus(&pipeline, stop.clone(), cb.clone())?;
        let ingest = Ingest { pipeline, appsrc, stop, bus: Some(bus) };
        ingest.pipeline.set_state(gst::State::Playing).map_err(|e| PipelineError::Start(e.to_string()))?;
        Ok(ingest)
    }

    /// Feeds FLV bytes (header or tags) into an [`SourceSpec::Flv`] pipeline; false
    /// when this pipeline has no FLV input or no longer accepts data.
    pub fn push_flv(&self, bytes: Vec<u8>) -> bool {
        let Some(src) = &self.appsrc else { return false };
        src.push_buffer(gst::Buffer::from_mut_slice(bytes)).is_ok()
    }

    /// Asks the video encoder of a transcoding pipeline for a keyframe (an upstream
    /// `GstForceKeyUnit` from the video appsink; x264enc answers it). Passthrough video
    /// is not asked: its keyframes are the source's own.
    pub fn request_keyframe(&self) {
        let Some(sink) = self.pipeline.by_name(crate::branch::VIDEO_TRANSCODE_SINK) else { return };
        let s = gst::Structure::builder("GstForceKeyUnit").field("all-headers", true).build();
        sink.send_event(gst::event::CustomUpstream::new(s));
    }

    /// Ends an FLV input (the RTMP publisher stopped).
    pub fn end_flv(&self) {
        if let Some(src) = &self.appsrc {
            let _ = src.end_of_stream();
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(t) = self.bus.take() {
            let _ = t.join();
        }
    }
}

type Taken = Arc<Mutex<(bool, bool)>>;

fn make(factory: &str) -> Result<gst::Element, PipelineError> {
    gst::ElementFactory::make(factory).build().map_err(|e| PipelineError::Build(format!("{factory}: {e}")))
}

fn add_source(pipeline: &gst::Pipeline, spec: &SourceSpec, cb: &Callback, taken: &Taken) -> Result<Option<gst_app::AppSrc>, PipelineError> {
    match spec {
        SourceSpec::Rtsp { url, transport } => {
            let src = make("rtspsrc")?;
            src.set_property("location", url);
            src.set_property("latency", 200u32);
            src.set_property_from_str("protocols", if *transport == Transport::Tcp { "tcp" } else { "udp" });
            // Without data for 5 s (UDP) the source reports an error and the owner reconnects.
            src.set_property("timeout", 5_000_000u64);
            pipeline.add(&src).map_err(|e| PipelineError::Build(e.to_string()))?;
            let (p, cb, taken) = (pipeline.downgrade(), cb.clone(), taken.clone());
            src.connect_pad_added(move |_, pad| {
                if let Some(p) = p.upgrade() {
                    attach_rtp(&p, pad, &cb, &taken);
                }
            });
            Ok(None)
        }
        SourceSpec::Srt { uri } => {
            let src = make("srtsrc")?;
            src.set_property("uri", uri);
            link_static(pipeline, &src, cb, taken)?;
            Ok(None)
        }
        SourceSpec::Flv => {
            let caps = gst::Caps::builder("video/x-flv").build();
            let src = gst_app::AppSrc::builder().caps(&caps).is_live(true).format(gst::Format::Time).do_timestamp(true).build();
            src.set_property("max-bytes", 8u64 << 20);
            link_static(pipeline, src.upcast_ref(), cb, taken)?;
            Ok(Some(src))
        }
    }
}

/// A source with an always pad: source ! parsebin.
fn link_static(pipeline: &gst::Pipeline, src: &gst::Element, cb: &Callback, taken: &Taken) -> Result<(), PipelineError> {
    pipeline.add(src).map_err(|e| PipelineError::Build(e.to_string()))?;
    let pad = src.static_pad("src").ok_or_else(|| PipelineError::Build("the source has no src pad".into()))?;
    attach_parsebin(pipeline, &pad, cb, taken);
    Ok(())
}

/// An RTSP stream: H.264 that passes through (judged from the SDP's profile-level-id) is
/// depayloaded directly; anything else goes through `parsebin`. (With `parsebin` in front,
/// a camera served by gst-rtsp-server was seen sending twice its configured keyframes.)
fn attach_rtp(pipeline: &gst::Pipeline, pad: &gst::Pad, cb: &Callback, taken: &Taken) {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let h264 = caps.structure(0).filter(|s| s.get::<&str>("encoding-name").ok() == Some("H264"));
    let profile = h264.map(|s| s.get::<&str>("profile-level-id").ok().and_then(crate::route::h264_profile));
    let passthrough = profile.is_some_and(|p| route("video/x-h264", p, None, None) == Some((StreamKind::Video, MediaPath::Passthrough)));
    if !passthrough || !claim(taken, StreamKind::Video) {
        return attach_parsebin(pipeline, pad, cb, taken);
    }
    let detail = format!("video/x-h264 (rtsp) profile={}", profile.flatten().unwrap_or("unknown"));
    let result = link_branch(pipeline, pad, StreamKind::Video, MediaPath::Passthrough, Some("rtph264depay ! h264parse config-interval=-1"), cb);
    cb(match result {
        Ok(()) => IngestEvent::Routed { kind: StreamKind::Video, path: MediaPath::Passthrough, detail },
        Err(e) => IngestEvent::Error(e.to_string()),
    });
}

fn attach_parsebin(pipeline: &gst::Pipeline, pad: &gst::Pad, cb: &Callback, taken: &Taken) {
    let result = make("parsebin").and_then(|pb| {
        pipeline.add(&pb).map_err(|e| PipelineError::Build(e.to_string()))?;
        let (p, cb2, taken) = (pipeline.downgrade(), cb.clone(), taken.clone());
        pb.connect_pad_added(move |_, pad| {
            if let Some(p) = p.upgrade() {
                on_stream(&p, pad, &cb2, &taken);
            }
        });
        let _ = pb.sync_state_with_parent();
        let sink = pb.static_pad("sink").ok_or_else(|| PipelineError::Build("parsebin has no sink pad".into()))?;
        pad.link(&sink).map(|_| ()).map_err(|e| PipelineError::Build(format!("linking the source: {e:?}")))
    });
    if let Err(e) = result {
        cb(IngestEvent::Error(e.to_string()));
    }
}

/// A parsed elementary stream appeared: route it to a branch (or discard it).
fn on_stream(pipeline: &gst::Pipeline, pad: &gst::Pad, cb: &Callback, taken: &Taken) {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let Some(s) = caps.structure(0) else { return };
    let (name, profile, chroma) = (s.name().as_str(), s.get::<&str>("profile").ok(), s.get::<&str>("chroma-format").ok());
    let depth = s.get::<u32>("bit-depth-luma").ok();
    let routed = route(name, profile, chroma, depth).filter(|(kind, _)| claim(taken, *kind));
    let result = match routed {
        Some((kind, path)) => link_branch(pipeline, pad, kind, path, None, cb).map(|()| describe(kind, path, s)),
        None => link_discard(pipeline, pad).map(|()| IngestEvent::Ignored { caps: name.to_string() }),
    };
    cb(result.unwrap_or_else(|e| IngestEvent::Error(e.to_string())));
}

fn claim(taken: &Taken, kind: StreamKind) -> bool {
    let mut t = taken.lock().unwrap_or_else(|e| e.into_inner());
    let slot = if kind == StreamKind::Video { &mut t.0 } else { &mut t.1 };
    !std::mem::replace(slot, true)
}

fn describe(kind: StreamKind, path: MediaPath, s: &gst::StructureRef) -> IngestEvent {
    let mut detail = s.name().to_string();
    for field in ["profile", "width", "height", "rate", "channels"] {
        if let Ok(v) = s.value(field) {
            if let Ok(text) = v.serialize() {
                detail.push_str(&format!(" {field}={text}"));
            }
        }
    }
    IngestEvent::Routed { kind, path, detail }
}

fn link_branch(pipeline: &gst::Pipeline, pad: &gst::Pad, kind: StreamKind, path: MediaPath, prefix: Option<&str>, cb: &Callback) -> Result<(), PipelineError> {
    let cb = cb.clone();
    let bin = branch::build(kind, path, prefix, Arc::new(move |kind, out| match out {
        Ok(packet) => cb(IngestEvent::Rtp { kind, packet }),
        Err(reason) => cb(IngestEvent::Dropped { kind, reason }),
    }))?;
    add_and_link(pipeline, pad, bin.upcast_ref())
}

fn link_discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), PipelineError> {
    add_and_link(pipeline, pad, &branch::discard()?)
}

fn add_and_link(pipeline: &gst::Pipeline, pad: &gst::Pad, e: &gst::Element) -> Result<(), PipelineError> {
    pipeline.add(e).map_err(|e| PipelineError::Build(e.to_string()))?;
    e.sync_state_with_parent().map_err(|e| PipelineError::Start(e.to_string()))?;
    let sink = e.static_pad("sink").ok_or_else(|| PipelineError::Build("the branch has no sink pad".into()))?;
    pad.link(&sink).map(|_| ()).map_err(|e| PipelineError::Build(format!("linking a branch: {e:?}")))
}

/// Error and EOS messages go to the callback from a thread of our own.
fn watch_bus(pipeline: &gst::Pipeline, stop: Arc<AtomicBool>, cb: Callback) -> Result<JoinHandle<()>, PipelineError> {
    let bus = pipeline.bus().ok_or_else(|| PipelineError::Build("the pipeline has no bus".into()))?;
    let spawn = std::thread::Builder::new().name("ingest-bus".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else { continue };
            match msg.view() {
                gst::MessageView::Error(e) => cb(IngestEvent::Error(error_text(e))),
                gst::MessageView::Eos(_) => cb(IngestEvent::Eos),
                _ => {}
            }
        }
    });
    spawn.map_err(|e| PipelineError::Start(e.to_string()))
}

/// The error's message and, when there is one, the first line of its debug text.
fn error_text(e: &gst::message::Error) -> String {
    let src = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    let debug = e.debug().map(|d| d.lines().last().unwrap_or_default().to_string()).unwrap_or_default();
    format!("{src}: {} ({debug})", e.error())
}
