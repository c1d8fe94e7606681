//! [`TrackRecorder`]: one recorded track → one part file (fragmented MP4), fed with the
//! plain RTP packets of the track (after SRTP, before any rewriting).
//!
//! Muxer: `isofmp4mux` from gst-plugins-rs (`gst-plugin-fmp4`, linked statically and
//! registered by [`crate::init`]), not Debian's `mp4mux`:
//! - Debian 1.22's `mp4mux` takes no VP8 (its video pads list H.264/H.265/VP9/AV1 only);
//!   isofmp4mux takes H.264, VP8 and Opus.
//! - isofmp4mux is built for live output: it never seeks back while recording, and with
//!   `chunk-duration` it emits a self-contained `moof`+`mdat` every [`FRAGMENT`] even when
//!   the publisher sends no keyframe for minutes (WebRTC senders key only on request).
//!   mp4mux's fragments depend on keyframes and its moov is only finalised at EOS.
//!
//! Timeline: a packet's `arrival` (time since lesson start) becomes its buffer time and the
//! pipeline's clock (see `pipeline.rs`); rtpjitterbuffer then derives smooth timestamps
//! from the RTP clock anchored at arrival, and the file's `tfdt` times are lesson time. A
//! part started at minute 10 starts at 600 s, so the tracks of one lesson share one
//! timeline.
//!
//! Thread model: the caller's thread only does a `try_send` on a bounded queue; one feeder
//! thread per track moves packets into appsrc; GStreamer's streaming threads do the rest.
//!
//! Invariants:
//! - [`PacketSender::try_push`] never blocks: a full queue drops and counts the packet.
//! - Dropping a `TrackRecorder` without [`TrackRecorder::finish`] stops the pipeline
//!   without EOS, exactly like a crash: the file ends at its last complete chunk.
//! - Pipeline errors are faults ([`TrackRecorder::poll_fault`], [`TrackEvent::Fault`]);
//!   the recorder never panics on them. Recovering is the owner's job: start a new part.
//!   What the file kept is known either way ([`TrackRecorder::kept`], [`FinishError`]).
//! - A part spans no silence longer than [`MAX_GAP`]: the packet after one is refused
//!   with [`PushError::Gap`] and starts the owner's next part.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use gst::prelude::*;

use crate::error::{FinishError, PushError, RecorderError};
use crate::feeder::{self, Msg};
use crate::pipeline;
use crate::state::{End, Shared};

/// Longest media span a crash can lose: the muxer writes a chunk at least this often.
pub const FRAGMENT: Duration = Duration::from_secs(2);
/// Longest silence one part spans. A packet arriving later than this after the previous
/// one is refused with [`PushError::Gap`]: the part ends before the gap and the owner
/// starts a new part with that packet. Why: isofmp4mux (chunk mode, one stream) drains
/// everything at a live timeout during the silence, then treats a first GOP that starts
/// more than a chunk ([`FRAGMENT`]) after what it wrote as "late" and never drains it: the
/// file stops growing and EOS panics (`!at_eos || queued_gops.is_empty()`). Measured: a
/// 4 s hole already does it; a hole shorter than a chunk cannot (and a jump of the RTP
/// clock alone is no hole: rtpjitterbuffer then stamps by arrival; tests/outage.rs).
/// Above one second, so a 1 fps sender (a muted camera's black frames) stays in one part.
pub const MAX_GAP: Duration = Duration::from_millis(1500);
const _: () = assert!(MAX_GAP.as_millis() < FRAGMENT.as_millis());
/// How long rtpjitterbuffer waits (in arrival time) for a late or reordered packet.
pub const JITTER_LATENCY: Duration = Duration::from_millis(300);
/// How long [`TrackRecorder::finish`] waits for the file to be completed.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(10);
const EVENT_QUEUE: usize = 64;

/// Codec of a recorded track (as negotiated in SDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    Vp8,
    Opus,
}

impl Codec {
    /// Name used in `lesson.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Vp8 => "vp8",
            Codec::Opus => "opus",
        }
    }

    /// RTP clock rate of the codec in WebRTC.
    pub fn default_clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::H264 | Codec::Vp8 => 90_000,
        }
    }

    pub fn is_video(self) -> bool {
        self != Codec::Opus
    }

    pub(crate) fn media(self) -> &'static str {
        if self.is_video() { "video" } else { "audio" }
    }

    pub(crate) fn encoding_name(self) -> &'static str {
        match self {
            Codec::H264 => "H264",
            Codec::Vp8 => "VP8",
            Codec::Opus => "OPUS",
        }
    }
}

