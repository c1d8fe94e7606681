//! Builds the GStreamer pipeline of one track:
//!
//! ```text
//! appsrc (application/x-rtp, live, time) ! rtpjitterbuffer ! <depayloader> [! <parsers>]
//!   ! isofmp4mux (chunks of FRAGMENT) ! filesink (unbuffered)
//! H.264: rtph264depay ! h264parse ! h264timestamper ! h264parse config-interval=-1
//!        ! video/x-h264,avc3,au
//! VP8:   rtpvp8depay          Opus: rtpopusdepay ! opusparse
//! ```
//!
//! Invariants:
//! - No encoder or decoder is ever linked: the file holds the publisher's own bitstream.
//! - H.264 is written as `avc3`, with SPS/PPS in front of every keyframe: WebRTC senders
//!   change resolution mid-stream (the encoder follows the bandwidth estimate), and with
//!   `avc1` the new parameter sets would be lost (only the init segment's would remain),
//!   leaving every later frame undecodable.
//! - The pipeline's clock is an [`ArrivalClock`] that only the feeder thread moves, to the
//!   arrival time of each packet; base time 0, so running time == lesson time == arrival.
//!   rtpjitterbuffer's timers therefore run on arrival time: deterministic, and the same
//!   whether packets come in real time or, in tests, as fast as possible.
//! - Every bus message is consumed by the sync handler (nothing accumulates on the bus);
//!   errors become faults in [`Shared`], never panics.
//! - filesink writes each chunk with one `writev` as soon as the muxer emits it
//!   (`buffer-mode=unbuffered`): after a crash the file ends at a chunk boundary or inside
//!   the chunk being written, which demuxers skip.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

use crate::clock::ArrivalClock;
use crate::error::RecorderError;
use crate::state::Shared;
use crate::track::{Codec, FRAGMENT, JITTER_LATENCY, TrackSpec};

/// Upper bound of what appsrc holds before the feeder thread blocks (then the bounded
/// packet queue fills and senders see `Full`).
const APPSRC_MAX_BYTES: u64 = 4 << 20;
/// isofmp4mux fragments (moof + mdat starting with a keyframe) are cut at keyframes at
/// most this often; chunks (moof + mdat, any frame) every [`FRAGMENT`] regardless.
const KEYFRAME_FRAGMENT: Duration = Duration::from_secs(10);

pub(crate) struct Parts {
    pub pipeline: gst::Pipeline,
    pub appsrc: gst_app::AppSrc,
    pub clock: ArrivalClock,
}

/// Builds (but does not start) the pipeline for `spec`, wired to `shared`.
pub(crate) fn build(spec: &TrackSpec, shared: &Arc<Shared>) -> Result<Parts, RecorderError> {
    let appsrc = appsrc(spec);
    let mut chain: Vec<gst::Element> = vec![appsrc.clone().upcast(), jitterbuffer()?];
    chain.extend(depayload_chain(spec.codec)?);
    chain.push(muxer()?);
    chain.push(filesink(spec)?);

    let pipeline = gst::Pipeline::new();
    pipeline.add_many(&chain).map_err(pipeline_error)?;
    gst::Element::link_many(&chain).map_err(pipeline_error)?;

    let clock = ArrivalClock::new();
    pipeline.use_clock(Some(&clock));
    pipeline.set_start_time(gst::ClockTime::NONE);
    pipeline.set_base_time(gst::ClockTime::ZERO);

    watch_bus(&pipeline, shared);
    watch_keyframe_requests(&appsrc, shared);
    let sink = chain.last().and_then(|s| s.static_pad("sink"));
    watch_written(
        &sink.ok_or_else(|| pipeline_error("filesink has no sink pad"))?,
        shared,
    );
    Ok(Parts {
        pipeline,
        appsrc,
        clock,
    })
}

fn pipeline_error(e: impl std::fmt::Display) -> RecorderError {
    RecorderError::Pipeline(e.to_string())
}

fn make(factory: &'static str) -> Result<gst::Element, RecorderError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| RecorderError::MissingElement(factory))
}

fn rtp_caps(spec: &TrackSpec) -> gst::Caps {
    gst::Caps::builder("application/x-rtp")
        .field("media", spec.codec.media())
        .field("encoding-name", spec.codec.encoding_name())
        .field("clock-rate", spec.clock_rate as i32)
        .field("payload", i32::from(spec.payload_type))
        .build()
}

fn appsrc(spec: &TrackSpec) -> gst_app::AppSrc {
    gst_app::AppSrc::builder()
        .caps(&rtp_caps(spec))
        .format(gst::Format::Time)
        .is_live(true)
        .do_timestamp(false)
        .block(true)
        .max_bytes(APPSRC_MAX_BYTES)
        .build()
}

fn jitterbuffer() -> Result<gst::Element, RecorderError> {
    let jb = make("rtpjitterbuffer")?;
    jb.set_property("latency", JITTER_LATENCY.as_millis() as u32);
    Ok(jb)
}

