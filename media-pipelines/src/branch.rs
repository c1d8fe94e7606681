//! One output branch of an ingest pipeline: a parsed elementary stream in, RTP
//! packets out through an appsink callback.
//!
//! Invariant: the passthrough branch contains no decoder and no encoder; each
//! branch starts with a queue so a slow transcode never stalls the source.

use std::sync::Arc;

use gst::prelude::*;

use crate::route::{MediaPath, StreamKind};
use crate::{AUDIO_PT, MTU, PipelineError, VIDEO_PT};

/// What a branch hands out: an RTP packet, or `Err(reason)` for a buffer it dropped.
/// `Fn` so it can be called from any streaming thread.
pub type Sink = Arc<dyn Fn(StreamKind, Result<Vec<u8>, &'static str>) + Send + Sync>;

/// Why the passthrough branch drops an access unit: without a timestamp (a camera that
/// sends its SPS/PPS as an access unit of their own) it would reach receivers as an
/// extra "keyframe" with a made-up time; the parser repeats SPS/PPS before every IDR anyway.
pub const UNTIMED: &str = "untimed access unit";

/// Encoder settings of the transcode path: constrained baseline (every browser
/// decodes it), a keyframe at least every 2 s so late joiners start quickly.
const H264_ENCODE: &str = "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=2000 ! video/x-h264,profile=constrained-baseline";

/// Name of the appsink of the video transcode branch (unique in a pipeline: one video branch).
pub const VIDEO_TRANSCODE_SINK: &str = "video-transcode-out";

/// The launch description of a branch (without its appsink): what follows the
/// decoder when `decode` says there is one, else the whole branch.
pub fn description(kind: StreamKind, path: MediaPath) -> (bool, String) {
    let h264_out = format!("h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! rtph264pay pt={VIDEO_PT} mtu={MTU} aggregate-mode=zero-latency");
    match (kind, path) {
        (StreamKind::Video, MediaPath::Passthrough) => (false, format!("queue name=q max-size-time=2000000000 ! {h264_out}")),
        (StreamKind::Video, MediaPath::Transcode) => (true, format!("{H264_ENCODE} ! {h264_out}")),
        (StreamKind::Audio, _) => (true, format!("audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=64000 ! rtpopuspay pt={AUDIO_PT} mtu={MTU}")),
    }
}

/// Builds the branch as a bin with a ghost sink pad; its packets go to `sink`.
/// A decoding branch is `queue ! decodebin` linked to the rest once decodebin
/// finds the stream (parse-launch's delayed link would let caps queries through
/// decodebin and refuse the compressed input).
/// `prefix` (depayloader and parser) goes first when the input is not parsed yet; only
/// for branches without a decoder.
pub fn build(kind: StreamKind, path: MediaPath, prefix: Option<&str>, sink: Sink) -> Result<gst::Bin, PipelineError> {
    let (decode, rest) = description(kind, path);
    if decode && prefix.is_some() {
        return Err(PipelineError::Build("a decoding branch takes parsed input only".into()));
    }
    let rest = prefix.map_or(rest.clone(), |p| format!("{p} ! {rest}"));
    let name = if (kind, path) == (StreamKind::Video, MediaPath::Transcode) { VIDEO_TRANSCODE_SINK } else { "out" };
    let tail = gst::parse::bin_from_description(&format!("{rest} ! appsink name={name} sync=false"), true).map_err(|e| PipelineError::Build(e.to_string()))?;
    let out = tail.by_name(name).and_then(|e| e.downcast::<gst_app::AppSink>().ok());
    let out = out.ok_or_else(|| PipelineError::Build("the branch has no appsink".into()))?;
    let s2 = sink.clone();
    out.set_callbacks(gst_app::AppSinkCallbacks::builder().new_sample(move |s| forward(s, kind, &s2)).build());
    if !decode {
        drop_untimed(&tail, kind, sink);
        return Ok(tail);
    }
    let bin = with_decoder(tail)?;
    if kind == StreamKind::Video {
        drop_untimed(&bin, kind, sink);
    }
    Ok(bin)
}

fn with_decoder(tail: gst::Bin) -> Result<gst::Bin, PipelineError> {
    let bin = gst::Bin::new();
    let queue = gst::ElementFactory::make("queue").name("q").build().map_err(|e| PipelineError::Build(format!("queue: {e}")))?;
    queue.set_property("max-size-time", 2_000_000_000u64);
    let dec = make("decodebin")?;
    bin.add_many([&queue, &dec, tail.upcast_ref()]).map_err(|e| PipelineError::Build(e.to_string()))?;
    queue.link(&dec).map_err(|e| PipelineError::Build(e.to_string()))?;
    let weak = tail.downgrade();
    dec.connect_pad_added(move |_, pad| {
        let sink = weak.upgrade().and_then(|t| t.static_pad("sink"));
        if let Some(sink) = sink.filter(|s| !s.is_linked()) {
            let _ = pad.link(&sink);
        }
    });
    let target = queue.static_pad("sink").ok_or_else(|| PipelineError::Build("queue has no sink pad".into()))?;
    let ghost = gst::GhostPad::builder_with_target(&target).map_err(|e| PipelineError::Build(e.to_string()))?.name("sink").build();
    bin.add_pad(&ghost).map_err(|e| PipelineError::Build(e.to_string()))?;
    Ok(bin)
}

fn make(factory: &str) -> Result<gst::Element, PipelineError> {
    gst::ElementFactory::make(factory).build().map_err(|e| PipelineError::Build(format!("{factory}: {e}")))
}

fn forward(s: &gst_app::AppSink, kind: StreamKind, sink: &Sink) -> Result<gst::FlowSuccess, gst::FlowError> {
    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
    let Some(buf) = sample.buffer() else { return Ok(gst::FlowSuccess::Ok) };
    let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
    sink(kind, Ok(map.as_slice().to_vec()));
    Ok(gst::FlowSuccess::Ok)
}

/// Video: drop (and report) access units without a timestamp before the repacketizer or decoder.
fn drop_untimed(bin: &gst::Bin, kind: StreamKind, sink: Sink) {
    let Some(pad) = bin.by_name("q").and_then(|q| q.static_pad("sink")) else { return };
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if info.buffer().is_none_or(|b| b.pts().is_some()) {
            return gst::PadProbeReturn::Ok;
        }
        // Handled with the buffer taken: this probe owns it (and frees it here).
        drop(info.data.take());
        sink(kind, Err(UNTIMED));
        gst::PadProbeReturn::Handled
    });
}

/// A sink for streams nobody wants (a second video, data tracks).
pub fn discard() -> Result<gst::Element, PipelineError> {
    gst::ElementFactory::make("fakesink").property("sync", false).build().map_err(|e| PipelineError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_has_no_codec() {
        let (decode, d) = description(StreamKind::Video, MediaPath::Passthrough);
        assert!(!decode);
        assert!(!d.contains("decodebin") && !d.contains("x264enc") && !d.contains("opusenc"), "{d}");
        assert!(d.contains("config-interval=-1"));
        assert!(description(StreamKind::Video, MediaPath::Transcode).1.contains("x264enc"));
        assert!(description(StreamKind::Audio, MediaPath::Transcode).1.contains("opusenc"));
    }

    #[test]
    fn every_branch_builds() {
        crate::init().unwrap();
        for (k, p) in [(StreamKind::Video, MediaPath::Passthrough), (StreamKind::Video, MediaPath::Transcode), (StreamKind::Audio, MediaPath::Transcode)] {
            build(k, p, None, Arc::new(|_, _| {})).unwrap();
        }
    }
}