/// What to record and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// The part file (from [`crate::layout::LessonDir::part_path`]); its folder must exist.
    pub path: PathBuf,
    pub codec: Codec,
    /// Dynamic payload type of the track, 96..=127; packets of other types are ignored.
    pub payload_type: u8,
    /// RTP clock rate (90 000 for video, 48 000 for Opus).
    pub clock_rate: u32,
}

/// One full RTP packet (header + payload) as received.
#[derive(Debug, Clone)]
pub struct RtpPacketIn {
    pub bytes: Arc<[u8]>,
    /// Arrival time since the lesson started (one clock for every track of the lesson).
    pub arrival: Duration,
}

/// Something the owner of a recorder should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackEvent {
    /// The recorder needs a keyframe (at start, after packet loss): send a PLI to the
    /// publisher (subject to the SFU's own PLI rate limit).
    KeyframeWanted,
    /// The pipeline failed; the part is closed. Start a new part to keep recording.
    Fault(String),
}

/// Counters of one track recorder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// Packets handed to the pipeline.
    pub packets: u64,
    /// Packets refused because the queue was full.
    pub dropped: u64,
    /// Packets ignored because they were not RTP of this track's payload type.
    pub invalid: u64,
    /// Bytes handed to the file.
    pub bytes_written: u64,
    /// Keyframe requests raised (see [`TrackEvent::KeyframeWanted`]).
    pub keyframe_requests: u64,
    /// Lesson time up to which media is in the file (what survives a crash now).
    pub written_until: Option<Duration>,
}

/// What a finished part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackSummary {
    /// Media duration in the file (0 if no media was ever written).
    pub duration: Duration,
    /// File size in bytes.
    pub bytes: u64,
    /// Final counters (every queued packet has been handled).
    pub stats: TrackStats,
}

/// A cloneable, `Send` handle that feeds packets to one [`TrackRecorder`].
#[derive(Clone)]
pub struct PacketSender {
    tx: Sender<Msg>,
    shared: Arc<Shared>,
}

impl PacketSender {
    /// Queues a packet; never blocks. `Err(Full)` drops (and counts) the packet;
    /// `Err(Gap)` refuses it (it starts the next part, see [`MAX_GAP`]).
    pub fn try_push(&self, packet: RtpPacketIn) -> Result<(), PushError> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(PushError::Closed);
        }
        let arrival = packet.arrival;
        if !self.shared.continues(arrival, MAX_GAP) {
            return Err(PushError::Gap);
        }
        match self.tx.try_send(Msg::Packet(packet)) {
            Ok(()) => {
                self.shared.taken(arrival);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                Shared::bump(&self.shared.dropped);
                Err(PushError::Full)
            }
            Err(TrySendError::Disconnected(_)) => Err(PushError::Closed),
        }
    }

    /// The recorder's counters (also readable after it finished or failed).
    pub fn stats(&self) -> TrackStats {
        self.shared.stats()
    }
}

/// Records one track into one part file. See the module documentation.
pub struct TrackRecorder {
    path: PathBuf,
    pipeline: gst::Pipeline,
    tx: Sender<Msg>,
    events: Receiver<TrackEvent>,
    shared: Arc<Shared>,
    feeder: Option<JoinHandle<()>>,
}

impl TrackRecorder {
    /// Builds and starts the pipeline; `queue_depth` (>= 1) packets may wait for the feeder.
    pub fn start(spec: TrackSpec, queue_depth: usize) -> Result<TrackRecorder, RecorderError> {
        crate::init()?;
        check_spec(&spec, queue_depth)?;
        let (events_tx, events) = crossbeam_channel::bounded(EVENT_QUEUE);
        let shared = Arc::new(Shared::new(events_tx));
        let parts = pipeline::build(&spec, &shared)?;
        let (tx, rx) = crossbeam_channel::bounded(queue_depth);
        let handle = feeder::spawn(
            rx,
            parts.appsrc,
            parts.clock,
            Arc::clone(&shared),
            spec.payload_type,
        )?;
        let mut recorder = TrackRecorder {
            path: spec.path,
            pipeline: parts.pipeline,
            tx,
            events,
            shared,
            feeder: Some(handle),
        };
        recorder.play()?;
        if spec.codec.is_video() {
            recorder.shared.keyframe_wanted();
        }
        Ok(recorder)
    }

    fn play(&mut self) -> Result<(), RecorderError> {
        if self.pipeline.set_state(gst::State::Playing).is_ok() {
            return Ok(());
        }
        self.stop();
        let why = self
            .shared
            .fault()
            .unwrap_or_else(|| "cannot start the pipeline".into());
        Err(RecorderError::Pipeline(why))
    }

