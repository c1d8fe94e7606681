//! The lesson catalog: one row per recorded lesson, one per recorded track.
//!
//! Invariants:
//! - A lesson is `recording` until it is finished; a lesson still `recording`
//!   when the server starts was cut by a crash and becomes `interrupted`.
//! - Listing is paged (`limit` at most 200) and ordered newest first.
//! - Text search matches title or teacher, case-insensitively, with `%`/`_`
//!   taken literally.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, new_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LessonState {
    Recording,
    Finished,
    Interrupted,
}

impl LessonState {
    fn as_str(self) -> &'static str {
        match self {
            LessonState::Recording => "recording",
            LessonState::Finished => "finished",
            LessonState::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> LessonState {
        match s {
            "finished" => LessonState::Finished,
            "interrupted" => LessonState::Interrupted,
            _ => LessonState::Recording,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LessonRow {
    pub id: String,
    pub class_id: String,
    pub title: String,
    pub teacher: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub state: LessonState,
    /// Recorder faults during the lesson, one per line (empty: none).
    pub faults: String,
    pub export: ExportStatus,
}

/// Where the lesson's composite export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportState {
    None,
    Queued,
    Rendering,
    Done,
    Failed,
}

impl ExportState {
    fn as_str(self) -> &'static str {
        match self {
            ExportState::None => "none",
            ExportState::Queued => "queued",
            ExportState::Rendering => "rendering",
            ExportState::Done => "done",
            ExportState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> ExportState {
        match s {
            "queued" => ExportState::Queued,
            "rendering" => ExportState::Rendering,
            "done" => ExportState::Done,
            "failed" => ExportState::Failed,
            _ => ExportState::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportStatus {
    pub state: ExportState,
    /// 0.0 ..= 1.0 while rendering; 1.0 when done.
    pub progress: f64,
    pub error: Option<String>,
}

impl Eq for ExportStatus {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LessonTrackRow {
    pub key: String,
    pub codec: String,
    pub parts: u32,
    pub duration_ms: i64,
    pub bytes: i64,
}

/// A page of the catalog.
#[derive(Debug, Clone, Default)]
pub struct LessonQuery {
    pub class_id: Option<String>,
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

pub const MAX_PAGE: u32 = 200;

const LESSON_COLUMNS: &str = "id, class_id, title, teacher, started_at_ms, ended_at_ms, state, faults, export_state, export_progress, export_error";

impl Store {
    pub fn begin_lesson(&self, class_id: &str, title: &str, teacher: &str, started_at_ms: i64) -> Result<LessonRow, StoreError> {
        let row = LessonRow {
            id: new_id('l'),
            class_id: class_id.into(),
            title: title.into(),
            teacher: teacher.into(),
            started_at_ms,
            ended_at_ms: None,
            state: LessonState::Recording,
            faults: String::new(),
            export: ExportStatus { state: ExportState::None, progress: 0.0, error: None },
        };
        self.with(|c| {
            c.execute(
                "INSERT INTO lessons (id, class_id, title, teacher, started_at_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, 'recording')",
                params![row.id, row.class_id, row.title, row.teacher, row.started_at_ms],
            )
        })?;
        Ok(row)
    }

    /// Record (or update) what is known of one track of a lesson.
    pub fn put_lesson_track(&self, lesson_id: &str, t: &LessonTrackRow) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO lesson_tracks (lesson_id, key, codec, parts, duration_ms, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (lesson_id, key) DO UPDATE SET codec = ?3, parts = ?4, duration_ms = ?5, bytes = ?6",
                params![lesson_id, t.key, t.codec, t.parts, t.duration_ms, t.bytes],
            )
        })?;
        Ok(())
    }

    pub fn add_lesson_fault(&self, lesson_id: &str, fault: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE lessons SET faults = CASE faults WHEN '' THEN ?2 ELSE faults || char(10) || ?2 END WHERE id = ?1",
                params![lesson_id, fault],
            )
        })?;
        Ok(())
    }

    pub fn end_lesson(&self, lesson_id: &str, ended_at_ms: i64, state: LessonState) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("UPDATE lessons SET ended_at_ms = ?2, state = ?3 WHERE id = ?1", params![lesson_id, ended_at_ms, state.as_str()])
        })?;
        Ok(())
    }

