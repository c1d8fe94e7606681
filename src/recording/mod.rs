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

mod lesson;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select_biased};

use crate::driver::taps::TapMsg;
use crate::sfu::RoomId;
use crate::sfu::tap::TapId;
use crate::store::Store;
use lesson::Lesson;

/// How often faults are looked for when no message arrives.
const FAULT_POLL: Duration = Duration::from_millis(500);

/// What the rooms layer tells the recorder.
#[derive(Debug)]
pub enum LessonCmd {
    Begin { room: RoomId, class_id: String, title: String, teacher: String },
    End { room: RoomId },
}

/// Handle of the recording thread.
#[derive(Clone)]
pub struct Recording {
    tx: Sender<LessonCmd>,
}

impl Recording {
    /// Start the recording thread on `root` (the recordings directory).
    pub fn start(root: PathBuf, store: Store, taps: Receiver<TapMsg>) -> std::io::Result<Recording> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut worker = Worker { root, store, lessons: HashMap::new(), taps_of: HashMap::new() };
        std::thread::Builder::new().name("recorder".into()).spawn(move || worker.run(rx, taps))?;
        Ok(Recording { tx })
    }

    pub fn begin(&self, room: RoomId, class_id: String, title: String, teacher: String) {
        let _ = self.tx.send(LessonCmd::Begin { room, class_id, title, teacher });
    }

    pub fn end(&self, room: RoomId) {
        let _ = self.tx.send(LessonCmd::End { room });
    }
}

struct Worker {
    root: PathBuf,
    store: Store,
    lessons: HashMap<RoomId, Lesson>,
    taps_of: HashMap<TapId, RoomId>,
}

impl Worker {
    fn run(&mut self, cmds: Receiver<LessonCmd>, taps: Receiver<TapMsg>) {
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
            self.check_faults();
        }
    }

    fn on_cmd(&mut self, cmd: LessonCmd) {
        match cmd {
            LessonCmd::Begin { room, class_id, title, teacher } => {
                if self.lessons.contains_key(&room) {
                    return;
                }
                match Lesson::begin(&self.root, &self.store, &class_id, &title, &teacher, Instant::now()) {
                    Ok(l) => {
                        self.lessons.insert(room, l);
                    }
                    Err(e) => tracing::error!(class = %class_id, error = %e, "cannot start recording the lesson"),
                }
            }
            LessonCmd::End { room } => {
                if let Some(l) = self.lessons.remove(&room) {
                    self.taps_of.retain(|_, r| *r != room);
                    l.finish(&self.store);
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
                    l.packet(&p, &self.store);
                }
            }
            TapMsg::Ended { tap } => {
                if let Some(room) = self.taps_of.remove(&tap) {
                    if let Some(l) = self.lessons.get_mut(&room) {
                        l.end_tap(tap, &self.store);
                    }
                }
            }
        }
    }

    fn check_faults(&mut self) {
        for l in self.lessons.values_mut() {
            l.check_faults(&self.store);
        }
    }

    fn end_all(&mut self) {
        for (_, l) in self.lessons.drain() {
            l.finish(&self.store);
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

