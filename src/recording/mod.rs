//! The recording service: turns the forwarding core's taps into recorded lessons
//! (files through `classcast-recorder`, rows in the lesson catalog).
//!
//! One thread owns every recorded lesson. It reads two queues, lesson control
//! first: `Lessons` (begin/end, from the rooms layer) and the bounded tap queue
//! from the forwarding threads (`driver::taps`).
//!
//! Invariants:
//! - Nothing here is on the forwarding path: the forwarding threads only
//!   `try_send` into the tap queue; RTP headers are rebuilt and files written here
//!   and in GStreamer's threads.
//! - A lesson begins before any of its taps exist (the rooms layer begins it, then
//!   turns recording on), so every tap finds its lesson.
//! - A track's recorder starts at its first packet (its codec is known then); a
//!   pipeline fault closes the part and the next packet opens part N+1, with the
//!   fault written to `lesson.json` and the catalog. The live class never waits.
//!   Packets that resume after a silence longer than `MAX_GAP` (a publisher or
//!   bridge reconnecting) also continue in part N+1; a part that failed is listed
//!   with what its file kept.
//! - A finished lesson is announced (`recording_ready` on the event bus) once its
//!   catalog row says `finished`.

mod disk;
pub mod export;
mod lesson;
pub mod retention;
mod stamp;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select_biased};

use crate::driver::taps::TapMsg;
use crate::rooms::events::ClassEvent;
use crate::sfu::RoomId;
use crate::sfu::tap::TapId;
use crate::store::Store;
pub use export::Exports;
use lesson::Lesson;

/// How often faults are looked for when no message arrives.
const FAULT_POLL: Duration = Duration::from_millis(500);

/// What the rooms layer tells the recorder.
#[derive(Debug)]
pub enum LessonCmd {
    Begin { room: RoomId, class_id: String, title: String, teacher: String },
    /// The class closed; it was last attended at `ended_at_ms` (unix ms).
    End { room: RoomId, ended_at_ms: i64 },
    /// Test hook (`--fault-injection`): make the pipelines of a class's tracks fail.
    InjectFault { class_id: String, track: Option<String> },
}

/// What `/metrics` says of the recorder; written by the recording thread.
#[derive(Debug, Default)]
pub struct RecordingHealth {
    /// Lessons being recorded now.
    pub lessons: AtomicU64,
    /// Tracks with a pipeline writing now.
    pub tracks_recording: AtomicU64,
    /// Tracks whose pipeline failed and that wait to restart (an alert when > 0).
    pub tracks_failing: AtomicU64,
    /// Pipeline faults since start.
    pub faults: AtomicU64,
    /// Packets not recorded: the track's queue was full or its pipeline was down.
    pub packets_lost: AtomicU64,
    /// 1 while recording is paused because the disk is almost full (an alert).
    pub disk_low: AtomicU64,
}

/// Where and how the recorder writes.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    /// The recordings directory.
    pub root: PathBuf,
    /// Recording pauses while the disk has less free space than this.
    pub min_free_bytes: u64,
    /// Where `recording_ready` is published when a lesson's recording is finished.
    pub events: crate::rooms::events::EventBus,
}

/// Handle of the recording thread.
#[derive(Clone)]
pub struct Recording {
    tx: Sender<LessonCmd>,
    health: Arc<RecordingHealth>,
}

impl Recording {
    /// Start the recording thread on `root` (the recordings directory); finished
    /// lessons go to `exports` when given.
    pub fn start(config: RecordingConfig, store: Store, taps: Receiver<TapMsg>, exports: Option<Exports>) -> std::io::Result<Recording> {
        std::fs::create_dir_all(&config.root)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let health = Arc::new(RecordingHealth::default());
        let mut worker = Worker {
            config,
            store,
            lessons: HashMap::new(),
            taps_of: HashMap::new(),
            exports,
            health: health.clone(),
            disk_low: false,
        };
        std::thread::Builder::new().name("recorder".into()).spawn(move || worker.run(rx, taps))?;
        Ok(Recording { tx, health })
    }

    pub fn health(&self) -> &RecordingHealth {
        &self.health
    }

    pub fn inject_fault(&self, class_id: String, track: Option<String>) {
        let _ = self.tx.send(LessonCmd::InjectFault { class_id, track });
    }

    pub fn begin(&self, room: RoomId, class_id: String, title: String, teacher: String) {
        let _ = self.tx.send(LessonCmd::Begin { room, class_id, title, teacher });
    }

    pub fn end(&self, room: RoomId, ended_at_ms: i64) {
        let _ = self.tx.send(LessonCmd::End { room, ended_at_ms });
    }
}

struct Worker {
    config: RecordingConfig,
    store: Store,
    lessons: HashMap<RoomId, Lesson>,
    taps_of: HashMap<TapId, RoomId>,
    exports: Option<Exports>,
    health: Arc<RecordingHealth>,
    /// Recording is paused: the disk is almost full.
    disk_low: bool,
}

impl Worker {
    fn run(&mut self, cmds: Receiver<LessonCmd>, taps: Receiver<TapMsg>) {
        let mut last_check = Instant::now();
        loop {
            select_biased! {
                recv(cmds) -> m => match m {
                    Ok(cmd) => self.on_cmd(cmd),
                    Err(_) => return self.end_all(),
                },
                recv(taps) -> m => match m {
                    Ok(msg) => self.on_tap(msg),
                    Err(_) => return self.end_all(),
                },
                default(FAULT_POLL) => {}
            }
            if last_check.elapsed() >= FAULT_POLL {
                last_check = Instant::now();
                self.check_faults();
            }
        }
    }

