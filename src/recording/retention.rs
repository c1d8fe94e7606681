//! Retention: lessons that ended more than `--retention-days` ago are deleted, files
//! first (through the layout module, the only code that names recording paths), then
//! their catalog rows. Checked at start and every hour on its own thread.
//!
//! Invariants: a lesson still being recorded is never deleted (it has no end); a lesson
//! whose folder cannot be removed keeps its catalog row (and is retried next time), so
//! the catalog never lists less than what is on disk... except files that are gone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use classcast_recorder::layout::{ClassId, LessonDir, LessonId};

use crate::store::Store;

const EVERY: Duration = Duration::from_secs(3600);

/// Start the retention thread (nothing to do when `days` is 0: keep forever).
pub fn start(root: PathBuf, store: Store, days: u32) -> std::io::Result<()> {
    if days == 0 {
        return Ok(());
    }
    std::thread::Builder::new().name("retention".into()).spawn(move || loop {
        let cutoff = crate::store::unix_now_ms() - i64::from(days) * 86_400_000;
        let removed = sweep(&root, &store, cutoff);
        if removed > 0 {
            tracing::info!(removed, days, "old lessons deleted (retention)");
        }
        std::thread::sleep(EVERY);
    })?;
    Ok(())
}

/// Deletes every lesson that ended before `cutoff_ms`; returns how many went.
pub fn sweep(root: &Path, store: &Store, cutoff_ms: i64) -> usize {
    let old = match store.lessons_ended_before(cutoff_ms) {
        Ok(old) => old,
        Err(e) => {
            tracing::error!(error = %e, "retention: cannot read the catalog");
            return 0;
        }
    };
    old.iter().filter(|(class, lesson)| remove(root, store, class, lesson)).count()
}

fn remove(root: &Path, store: &Store, class: &str, lesson: &str) -> bool {
    let ids: Result<(ClassId, LessonId), _> = class.parse().and_then(|c| Ok((c, lesson.parse()?)));
    let removed = ids.map(|(class_id, lesson_id)| LessonDir::new(root, class_id, lesson_id).remove());
    if let Ok(Err(e)) = removed {
        tracing::error!(%lesson, error = %e, "retention: cannot delete the recording; kept for the next sweep");
        return false;
    }
    store.delete_lesson(lesson).is_ok_and(|deleted| deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LessonState;

    #[test]
    fn lessons_past_retention_go_from_disk_and_catalog_and_nothing_else() {
        let root = std::env::temp_dir().join(format!("classcast-retention-{}", std::process::id()));
        let store = Store::open_in_memory().unwrap();
        let lesson = |ended: Option<i64>| {
            let row = store.begin_lesson("k1", "L", "T", 1_000).unwrap();
            let dir = LessonDir::new(&root, "k1".parse().unwrap(), row.id.parse().unwrap());
            dir.create().unwrap();
            std::fs::write(dir.path().join("main.camera.part1.mp4"), b"x").unwrap();
            if let Some(at) = ended {
                store.end_lesson(&row.id, at, LessonState::Finished).unwrap();
            }
            (row.id, dir)
        };
        let (old, old_dir) = lesson(Some(5_000));
        let (recent, recent_dir) = lesson(Some(50_000));
        let (live, live_dir) = lesson(None);
        assert_eq!(sweep(&root, &store, 10_000), 1);
        assert!(!old_dir.path().exists() && store.lesson(&old).unwrap().is_none(), "the old lesson is gone");
        for (id, dir) in [(recent, recent_dir), (live, live_dir)] {
            assert!(dir.path().exists() && store.lesson(&id).unwrap().is_some(), "{id} is kept");
        }
        assert_eq!(sweep(&root, &store, 10_000), 0, "nothing twice");
        let _ = std::fs::remove_dir_all(&root);
    }
}