/// Depayloader and, for H.264, the parsers that give isofmp4mux `avc` access units with DTS.
fn depayload_chain(codec: Codec) -> Result<Vec<gst::Element>, RecorderError> {
    match codec {
        Codec::H264 => {
            let depay = make("rtph264depay")?;
            depay.set_property("request-keyframe", true);
            let caps = gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc3")
                .field("alignment", "au")
                .build();
            let filter = make("capsfilter")?;
            filter.set_property("caps", &caps);
            let in_band = make("h264parse")?;
            in_band.set_property("config-interval", -1i32);
            Ok(vec![
                depay,
                make("h264parse")?,
                make("h264timestamper")?,
                in_band,
                filter,
            ])
        }
        Codec::Vp8 => {
            let depay = make("rtpvp8depay")?;
            depay.set_property("request-keyframe", true);
            Ok(vec![depay])
        }
        // rtpopusdepay's caps lack `rate`, which isofmp4mux requires; opusparse adds it.
        Codec::Opus => Ok(vec![make("rtpopusdepay")?, make("opusparse")?]),
    }
}

fn muxer() -> Result<gst::Element, RecorderError> {
    let mux = make("isofmp4mux")?;
    mux.set_property("fragment-duration", KEYFRAME_FRAGMENT.as_nanos() as u64);
    mux.set_property("chunk-duration", FRAGMENT.as_nanos() as u64);
    // The SFU decides when to ask the publisher for keyframes (TrackEvent::KeyframeWanted).
    mux.set_property("send-force-keyunit", false);
    // On a clean finish, rewrite the header with the duration (mehd) for players.
    mux.set_property_from_str("header-update-mode", "rewrite");
    mux.set_property("write-mehd", true);
    Ok(mux)
}

fn filesink(spec: &TrackSpec) -> Result<gst::Element, RecorderError> {
    let location = spec.path.to_str().ok_or_else(|| {
        RecorderError::InvalidSpec(format!("path is not UTF-8: {}", spec.path.display()))
    })?;
    let sink = make("filesink")?;
    sink.set_property("location", location);
    sink.set_property_from_str("buffer-mode", "unbuffered");
    sink.set_property("sync", false);
    sink.set_property("async", false);
    Ok(sink)
}

/// Consumes every bus message on the posting thread: errors → faults, EOS → end.
fn watch_bus(pipeline: &gst::Pipeline, shared: &Arc<Shared>) {
    let Some(bus) = pipeline.bus() else { return };
    let shared = Arc::clone(shared);
    bus.set_sync_handler(move |_, msg| {
        match msg.view() {
            gst::MessageView::Eos(_) => shared.record_eos(),
            gst::MessageView::Error(e) => {
                let src = e.src().map(|s| s.path_string()).unwrap_or_default();
                shared.record_fault(format!("{src}: {} ({:?})", e.error(), e.debug()));
            }
            _ => {}
        }
        gst::BusSyncReply::Drop
    });
}

/// Upstream force-key-unit events (from the depayloaders after packet loss) reach appsrc,
/// which cannot act on them: surface them to the SFU instead.
fn watch_keyframe_requests(appsrc: &gst_app::AppSrc, shared: &Arc<Shared>) {
    let Some(pad) = appsrc.static_pad("src") else {
        return;
    };
    let shared = Arc::clone(shared);
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let is_fku = info
            .event()
            .and_then(|e| e.structure())
            .is_some_and(|s| s.name() == "GstForceKeyUnit");
        if is_fku {
            shared.keyframe_wanted();
        }
        gst::PadProbeReturn::Ok
    });
}

/// Counts what is in the file: bytes and the media span of each chunk (its header buffer
/// carries the chunk's PTS and duration, in the muxer's output segment, which starts at
/// 1000 h; converted here to running time = lesson time).
///
/// A probe runs *before* filesink writes, so a chunk is only counted once the next data or
/// EOS reaches the pad: the streaming thread is serial, so by then the previous write has
/// returned. `written_until` therefore never claims media that a crash could still lose.
fn watch_written(sinkpad: &gst::Pad, shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let pending: Mutex<Option<Written>> = Mutex::new(None);
    let types = gst::PadProbeType::BUFFER
        | gst::PadProbeType::BUFFER_LIST
        | gst::PadProbeType::EVENT_DOWNSTREAM;
    sinkpad.add_probe(types, move |pad, info| {
        let next = match &info.data {
            Some(gst::PadProbeData::Buffer(b)) => Some(measure(pad, std::iter::once(b.as_ref()))),
            Some(gst::PadProbeData::BufferList(l)) => Some(measure(pad, l.iter())),
            Some(gst::PadProbeData::Event(e)) if e.type_() == gst::EventType::Eos => None,
            _ => return gst::PadProbeReturn::Ok,
        };
        let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = std::mem::replace(&mut *pending, next) {
            shared.record_written(done.bytes, done.media);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Bytes of one push to the file and the media span it carries (none for a header).
struct Written {
    bytes: u64,
    media: Option<(Duration, Duration)>,
}

fn measure<'a>(pad: &gst::Pad, buffers: impl Iterator<Item = &'a gst::BufferRef>) -> Written {
    let segment = pad.sticky_event::<gst::event::Segment>(0);
    let segment = segment
        .as_ref()
        .and_then(|e| e.segment().downcast_ref::<gst::ClockTime>().cloned());
    let to_lesson_time = |pts| segment.as_ref().and_then(|s| s.to_running_time(pts));
    let mut written = Written {
        bytes: 0,
        media: None,
    };
    for b in buffers {
        written.bytes += b.size() as u64;
        if !b.flags().contains(gst::BufferFlags::HEADER) {
            continue;
        }
        if let (Some(start), Some(d)) = (b.pts().and_then(to_lesson_time), b.duration()) {
            let start = Duration::from_nanos(start.nseconds());
            written.media = Some((start, start + Duration::from_nanos(d.nseconds())));
        }
    }
    written
}