    fn finish(&self, lesson: Lesson, ended_at_ms: Option<i64>) {
        let id = lesson.id().to_string();
        lesson.finish(&self.store, ended_at_ms);
        self.publish_ready(&id);
        if let Some(Err(e)) = self.exports.as_ref().map(|x| x.enqueue(&id)) {
            tracing::error!(lesson = %id, error = %e, "cannot queue the lesson's export");
        }
    }

    /// `recording_ready`, from the lesson's catalog row (the lesson is `finished` there now).
    fn publish_ready(&self, lesson_id: &str) {
        let row = match self.store.lesson(lesson_id) {
            Ok(Some((row, _))) => row,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(lesson = %lesson_id, error = %e, "cannot read the finished lesson");
                return;
            }
        };
        let duration_ms = row.ended_at_ms.map_or(0, |end| end - row.started_at_ms);
        let (class_id, title, teacher) = (row.class_id, row.title, row.teacher);
        let event = ClassEvent::RecordingReady { class_id, lesson_id: row.id, title, teacher, duration_ms, at_ms: crate::store::unix_now_ms() };
        self.config.events.publish(event);
    }

    fn on_cmd(&mut self, cmd: LessonCmd) {
        match cmd {
            LessonCmd::Begin { room, class_id, title, teacher } => {
                if self.lessons.contains_key(&room) {
                    return;
                }
                match Lesson::begin(&self.config.root, &self.store, &class_id, &title, &teacher, Instant::now()) {
                    Ok(l) => {
                        self.lessons.insert(room, l);
                    }
                    Err(e) => tracing::error!(class = %class_id, error = %e, "cannot start recording the lesson"),
                }
            }
            LessonCmd::End { room, ended_at_ms } => {
                if let Some(l) = self.lessons.remove(&room) {
                    self.taps_of.retain(|_, r| *r != room);
                    self.finish(l, Some(ended_at_ms));
                }
            }
            LessonCmd::InjectFault { class_id, track } => {
                for l in self.lessons.values().filter(|l| l.class_id() == class_id) {
                    l.inject_fault(track.as_deref());
                }
            }
        }
    }

    fn on_tap(&mut self, msg: TapMsg) {
        match msg {
            TapMsg::Started { room, tap, key } => {
                if let Some(l) = self.lessons.get_mut(&room) {
                    l.add_tap(tap, &key);
                    self.taps_of.insert(tap, room);
                }
            }
            TapMsg::Packet(p) => {
                let Some(room) = self.taps_of.get(&p.tap) else { return };
                if let Some(l) = self.lessons.get_mut(room) {
                    l.packet(p, &self.store, &self.health, self.disk_low);
                }
            }
            TapMsg::Ended { tap } => {
                let room = self.taps_of.remove(&tap);
                if let Some(l) = room.and_then(|r| self.lessons.get_mut(&r)) {
                    l.end_tap(tap, &self.store);
                }
            }
        }
    }

    /// Pause every lesson's recording when free space falls below the reserve; resume
    /// (in new parts) when it is back.
    fn check_disk(&mut self) {
        let Some(free) = disk::free_bytes(&self.config.root) else { return };
        let low = free < self.config.min_free_bytes;
        if low && !self.disk_low {
            let (free_mb, reserve_mb) = (free >> 20, self.config.min_free_bytes >> 20);
            let message = format!("disk almost full ({free_mb} MB free, reserve {reserve_mb} MB): recording paused");
            tracing::error!(free_mb, reserve_mb, "recordings disk almost full: recording paused, the classes go on");
            for l in self.lessons.values_mut() {
                l.pause(&self.store, &message);
            }
        } else if !low && self.disk_low {
            tracing::warn!(free_mb = free >> 20, "recordings disk has room again: recording resumes");
        }
        self.disk_low = low;
        self.health.disk_low.store(u64::from(low), Relaxed);
    }

    fn check_faults(&mut self) {
        self.check_disk();
        let (mut recording, mut failing) = (0, 0);
        for l in self.lessons.values_mut() {
            l.check_faults(&self.store, &self.health);
            let (r, f) = l.track_counts();
            recording += r;
            failing += f;
        }
        self.health.lessons.store(self.lessons.len() as u64, Relaxed);
        self.health.tracks_recording.store(recording, Relaxed);
        self.health.tracks_failing.store(failing, Relaxed);
    }

    fn end_all(&mut self) {
        let lessons: Vec<Lesson> = self.lessons.drain().map(|(_, l)| l).collect();
        for l in lessons {
            self.finish(l, None);
        }
    }
}

/// Lessons a crash left `recording` become `interrupted`, in the catalog and on disk.
pub fn recover_interrupted(root: &std::path::Path, store: &Store) -> usize {
    let ids = match store.interrupt_unfinished_lessons() {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "cannot check for interrupted lessons");
            return 0;
        }
    };
    for id in &ids {
        lesson::mark_interrupted_on_disk(root, store, id);
        tracing::warn!(lesson = %id, "lesson was interrupted by a restart; its recording is kept up to the last fragment");
    }
    ids.len()
}

