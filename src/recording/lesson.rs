//! One lesson being recorded: its folder and `lesson.json`, its catalog row, and
//! one `TrackRecorder` per recorded track (one part at a time).
//!
//! Invariants: `lesson.json` is rewritten (atomically, by the layout module)
//! whenever a part starts or ends or a fault happens, so after a crash it lists
//! every part file that exists; the catalog row follows the same events.
//! A part that ends, cleanly or not, is listed with the duration and size its file
//! keeps. A track that resumes after a silence longer than `MAX_GAP` (a reconnect)
//! continues in a new part, without losing the packet that ended the silence.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use classcast_recorder::layout::{ClassId, Fault, LessonDir, LessonId, LessonMeta, LessonState, PartFile, PartMeta, TrackKey};
use classcast_recorder::{Codec, PacketSender, PushError, RtpPacketIn, TrackRecorder, TrackSpec, TrackSummary};
use str0m::format::Codec as SdpCodec;

use crate::sfu::room::SlotKey;
use crate::sfu::tap::{TapId, TapPacket};
use super::RecordingHealth;
use super::stamp::Stamper;
use crate::store::{LessonState as CatalogState, LessonTrackRow, Store};

/// Packets that may wait for one track's GStreamer feeder.
const TRACK_QUEUE: usize = 1024;
/// First wait before a failed track is recorded again; doubles per failure in a row.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// A part that ran this long without a fault resets the failure count.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

struct Track {
    key: TrackKey,
    part: u32,
    /// The part being written, with its sender (cloned once, used per packet), and when it opened.
    current: Option<(TrackRecorder, PacketSender, Instant)>,
    ssrc: u32,
    /// Faults in a row, and when the track may be recorded again after the last one.
    failures: u32,
    retry_at: Option<Instant>,
    /// Places packets on the lesson clock (created with the first packet's clock rate).
    stamper: Option<Stamper>,
}

impl Track {
    fn waiting_to_retry(&self, now: Instant) -> bool {
        self.current.is_none() && self.retry_at.is_some_and(|t| now < t)
    }

    fn failed(&mut self, now: Instant) {
        self.current = None;
        self.failures += 1;
        let wait = RETRY_FIRST.saturating_mul(1 << self.failures.min(6).saturating_sub(1)).min(RETRY_MAX);
        self.retry_at = Some(now + wait);
    }
}

pub struct Lesson {
    id: String,
    dir: LessonDir,
    meta: LessonMeta,
    started: Instant,
    tracks: HashMap<TapId, Track>,
    /// Scratch space for the stamper's output (kept to avoid an allocation per packet).
    stamped: Vec<(TapPacket, Instant)>,
}

