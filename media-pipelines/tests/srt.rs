//! Real pipelines end to end: a `gst-launch-1.0` encoder pushes MPEG-TS over SRT
//! on 127.0.0.1 to an [`Ingest`] listening; H.264 must pass through, H.265 must be
//! transcoded, AAC must become Opus, and RTP packets must come out.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use classcast_media_pipelines::{AUDIO_PT, Ingest, IngestEvent, MediaPath, SourceSpec, StreamKind, VIDEO_PT};

struct Encoder(Child);

impl Drop for Encoder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn push(port: u16, video: &str) -> Encoder {
    let launch = format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1,format=I420 ! {video} ! mpegtsmux name=m alignment=7 ! srtsink uri=srt://127.0.0.1:{port}?mode=caller \
         audiotestsrc is-live=true ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! m."
    );
    let child = Command::new("gst-launch-1.0").args(["-q"]).args(launch.split_whitespace()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    Encoder(child.expect("gst-launch-1.0 is installed (scripts/install-deps.sh)"))
}

fn ingest(port: u16, video: &str) -> Vec<IngestEvent> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let spec = SourceSpec::Srt { uri: format!("srt://127.0.0.1:{port}?mode=listener") };
    let ingest = Ingest::start(&spec, Arc::new(move |e| sink.lock().unwrap().push(e))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let encoder = push(port, video);
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end && rtp_count(&events.lock().unwrap(), VIDEO_PT) < 100 {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(encoder);
    drop(ingest);
    Arc::try_unwrap(events).map(|m| m.into_inner().unwrap()).unwrap_or_default()
}

fn rtp_count(events: &[IngestEvent], pt: u8) -> usize {
    events.iter().filter(|e| matches!(e, IngestEvent::Rtp { packet, .. } if packet.len() > 12 && packet[1] & 0x7f == pt)).count()
}

fn path_of(events: &[IngestEvent], kind: StreamKind) -> Option<MediaPath> {
    events.iter().find_map(|e| match e {
        IngestEvent::Routed { kind: k, path, .. } if *k == kind => Some(*path),
        _ => None,
    })
}

#[test]
fn h264_passes_through_and_aac_becomes_opus() {
    let ev = ingest(17101, "x264enc tune=zerolatency key-int-max=30 ! video/x-h264,profile=constrained-baseline ! h264parse");
    assert_eq!(path_of(&ev, StreamKind::Video), Some(MediaPath::Passthrough), "{:?}", &ev.iter().filter(|e| !matches!(e, IngestEvent::Rtp { .. })).collect::<Vec<_>>());
    assert_eq!(path_of(&ev, StreamKind::Audio), Some(MediaPath::Transcode), "{:?}", &ev.iter().filter(|e| !matches!(e, IngestEvent::Rtp { .. })).collect::<Vec<_>>());
    assert!(rtp_count(&ev, VIDEO_PT) >= 100);
    assert!(rtp_count(&ev, AUDIO_PT) > 0);
}

#[test]
fn h265_is_transcoded() {
    let ev = ingest(17102, "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h265parse");
    assert_eq!(path_of(&ev, StreamKind::Video), Some(MediaPath::Transcode), "{:?}", &ev.iter().filter(|e| !matches!(e, IngestEvent::Rtp { .. })).collect::<Vec<_>>());
    assert!(rtp_count(&ev, VIDEO_PT) >= 100);
}
