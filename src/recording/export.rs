//! The export queue: one composite MP4 per lesson (courseware large, teacher
//! picture-in-picture, every microphone mixed), rendered after class by
//! `classcast_recorder::export`, one lesson at a time on one low-priority thread.
//!
//! Invariants:
//! - The queue lives in the catalog (`export_state`): a lesson queued or cut while
//!   rendering by a restart is rendered again at the next start.
//! - Progress reaches the catalog at most once a second; the final state is always
//!   written (`done` with progress 1, or `failed` with the reason).
//! - A lesson still being recorded is never rendered.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use classcast_recorder::layout::{ClassId, LessonDir, LessonId};
use crossbeam_channel::{Receiver, Sender};

use crate::store::{ExportState, ExportStatus, LessonRow, LessonState, Store, StoreError};

const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Handle of the export thread.
#[derive(Clone)]
pub struct Exports {
    tx: Sender<String>,
    store: Store,
}

impl Exports {
    /// Start the export thread; lessons left queued or rendering are queued again.
    pub fn start(root: PathBuf, store: Store) -> std::io::Result<Exports> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker_store = store.clone();
        std::thread::Builder::new().name("export".into()).spawn(move || run(root, worker_store, rx))?;
        let exports = Exports { tx, store };
        for id in exports.store.pending_exports().unwrap_or_default() {
            let _ = exports.tx.send(id);
        }
        Ok(exports)
    }

    /// Queue a lesson's export (again, if it was rendered before).
    pub fn enqueue(&self, lesson_id: &str) -> Result<(), StoreError> {
        self.store.set_export(lesson_id, &status(ExportState::Queued, 0.0, None))?;
        let _ = self.tx.send(lesson_id.to_string());
        Ok(())
    }
}

fn status(state: ExportState, progress: f64, error: Option<String>) -> ExportStatus {
    ExportStatus { state, progress, error }
}

fn run(root: PathBuf, store: Store, rx: Receiver<String>) {
    for id in rx {
        match store.lesson(&id) {
            Ok(Some((row, _))) if row.state != LessonState::Recording => render(&root, &store, &row),
            Ok(_) => tracing::warn!(lesson = %id, "export skipped: the lesson is gone or still recording"),
            Err(e) => tracing::error!(lesson = %id, error = %e, "export skipped: catalog unreadable"),
        }
    }
}

fn render(root: &std::path::Path, store: &Store, row: &LessonRow) {
    let save = |s: ExportStatus| {
        if let Err(e) = store.set_export(&row.id, &s) {
            tracing::error!(lesson = %row.id, error = %e, "cannot update the export state");
        }
    };
    save(status(ExportState::Rendering, 0.0, None));
    let mut last = Instant::now();
    let mut progress = |p: f32| {
        if last.elapsed() >= PROGRESS_EVERY {
            last = Instant::now();
            save(status(ExportState::Rendering, f64::from(p), None));
        }
    };
    match render_lesson(root, row, &mut progress) {
        Ok(summary) => {
            tracing::info!(lesson = %row.id, bytes = summary.bytes, speed = summary.speed, "lesson export done");
            save(status(ExportState::Done, 1.0, None));
        }
        Err(e) => {
            tracing::error!(lesson = %row.id, error = %e, "lesson export failed");
            save(status(ExportState::Failed, 0.0, Some(e)));
        }
    }
}

fn render_lesson(root: &std::path::Path, row: &LessonRow, progress: &mut dyn FnMut(f32)) -> Result<classcast_recorder::export::ExportSummary, String> {
    let class: ClassId = row.class_id.parse().map_err(|e| format!("{e}"))?;
    let lesson: LessonId = row.id.parse().map_err(|e| format!("{e}"))?;
    let dir = LessonDir::new(root, class, lesson);
    let meta = dir.read_metadata().map_err(|e| e.to_string())?;
    let end = row.ended_at_ms.unwrap_or(row.started_at_ms);
    let duration = Duration::from_millis((end - row.started_at_ms).max(0) as u64);
    let cancel = AtomicBool::new(false);
    classcast_recorder::export::render_export(&dir, &meta, duration, progress, &cancel).map_err(|e| e.to_string())
}