    /// Lessons that ended before `ended_before_ms` (retention), oldest first: (class, lesson).
    pub fn lessons_ended_before(&self, ended_before_ms: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let sql = "SELECT class_id, id FROM lessons WHERE state != 'recording' AND ended_at_ms IS NOT NULL AND ended_at_ms < ?1
                       ORDER BY ended_at_ms";
            c.prepare(sql)?.query_map([ended_before_ms], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    /// Removes a lesson and its tracks from the catalog.
    pub fn delete_lesson(&self, lesson_id: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM lessons WHERE id = ?1", [lesson_id])? > 0))
    }

    /// Where the lesson's export stands now.
    pub fn set_export(&self, lesson_id: &str, status: &ExportStatus) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE lessons SET export_state = ?2, export_progress = ?3, export_error = ?4 WHERE id = ?1",
                params![lesson_id, status.state.as_str(), status.progress, status.error],
            )
        })?;
        Ok(())
    }

    /// Lessons whose export is queued or was cut while rendering, oldest first.
    pub fn pending_exports(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let sql = "SELECT id FROM lessons WHERE export_state IN ('queued', 'rendering') ORDER BY started_at_ms";
            c.prepare(sql)?.query_map([], |r| r.get(0))?.collect()
        })
    }

    /// Lessons left `recording` by a crash become `interrupted`; returns their ids.
    pub fn interrupt_unfinished_lessons(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let ids: Vec<String> =
                c.prepare("SELECT id FROM lessons WHERE state = 'recording'")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
            c.execute("UPDATE lessons SET state = 'interrupted' WHERE state = 'recording'", [])?;
            Ok(ids)
        })
    }

    pub fn lesson(&self, id: &str) -> Result<Option<(LessonRow, Vec<LessonTrackRow>)>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {LESSON_COLUMNS} FROM lessons WHERE id = ?1");
            let Some(lesson) = c.query_row(&sql, [id], lesson_row).optional()? else { return Ok(None) };
            let mut st = c.prepare("SELECT key, codec, parts, duration_ms, bytes FROM lesson_tracks WHERE lesson_id = ?1 ORDER BY key")?;
            let tracks = st.query_map([id], track_row)?.collect::<Result<_, _>>()?;
            Ok(Some((lesson, tracks)))
        })
    }

    /// A page of lessons, newest first, and the total count matching the query.
    pub fn lessons(&self, q: &LessonQuery) -> Result<(Vec<LessonRow>, u64), StoreError> {
        let text = q.text.as_deref().map(like_pattern).unwrap_or_else(|| "%".into());
        let class = q.class_id.clone().unwrap_or_default();
        let filter = "(?1 = '' OR class_id = ?1) AND (title LIKE ?2 ESCAPE '\\' OR teacher LIKE ?2 ESCAPE '\\')";
        let limit = q.limit.clamp(1, MAX_PAGE);
        self.with(|c| {
            let total: u64 = c.query_row(&format!("SELECT COUNT(*) FROM lessons WHERE {filter}"), params![class, text], |r| r.get(0))?;
            let sql = format!("SELECT {LESSON_COLUMNS} FROM lessons WHERE {filter} ORDER BY started_at_ms DESC, id LIMIT ?3 OFFSET ?4");
            let rows = c.prepare(&sql)?.query_map(params![class, text, limit, q.offset], lesson_row)?.collect::<Result<_, _>>()?;
            Ok((rows, total))
        })
    }
}

fn like_pattern(text: &str) -> String {
    let escaped: String = text.chars().flat_map(|ch| match ch {
        '%' | '_' | '\\' => vec!['\\', ch],
        _ => vec![ch],
    }).collect();
    format!("%{escaped}%")
}

fn lesson_row(r: &rusqlite::Row) -> rusqlite::Result<LessonRow> {
    let state: String = r.get(6)?;
    Ok(LessonRow {
        id: r.get(0)?,
        class_id: r.get(1)?,
        title: r.get(2)?,
        teacher: r.get(3)?,
        started_at_ms: r.get(4)?,
        ended_at_ms: r.get(5)?,
        state: LessonState::parse(&state),
        faults: r.get(7)?,
        export: ExportStatus { state: ExportState::parse(&r.get::<_, String>(8)?), progress: r.get(9)?, error: r.get(10)? },
    })
}