    /// A handle for the SFU thread(s) to push packets with.
    pub fn sender(&self) -> PacketSender {
        PacketSender {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }

    /// Events to act on (keyframe requests, faults). Bounded: unread events are dropped,
    /// never queued without limit; [`TrackRecorder::poll_fault`] keeps the first fault.
    pub fn events(&self) -> Receiver<TrackEvent> {
        self.events.clone()
    }

    /// Counters so far; packets still queued are not counted yet.
    pub fn stats(&self) -> TrackStats {
        self.shared.stats()
    }

    /// The first pipeline error, if any (the part is then closed: start a new one).
    pub fn poll_fault(&self) -> Option<String> {
        self.shared.fault()
    }

    /// Posts an error on the pipeline's bus, as a failing element would: the part then
    /// ends exactly like after a real fault. For supervision tests (the server's fault
    /// injection hook); never called on the packet path.
    pub fn inject_fault(&self, message: &str) {
        let error = gst::message::Error::builder(gst::CoreError::Failed, message).src(&self.pipeline).build();
        let _ = self.pipeline.post_message(error);
    }

    /// Waits until media up to lesson time `until` is in the file. False on timeout or if
    /// the pipeline ended first. For health checks and tests; the packet path never waits.
    pub fn wait_written(&self, until: Duration, timeout: Duration) -> bool {
        self.shared.wait_written(until, timeout)
    }

    /// Pushes everything queued, sends EOS and waits (at most [`FINISH_TIMEOUT`]) until the
    /// file is complete, with its duration in the header. If the pipeline failed (or fails
    /// now) the error says why and what the file keeps: its complete chunks stay readable.
    pub fn finish(mut self) -> Result<TrackSummary, FinishError> {
        self.shared.closed.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + FINISH_TIMEOUT;
        // After a fault the end is known (and a blocked feeder would never take this).
        if self.shared.fault().is_none() {
            let _ = self.tx.send_deadline(Msg::Finish, deadline);
        }
        let end = self
            .shared
            .wait_end(deadline.saturating_duration_since(Instant::now()));
        self.stop();
        let error = match end {
            Some(End::Eos) => return self.summary().map_err(|error| self.failed(error)),
            Some(End::Error) => RecorderError::Pipeline(self.shared.fault().unwrap_or_default()),
            None => RecorderError::Timeout(FINISH_TIMEOUT),
        };
        Err(self.failed(error))
    }

    fn failed(&self, error: RecorderError) -> FinishError {
        FinishError {
            error,
            kept: self.kept(),
        }
    }

    fn summary(&self) -> Result<TrackSummary, RecorderError> {
        let bytes = std::fs::metadata(&self.path)?.len();
        Ok(self.summary_of(bytes))
    }

    fn summary_of(&self, bytes: u64) -> TrackSummary {
        TrackSummary {
            duration: self.shared.span().duration(),
            bytes,
            stats: self.shared.stats(),
        }
    }

    /// What the file holds now, whatever happened to the pipeline: the media span of the
    /// chunks written completely (see [`TrackStats::written_until`]) and the file's size.
    /// For a part that failed, this is what stays indexable and replayable.
    pub fn kept(&self) -> TrackSummary {
        self.summary_of(std::fs::metadata(&self.path).map_or(0, |m| m.len()))
    }

    /// Gives up on a part whose pipeline failed: stops it without EOS (like dropping it)
    /// and returns what the file keeps ([`TrackRecorder::kept`], now final).
    pub fn abandon(mut self) -> TrackSummary {
        self.stop();
        self.kept()
    }

    /// Stops the pipeline (no EOS) and the feeder thread. Idempotent.
    fn stop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
        // A feeder waiting for packets needs this; one pushing fails on the stopped appsrc.
        let _ = self.tx.try_send(Msg::Abort);
        if let Some(handle) = self.feeder.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for TrackRecorder {
    /// Abandons the part like a crash would: no EOS, the file keeps its complete chunks.
    fn drop(&mut self) {
        self.stop();
    }
}

fn check_spec(spec: &TrackSpec, queue_depth: usize) -> Result<(), RecorderError> {
    let fail = |m: String| Err(RecorderError::InvalidSpec(m));
    if queue_depth == 0 {
        return fail("queue_depth must be at least 1".into());
    }
    if !(96..=127).contains(&spec.payload_type) {
        return fail(format!(
            "payload type {} is not dynamic (96..=127)",
            spec.payload_type
        ));
    }
    if spec.clock_rate == 0 || spec.clock_rate > i32::MAX as u32 {
        return fail(format!("clock rate {} is out of range", spec.clock_rate));
    }
    Ok(())
}