#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error(transparent)]
    Layout(#[from] classcast_recorder::layout::LayoutError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Lesson {
    pub fn begin(root: &Path, store: &Store, class_id: &str, title: &str, teacher: &str, now: Instant) -> Result<Lesson, LessonError> {
        let started_ms = unix_ms();
        let row = store.begin_lesson(class_id, title, teacher, started_ms as i64)?;
        let (class, lesson): (ClassId, LessonId) = (class_id.parse()?, row.id.parse()?);
        let dir = LessonDir::new(root, class.clone(), lesson.clone());
        dir.create()?;
        let meta = LessonMeta::new(class, lesson, started_ms);
        dir.write_metadata(&meta)?;
        tracing::info!(class = %class_id, lesson = %row.id, "lesson recording started");
        Ok(Lesson { id: row.id, dir, meta, started: now, tracks: HashMap::new(), stamped: Vec::new() })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn class_id(&self) -> &str {
        self.meta.class_id.as_str()
    }

    /// A track starts (or starts again: its part numbers continue).
    pub fn add_tap(&mut self, tap: TapId, key: &SlotKey) {
        match key.to_string().parse::<TrackKey>() {
            Ok(key) => {
                let part = self.meta.tracks.iter().find(|t| t.key == key).and_then(|t| t.parts.last()).map_or(0, |p| p.part);
                let track = Track { key, part, current: None, ssrc: 0x5eed_0000 ^ tap.0 as u32, failures: 0, retry_at: None, stamper: None };
                self.tracks.insert(tap, track);
            }
            Err(e) => tracing::error!(%key, error = %e, "track key cannot be recorded"),
        }
    }

    /// One tapped packet: placed on the lesson clock (see `stamp`), then recorded.
    pub fn packet(&mut self, p: TapPacket, store: &Store, health: &RecordingHealth, paused: bool) {
        let Some(track) = self.tracks.get_mut(&p.tap) else { return };
        let stamper = track.stamper.get_or_insert_with(|| Stamper::new(p.codec.clock_rate));
        let mut ready = std::mem::take(&mut self.stamped);
        stamper.push(p, &mut ready);
        for (p, at) in ready.drain(..) {
            self.record(&p, at, store, health, paused);
        }
        self.stamped = ready;
    }

    /// One stamped packet; dropped (and counted) while `paused` or the track waits to retry.
    fn record(&mut self, p: &TapPacket, captured: Instant, store: &Store, health: &RecordingHealth, paused: bool) {
        let Some(codec) = recorder_codec(p.codec.codec) else { return };
        if paused {
            health.packets_lost.fetch_add(1, Relaxed);
            return;
        }
        let at = captured.saturating_duration_since(self.started);
        let now = Instant::now();
        match self.tracks.get(&p.tap) {
            Some(t) if t.waiting_to_retry(now) => {
                health.packets_lost.fetch_add(1, Relaxed);
                return;
            }
            Some(t) if t.current.is_none() => self.open_part(p.tap, codec, p.codec.clock_rate, at, store),
            _ => {}
        }
        if self.tracks.get(&p.tap).is_none_or(|t| t.current.is_none()) {
            return;
        }
        let mut pushed = self.push(p, codec, at);
        if pushed == Err(PushError::Gap) {
            self.next_part(p.tap, codec, p.codec.clock_rate, at, store);
            pushed = self.push(p, codec, at);
        }
        // A full queue drops the packet; the class goes on either way.
        if pushed.is_err() {
            health.packets_lost.fetch_add(1, Relaxed);
        }
    }

    /// Hands `p` to its track's current part (`Closed` when there is none).
    fn push(&self, p: &TapPacket, codec: Codec, at: Duration) -> Result<(), PushError> {
        let track = self.tracks.get(&p.tap).ok_or(PushError::Closed)?;
        let (_, sender, _) = track.current.as_ref().ok_or(PushError::Closed)?;
        sender.try_push(RtpPacketIn { bytes: rtp_bytes(p, payload_type(codec), track.ssrc), arrival: at })
    }

    /// Packets resumed after a silence longer than `MAX_GAP` (a publisher or bridge that
    /// reconnected): the part before it is finished and the next one opens at `at`.
    fn next_part(&mut self, tap: TapId, codec: Codec, clock_rate: u32, at: Duration, store: &Store) {
        let Some(mut track) = self.tracks.remove(&tap) else { return };
        tracing::info!(lesson = %self.id, track = %track.key.as_str(), part = track.part, "packets resumed after a silence: the part ends, the next one starts");
        self.close_part(&mut track, store);
        self.tracks.insert(tap, track);
        self.open_part(tap, codec, clock_rate, at, store);
    }

    /// Close every part (recording pauses); the lesson records why.
    pub fn pause(&mut self, store: &Store, why: &str) {
        let taps: Vec<TapId> = self.tracks.keys().copied().collect();
        for tap in taps {
            let Some(mut track) = self.tracks.remove(&tap) else { continue };
            self.close_part(&mut track, store);
            self.tracks.insert(tap, track);
        }
        self.fault(store, None, why.to_string());
    }

    /// Tracks writing now, and tracks waiting to restart after a fault.
    pub fn track_counts(&self) -> (u64, u64) {
        let recording = self.tracks.values().filter(|t| t.current.is_some()).count() as u64;
        let failing = self.tracks.values().filter(|t| t.current.is_none() && t.retry_at.is_some()).count() as u64;
        (recording, failing)
    }

    /// Test hook: the current pipelines (of `track`, or all) report an error.
    pub fn inject_fault(&self, track: Option<&str>) {
        let chosen = self.tracks.values().filter(|t| track.is_none_or(|k| t.key.as_str() == k));
        for (rec, _, _) in chosen.filter_map(|t| t.current.as_ref()) {
            rec.inject_fault("fault injected by the operator (test hook)");
        }
    }

    fn open_part(&mut self, tap: TapId, codec: Codec, clock_rate: u32, at: Duration, store: &Store) {
        let Some(track) = self.tracks.get_mut(&tap) else { return };
        track.part += 1;
        let Some(file) = PartFile::new(track.key.clone(), track.part) else { return };
        let spec = TrackSpec { path: self.dir.part_path(&file), codec, payload_type: payload_type(codec), clock_rate };
        match TrackRecorder::start(spec, TRACK_QUEUE) {
            Ok(rec) => {
                let sender = rec.sender();
                track.current = Some((rec, sender, Instant::now()));
                track.retry_at = None;
                let part = PartMeta { part: track.part, start_ms: at.as_millis() as u64, duration_ms: None, bytes: None };
                self.meta.track_mut(&track.key, codec.as_str()).parts.push(part);
                let key = track.key.clone();
                self.save(store, &key);
            }
            Err(e) => {
                track.failed(Instant::now());
                let (key, message) = (track.key.clone(), format!("cannot start recording part {}: {e}", track.part));
                self.fault(store, Some(key), message);
            }
        }
    }

    /// A track's tap ended: finish its part.
    pub fn end_tap(&mut self, tap: TapId, store: &Store) {
        let Some(mut track) = self.tracks.remove(&tap) else { return };
        self.close_part(&mut track, store);
    }

    fn close_part(&mut self, track: &mut Track, store: &Store) {
        let Some((rec, _, _)) = track.current.take() else { return };
        match rec.finish() {
            Ok(summary) => self.set_written(&track.key, &summary, store),
            // What the file kept stays listed (and replayable) with its duration.
            Err(e) => {
                self.set_written(&track.key, &e.kept, store);
                self.fault(store, Some(track.key.clone()), format!("part {} did not finish cleanly: {e}", track.part));
            }
        }
    }

    /// The current (last) part of `key` holds `written`: into `lesson.json` and the catalog.
    fn set_written(&mut self, key: &TrackKey, written: &TrackSummary, store: &Store) {
        if let Some(part) = self.meta.tracks.iter_mut().find(|t| &t.key == key).and_then(|t| t.parts.last_mut()) {
            part.duration_ms = Some(written.duration.as_millis() as u64);
            part.bytes = Some(written.bytes);
        }
        self.save(store, key);
    }

    /// A pipeline that failed is closed; after a pause (growing while failures repeat)
    /// the next packet opens a new part.
    pub fn check_faults(&mut self, store: &Store, health: &RecordingHealth) {
        let now = Instant::now();
        for t in self.tracks.values_mut() {
            if t.current.as_ref().is_some_and(|(_, _, opened)| now.duration_since(*opened) >= HEALTHY_AFTER) {
                t.failures = 0;
            }
        }
        let failed: Vec<(TapId, String)> = self
            .tracks
            .iter()
            .filter_map(|(tap, t)| t.current.as_ref().and_then(|(rec, _, _)| rec.poll_fault()).map(|f| (*tap, f)))
            .collect();
        for (tap, message) in failed {
            let Some(track) = self.tracks.get_mut(&tap) else { continue };
            let kept = track.current.take().map(|(rec, _, _)| rec.abandon());
            track.failed(now);
            health.faults.fetch_add(1, Relaxed);
            let (key, part) = (track.key.clone(), track.part);
            let kept_s = kept.as_ref().map_or(0.0, |k| k.duration.as_secs_f64());
            if let Some(kept) = kept {
                self.set_written(&key, &kept, store);
            }
            self.fault(store, Some(key), format!("part {part} failed: {message} ({kept_s:.1} s of media kept in it); recording continues in part {}", part + 1));
        }
    }

    fn fault(&mut self, store: &Store, track: Option<TrackKey>, message: String) {
        tracing::error!(lesson = %self.id, track = ?track.as_ref().map(|k| k.as_str()), %message, "recording fault");
        let at_ms = self.started.elapsed().as_millis() as u64;
        let _ = store.add_lesson_fault(&self.id, &message);
        self.meta.faults.push(Fault { at_ms, track, message });
        self.write_meta();
    }

    /// Write `lesson.json` and the track's catalog row.
    fn save(&mut self, store: &Store, key: &TrackKey) {
        self.write_meta();
        let Some(t) = self.meta.tracks.iter().find(|t| &t.key == key) else { return };
        let row = LessonTrackRow {
            key: key.to_string(),
            codec: t.codec.clone(),
            parts: t.parts.len() as u32,
            duration_ms: t.parts.iter().filter_map(|p| p.duration_ms).sum::<u64>() as i64,
            bytes: t.parts.iter().filter_map(|p| p.bytes).sum::<u64>() as i64,
        };
        if let Err(e) = store.put_lesson_track(&self.id, &row) {
            tracing::error!(lesson = %self.id, error = %e, "cannot update the lesson catalog");
        }
    }

    fn write_meta(&self) {
        if let Err(e) = self.dir.write_metadata(&self.meta) {
            tracing::error!(lesson = %self.id, error = %e, "cannot write lesson.json");
        }
    }

    /// The lesson is over (last attended at `ended_at_ms`, else now): finish every part,
    /// then the lesson.
    pub fn finish(mut self, store: &Store, ended_at_ms: Option<i64>) {
        let taps: Vec<TapId> = self.tracks.keys().copied().collect();
        for tap in taps {
            self.end_tap(tap, store);
        }
        // Faults along the way are listed with the lesson; it still ended normally
        // (`interrupted` is for lessons a crash cut short).
        let state = LessonState::Finished;
        self.meta.state = state;
        self.write_meta();
        let ended_at_ms = ended_at_ms.unwrap_or(unix_ms() as i64).max(self.meta.started_at_ms as i64);
        if let Err(e) = store.end_lesson(&self.id, ended_at_ms, CatalogState::Finished) {
            tracing::error!(lesson = %self.id, error = %e, "cannot close the lesson in the catalog");
        }
        tracing::info!(lesson = %self.id, ?state, "lesson recording ended");
    }
}

/// After a crash: the lesson's `lesson.json` says `interrupted` too.
pub fn mark_interrupted_on_disk(root: &Path, store: &Store, lesson_id: &str) {
    let Ok(Some((row, _))) = store.lesson(lesson_id) else { return };
    let (Ok(class), Ok(lesson)) = (row.class_id.parse::<ClassId>(), lesson_id.parse::<LessonId>()) else { return };
    let dir = LessonDir::new(root, class, lesson);
    if let Ok(mut meta) = dir.read_metadata() {
        meta.state = LessonState::Interrupted;
        let _ = dir.write_metadata(&meta);
    }
}

fn recorder_codec(c: SdpCodec) -> Option<Codec> {
    match c {
        SdpCodec::H264 => Some(Codec::H264),
        SdpCodec::Vp8 => Some(Codec::Vp8),
        SdpCodec::Opus => Some(Codec::Opus),
        _ => None,
    }
}

fn payload_type(c: Codec) -> u8 {
    match c {
        Codec::H264 => 102,
        Codec::Vp8 => 96,
        Codec::Opus => 111,
    }
}

/// A plain RTP packet (RFC 3550 header, no extensions) around the tapped payload.
fn rtp_bytes(p: &TapPacket, pt: u8, ssrc: u32) -> Arc<[u8]> {
    let mut b = Vec::with_capacity(12 + p.payload.len());
    b.push(0x80);
    b.push(pt | if p.marker { 0x80 } else { 0 });
    b.extend_from_slice(&(p.seq as u16).to_be_bytes());
    b.extend_from_slice(&p.ts.to_be_bytes());
    b.extend_from_slice(&ssrc.to_be_bytes());
    b.extend_from_slice(&p.payload);
    b.into()
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sfu::peer::CodecKey;
    use crate::signaling::protocol::Source;

    const FRAME: Duration = Duration::from_millis(20);

    /// Opus packet `i`, captured at `at`: one 20 ms stereo frame of silence.
    fn opus(tap: TapId, i: u32, at: Instant) -> TapPacket {
        let codec = CodecKey { codec: SdpCodec::Opus, profile_level_id: None, clock_rate: 48_000 };
        let payload = Arc::from(&[0xfc, 0xff, 0xfe][..]);
        TapPacket { tap, codec, seq: u64::from(i), ts: i * 960, marker: false, payload, captured: at, captured_by_sender: true, arrival: at }
    }

    #[test]
    fn a_track_silent_for_10_s_continues_in_a_new_part_and_both_are_listed() {
        let root = std::env::temp_dir().join(format!("classcast-lesson-silence-{}", std::process::id()));
        let store = Store::open_in_memory().expect("an in-memory store");
        let (t0, tap, health) = (Instant::now(), TapId(1), RecordingHealth::default());
        let mut lesson = Lesson::begin(&root, &store, "c1", "t", "teacher", t0).expect("the lesson begins");
        lesson.add_tap(tap, &SlotKey::new("main", Source::Mic));
        // 6 s, 10 s of nothing (a bridge reconnecting: RTP time jumps too), 6 s.
        let back = t0 + FRAME * 300 + Duration::from_secs(10);
        let packets = (0..300).map(|i| opus(tap, i, t0 + FRAME * i)).chain((0..300).map(|i| opus(tap, 800 + i, back + FRAME * i)));
        packets.for_each(|p| lesson.packet(p, &store, &health, false));
        let (dir, id) = (lesson.dir.clone(), lesson.id.clone());
        lesson.finish(&store, None);
        let meta = dir.read_metadata().expect("lesson.json");
        let parts: Vec<_> = meta.tracks.iter().flat_map(|t| &t.parts).map(|p| (p.start_ms, p.duration_ms.unwrap_or(0))).collect();
        assert_eq!(parts.len(), 2, "a part before and one after the silence: {parts:?} faults {:?}", meta.faults);
        assert!(parts[1].0.abs_diff(16_000) < 100, "the second part starts when the packets resumed: {parts:?}");
        assert!(parts.iter().all(|(_, d)| d.abs_diff(6_000) < 500), "each holds its 6 s: {parts:?}");
        assert!(meta.faults.is_empty(), "{:?}", meta.faults);
        assert_eq!(health.packets_lost.load(Relaxed), 0, "the packet after the silence is recorded");
        let (_, tracks) = store.lesson(&id).expect("catalog").expect("the lesson row");
        assert!(tracks[0].duration_ms > 10_000, "the catalog sums both parts: {tracks:?}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