fn track_row(r: &rusqlite::Row) -> rusqlite::Result<LessonTrackRow> {
    Ok(LessonTrackRow { key: r.get(0)?, codec: r.get(1)?, parts: r.get(2)?, duration_ms: r.get(3)?, bytes: r.get(4)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(key: &str, ms: i64) -> LessonTrackRow {
        LessonTrackRow { key: key.into(), codec: "H264".into(), parts: 1, duration_ms: ms, bytes: 1000 }
    }

    #[test]
    fn a_lesson_goes_from_recording_to_finished_with_its_tracks() {
        let s = Store::open_in_memory().unwrap();
        let l = s.begin_lesson("k1", "数学 第3课", "王老师", 1_000).unwrap();
        s.put_lesson_track(&l.id, &track("main/camera", 10)).unwrap();
        s.put_lesson_track(&l.id, &track("main/camera", 30_000)).unwrap();
        s.put_lesson_track(&l.id, &track("main/mic", 30_100)).unwrap();
        s.add_lesson_fault(&l.id, "main/camera: pipeline error").unwrap();
        s.add_lesson_fault(&l.id, "main/camera: restarted as part 2").unwrap();
        s.end_lesson(&l.id, 31_000, LessonState::Finished).unwrap();
        let (row, tracks) = s.lesson(&l.id).unwrap().unwrap();
        assert_eq!(row.state, LessonState::Finished);
        assert_eq!(row.ended_at_ms, Some(31_000));
        assert_eq!(row.faults.lines().count(), 2);
        assert_eq!(tracks.iter().map(|t| t.duration_ms).collect::<Vec<_>>(), [30_000, 30_100]);
        assert!(s.lesson("nope").unwrap().is_none());
    }

    #[test]
    fn unfinished_lessons_become_interrupted_at_startup() {
        let s = Store::open_in_memory().unwrap();
        let a = s.begin_lesson("k1", "A", "T", 1).unwrap();
        let b = s.begin_lesson("k1", "B", "T", 2).unwrap();
        s.end_lesson(&b.id, 3, LessonState::Finished).unwrap();
        assert_eq!(s.interrupt_unfinished_lessons().unwrap(), vec![a.id.clone()]);
        assert_eq!(s.lesson(&a.id).unwrap().unwrap().0.state, LessonState::Interrupted);
        assert!(s.interrupt_unfinished_lessons().unwrap().is_empty());
    }

    #[test]
    fn exports_are_tracked_and_pending_ones_found_again() {
        let s = Store::open_in_memory().unwrap();
        let a = s.begin_lesson("k1", "A", "T", 1).unwrap();
        let b = s.begin_lesson("k1", "B", "T", 2).unwrap();
        assert_eq!(s.lesson(&a.id).unwrap().unwrap().0.export.state, ExportState::None);
        let st = |state, progress| ExportStatus { state, progress, error: None };
        s.set_export(&a.id, &st(ExportState::Rendering, 0.5)).unwrap();
        s.set_export(&b.id, &st(ExportState::Queued, 0.0)).unwrap();
        assert_eq!(s.pending_exports().unwrap(), vec![a.id.clone(), b.id.clone()]);
        s.set_export(&a.id, &ExportStatus { state: ExportState::Failed, progress: 0.5, error: Some("no tracks".into()) }).unwrap();
        let row = s.lesson(&a.id).unwrap().unwrap().0;
        assert_eq!((row.export.state, row.export.error.as_deref()), (ExportState::Failed, Some("no tracks")));
        assert_eq!(s.pending_exports().unwrap(), vec![b.id]);
    }

    #[test]
    fn catalog_pages_filters_and_searches_literally() {
        let s = Store::open_in_memory().unwrap();
        for i in 0..25 {
            s.begin_lesson(if i % 2 == 0 { "k1" } else { "k2" }, &format!("Lesson {i}"), "Ms. Li", i).unwrap();
        }
        s.begin_lesson("k1", "100% review", "Mr. Wang", 100).unwrap();
        let q = |class: Option<&str>, text: Option<&str>, limit, offset| LessonQuery {
            class_id: class.map(Into::into),
            text: text.map(Into::into),
            limit,
            offset,
        };
        let (page, total) = s.lessons(&q(None, None, 10, 0)).unwrap();
        assert_eq!((page.len(), total), (10, 26));
        assert_eq!(page[0].title, "100% review", "newest first");
        let (page, total) = s.lessons(&q(Some("k2"), None, 200, 10)).unwrap();
        assert_eq!((page.len(), total), (2, 12));
        let (page, _) = s.lessons(&q(None, Some("100%"), 10, 0)).unwrap();
        assert_eq!(page.len(), 1);
        let (page, _) = s.lessons(&q(None, Some("wang"), 10, 0)).unwrap();
        assert_eq!(page.len(), 1, "teacher search is case-insensitive");
        let (page, _) = s.lessons(&q(None, Some("_"), 10, 0)).unwrap();
        assert!(page.is_empty(), "underscore is literal");
    }
}
