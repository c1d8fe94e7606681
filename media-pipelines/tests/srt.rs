//! Real pipelines end to end: a `gst-launch-1.0` encoder pushes MPEG-TS over SRT
//! on 127.0.0.1 to an [`Ingest`] listening; H.264 must pass through, H.265 must be
//! transcoded, AAC must become Opus, and RTP packets must come out.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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
    ingest_with(port, video, |_| {})
}

/// Runs an ingest until 100 video packets came out (or 20 s); `during` is called once
/// with the ingest after the first 100 packets, then another 100 are awaited.
fn ingest_with(port: u16, video: &str, during: impl Fn(&Ingest)) -> Vec<IngestEvent> {
    let events = Arc::new(Events::default());
    let sink = events.clone();
    let spec = SourceSpec::Srt { uri: format!("srt://127.0.0.1:{port}?mode=listener") };
    let ingest = Ingest::start(&spec, Arc::new(move |e| sink.push(e))).unwrap();
    assert!(udp_bound(port), "the SRT listener is bound when Ingest::start returns (srtsrc binds in its start())");
    let encoder = push(port, video);
    events.wait_video(100);
    events.push(IngestEvent::Ignored { caps: "mark".into() });
    during(&ingest);
    events.wait_video(200);
    drop(encoder);
    drop(ingest);
    std::mem::take(&mut *events.list.lock().unwrap())
}

/// Whether a UDP socket is bound to `port` (from /proc/net/udp and udp6).
fn udp_bound(port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|f| {
        let table = std::fs::read_to_string(f).unwrap_or_default();
        table.lines().any(|l| l.split_whitespace().nth(1).is_some_and(|local| local.ends_with(&suffix)))
    })
}

/// What the ingest reported, with a wake-up for each new event.
#[derive(Default)]
struct Events {
    list: Mutex<Vec<IngestEvent>>,
    added: Condvar,
}

impl Events {
    fn push(&self, e: IngestEvent) {
        self.list.lock().unwrap().push(e);
        self.added.notify_all();
    }

    /// Waits (at most 20 s) until `n` video packets have come out.
    fn wait_video(&self, n: usize) {
        let list = self.list.lock().unwrap();
        let _ = self.added.wait_timeout_while(list, Duration::from_secs(20), |l| rtp_count(l, VIDEO_PT) < n).unwrap();
    }
}

/// IDR starts among RTP H.264 packets: a single IDR NAL, an FU-A starting one, or a STAP-A holding one.
fn idr_starts(events: &[IngestEvent]) -> usize {
    let idr = |p: &[u8]| match p.first().map(|b| b & 0x1f) {
        Some(5) => true,
        Some(28) => p.get(1).is_some_and(|b| b & 0x80 != 0 && b & 0x1f == 5),
        Some(24) => {
            let mut i = 1;
            while i + 2 < p.len() {
                let n = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
                if p[i + 2] & 0x1f == 5 {
                    return true;
                }
                i += 2 + n;
            }
            false
        }
        _ => false,
    };
    events.iter().filter(|e| matches!(e, IngestEvent::Rtp { kind: StreamKind::Video, packet } if packet.len() > 12 && idr(&packet[12..]))).count()
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

#[test]
fn a_transcoding_pipeline_makes_keyframes_on_request() {
    // The transcoder's own interval is 60 frames (2 s); ~100 packets take well under that.
    let ev = ingest_with(17103, "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h265parse", |i| {
        for _ in 0..3 {
            i.request_keyframe();
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let mark = ev.iter().position(|e| matches!(e, IngestEvent::Ignored { caps } if caps.starts_with("mark"))).unwrap();
    let before = idr_starts(&ev[..mark]);
    let after = idr_starts(&ev[mark..]);
    eprintln!("IDR starts: {before} before the requests, {after} during and after");
    // `before` holds the stream's first keyframe only (in as many slices as x264 cuts it).
    assert!(before >= 1);
    assert!(after >= 3 * before, "three requests 300 ms apart give three keyframes: {after} IDR starts vs {before} for one");
}
