//! One output branch of an ingest pipeline: a parsed elementary stream in, RTP
//! packets out through an appsink callback.
//!
//! Invariant: the passthrough branch contains no decoder and no encoder; each
//! branch starts with a queue so a slow transcode never stalls the source.

use std::sync::Arc;

use gst::prelude::*;

use crate::route::{MediaPath, StreamKind};
use crate::{AUDIO_PT, MTU, PipelineError, VIDEO_PT};

/// What a branch hands out; `Fn` so it can be called from any streaming thread.
pub type Sink = Arc<dyn Fn(StreamKind, Vec<u8>) + Send + Sync>;

/// Encoder settings of the transcode path: constrained baseline (every browser
/// decodes it), a keyframe at least every 2 s so late joiners start quickly.
const H264_ENCODE: &str = "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=2000 ! video/x-h264,profile=constrained-baseline";

/// The launch description of a branch (without its appsink): what follows the
/// decoder when `decode` says there is one, else the whole branch.
pub fn description(kind: StreamKind, path: MediaPath) -> (bool, String) {
    let h264_out = format!("h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! rtph264pay pt={VIDEO_PT} mtu={MTU} aggregate-mode=zero-latency");
    match (kind, path) {
        (StreamKind::Video, MediaPath::Passthrough) => (false, format!("queue max-size-time=2000000000 ! {h264_out}")),
        (StreamKind::Video, MediaPath::Transcode) => (true, format!("{H264_ENCODE} ! {h264_out}")),
        (StreamKind::Audio, _) => (true, format!("audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=64000 ! rtpopuspay pt={AUDIO_PT} mtu={MTU}")),
    }
}

/// Builds the branch as a bin with a ghost sink pad; its packets go to `sink`.
/// A decoding branch is `queue ! decodebin` linked to the rest once decodebin
/// finds the stream (parse-launch's delayed link would let caps queries through
/// decodebin and refuse the compressed input).
pub fn build(kind: StreamKind, path: MediaPath, sink: Sink) -> Result<gst::Bin, PipelineError> {
    let (decode, rest) = description(kind, path);
    let tail = gst::parse::bin_from_description(&format!("{rest} ! appsink name=out sync=false"), true).map_err(|e| PipelineError::Build(e.to_string()))?;
    let out = tail.by_name("out").and_then(|e| e.downcast::<gst_app::AppSink>().ok());
    let out = out.ok_or_else(|| PipelineError::Build("the branch has no appsink".into()))?;
    out.set_callbacks(gst_app::AppSinkCallbacks::builder().new_sample(move |s| forward(s, kind, &sink)).build());
    if !decode {
        return Ok(tail);
    }
    with_decoder(tail)
}

fn with_decoder(tail: gst::Bin) -> Result<gst::Bin, PipelineError> {
    let bin = gst::Bin::new();
    let queue = make("queue")?;
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
    sink(kind, map.as_slice().to_vec());
    Ok(gst::FlowSuccess::Ok)
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
            build(k, p, Arc::new(|_, _| {})).unwrap();
        }
    }
}
