//! Durable state in SQLite: classes and their listening classrooms, the lesson
//! catalog, the district (schools, classrooms, pairings, terms, timetable, audit), and
//! the admin accounts with their sign-in sessions, webhooks with their delivery log.
//!
//! Invariants:
//! - The schema version is SQLite's `user_version`; `open` applies every missing
//!   migration in order inside one transaction, so a database is always at one
//!   known version.
//! - All SQL lives in this module, so another backend can replace it.
//! - Ids are random, URL-safe and never `main` or `spotlight` (they double as
//!   participant identities and track-key owners).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

mod admins;
mod bridges;
mod district;
mod lessons;
mod schedule;
mod webhooks;

use rusqlite::{Connection, OptionalExtension, params};
pub use bridges::BridgeRow;
pub use admins::{Actor, AdminError, AdminSession, AdminUser, MIN_PASSWORD, SESSION_TTL_MS, check_password, check_username};
pub use district::validate::{FieldError, RoomKind};
pub use district::{
    AuditRow, DistrictError, Holiday, MAX_AUDIT_PAGE, NewPairing, NewPeriod, NewRoom, NewSchool, NewTerm, Pairing, Period, Room, School, Term,
    device_token_hash,
};
pub use schedule::{ClassSession, SessionState};
pub use webhooks::{
    ALL_EVENTS, Attempt, AttemptRecord, Delivery, DeliveryState, DueDelivery, MAX_DELIVERY_PAGE, NextState, Webhook,
};
pub use lessons::{ExportState, ExportStatus, LessonQuery, LessonRow, LessonState, LessonTrackRow, MAX_PAGE as MAX_LESSON_PAGE};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database lock poisoned")]
    Poisoned,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClassRow {
    pub id: String,
    pub title: String,
    pub teacher: String,
    pub created_at: i64,
    /// Whether lessons of this class are recorded (on by default).
    pub record: bool,
    /// The timetable period this class belongs to (`None`: an ad-hoc class).
    pub period_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClassroomRow {
    pub id: String,
    pub class_id: String,
    pub name: String,
    pub created_at: i64,
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE classes (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        teacher TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE classrooms (
        id TEXT PRIMARY KEY,
        class_id TEXT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX classrooms_by_class ON classrooms(class_id);",
    // 2: recording. Classes record by default; the lesson catalog.
    "ALTER TABLE classes ADD COLUMN record INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE lessons (
        id TEXT PRIMARY KEY,
        class_id TEXT NOT NULL,
        title TEXT NOT NULL,
        teacher TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER,
        state TEXT NOT NULL CHECK (state IN ('recording', 'finished', 'interrupted')),
        faults TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX lessons_by_class ON lessons(class_id, started_at_ms);
    CREATE INDEX lessons_by_start ON lessons(started_at_ms);
    CREATE TABLE lesson_tracks (
        lesson_id TEXT NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        codec TEXT NOT NULL,
        parts INTEGER NOT NULL DEFAULT 1,
        duration_ms INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (lesson_id, key)
    );",
    // 3: the composite export of each lesson (rendered after class, one at a time).
    "ALTER TABLE lessons ADD COLUMN export_state TEXT NOT NULL DEFAULT 'none'
        CHECK (export_state IN ('none', 'queued', 'rendering', 'done', 'failed'));
    ALTER TABLE lessons ADD COLUMN export_progress REAL NOT NULL DEFAULT 0;
    ALTER TABLE lessons ADD COLUMN export_error TEXT;",
    // 4: the district: schools, district classrooms with device tokens, pairings, terms and
    // holidays, the weekly timetable, the audit log (apart from the ad-hoc classes above).
    "CREATE TABLE schools (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE rooms (
        id TEXT PRIMARY KEY,
        school_id TEXT NOT NULL REFERENCES schools(id),
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('main', 'listening')),
        token_hash TEXT NOT NULL UNIQUE,
        revoked INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX rooms_by_school ON rooms(school_id);
    CREATE TABLE pairings (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        main_room_id TEXT NOT NULL REFERENCES rooms(id),
        created_at INTEGER NOT NULL
    );
    CREATE INDEX pairings_by_main ON pairings(main_room_id);
    CREATE TABLE pairing_members (
        pairing_id TEXT NOT NULL REFERENCES pairings(id) ON DELETE CASCADE,
        room_id TEXT NOT NULL REFERENCES rooms(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (pairing_id, room_id)
    );
    CREATE INDEX pairing_members_by_room ON pairing_members(room_id);
    CREATE TABLE terms (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        start_date TEXT NOT NULL,
        end_date TEXT NOT NULL CHECK (end_date >= start_date),
        created_at INTEGER NOT NULL
    );
    CREATE TABLE holidays (
        term_id TEXT NOT NULL REFERENCES terms(id) ON DELETE CASCADE,
        date TEXT NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (term_id, date)
    );
    CREATE TABLE timetable (
        id TEXT PRIMARY KEY,
        term_id TEXT NOT NULL REFERENCES terms(id),
        weekday INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
        start_min INTEGER NOT NULL CHECK (start_min BETWEEN 0 AND 1439),
        end_min INTEGER NOT NULL CHECK (end_min > start_min AND end_min <= 1439),
        subject TEXT NOT NULL,
        teacher TEXT NOT NULL,
        main_room_id TEXT NOT NULL REFERENCES rooms(id),
        created_at INTEGER NOT NULL
    );
    CREATE INDEX timetable_by_day ON timetable(weekday, start_min);
    CREATE INDEX timetable_by_term ON timetable(term_id);
    CREATE INDEX timetable_by_main ON timetable(main_room_id);
    CREATE TABLE timetable_listeners (
        entry_id TEXT NOT NULL REFERENCES timetable(id) ON DELETE CASCADE,
        room_id TEXT NOT NULL REFERENCES rooms(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (entry_id, room_id)
    );
    CREATE INDEX timetable_listeners_by_room ON timetable_listeners(room_id);
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        action TEXT NOT NULL,
        entity TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        summary TEXT NOT NULL
    );",
    // 5: scheduled classes. A timetable period owns one class (its lessons share it); each
    // day's opening of it is a class session, so a restart knows what was open.
    "ALTER TABLE classes ADD COLUMN period_id TEXT;
    ALTER TABLE timetable ADD COLUMN record INTEGER NOT NULL DEFAULT 1;
    CREATE UNIQUE INDEX classes_by_period ON classes(period_id) WHERE period_id IS NOT NULL;
    CREATE TABLE class_sessions (
        period_id TEXT NOT NULL,
        date TEXT NOT NULL,
        class_id TEXT NOT NULL,
        opens_at_ms INTEGER NOT NULL,
        closes_at_ms INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
        opened_at_ms INTEGER NOT NULL,
        closed_at_ms INTEGER,
        PRIMARY KEY (period_id, date)
    );
    CREATE INDEX class_sessions_by_state ON class_sessions(state);",
    // 6: admin accounts (argon2id PHC strings; usernames unique regardless of ASCII case)
    // and their sign-in sessions (SHA-256 of the cookie token; gone with their account).
    "CREATE TABLE admin_users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE admin_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL
    );
    CREATE INDEX admin_sessions_by_user ON admin_sessions(user_id);
    CREATE INDEX admin_sessions_by_expiry ON admin_sessions(expires_at_ms);",
    // 7: webhooks, their deliveries (one per event and hook) and every attempt of each.
    "CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        events TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX webhook_deliveries_pending ON webhook_deliveries(state, next_attempt_at_ms);
    CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries(webhook_id, created_at_ms);
    CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        attempt INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        status INTEGER,
        error TEXT,
        duration_ms INTEGER NOT NULL,
        next_attempt_at_ms INTEGER,
        PRIMARY KEY (delivery_id, attempt)
    );",
    // 8: bridges: external sources (RTSP, SRT, RTMP) published into a class.
    "CREATE TABLE bridges (
        id TEXT PRIMARY KEY,
        class_id TEXT NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('main', 'classroom')),
        classroom_id TEXT,
        source TEXT NOT NULL,
        audio INTEGER NOT NULL DEFAULT 1,
        kind TEXT NOT NULL CHECK (kind IN ('rtsp', 'srt', 'rtmp')),
        url TEXT,
        transport TEXT NOT NULL DEFAULT 'tcp',
        stream_key TEXT UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX bridges_by_class ON bridges(class_id);",
];

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Self::init(Connection::open(path)?)
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Store { conn: Arc::new(Mutex::new(conn)) })
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f(&conn)?)
    }

    pub fn create_class(&self, title: &str, teacher: &str, record: bool) -> Result<ClassRow, StoreError> {
        let row = ClassRow { id: new_id('k'), title: title.into(), teacher: teacher.into(), created_at: unix_now(), record, period_id: None };
        self.with(|c| {
            c.execute(
                "INSERT INTO classes (id, title, teacher, created_at, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.id, row.title, row.teacher, row.created_at, row.record],
            )
        })?;
        Ok(row)
    }

    pub fn list_classes(&self) -> Result<Vec<ClassRow>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(&format!("SELECT {CLASS_COLUMNS} FROM classes ORDER BY created_at DESC, id"))?;
            st.query_map([], class_row)?.collect()
        })
    }

    pub fn class(&self, id: &str) -> Result<Option<ClassRow>, StoreError> {
        self.with(|c| {
            c.query_row(&format!("SELECT {CLASS_COLUMNS} FROM classes WHERE id = ?1"), [id], class_row).optional()
        })
    }

    pub fn delete_class(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| c.execute("DELETE FROM classes WHERE id = ?1", [id])).map(|n| n > 0)
    }

    pub fn add_classroom(&self, class_id: &str, name: &str) -> Result<ClassroomRow, StoreError> {
        let row = ClassroomRow { id: new_id('r'), class_id: class_id.into(), name: name.into(), created_at: unix_now() };
        self.with(|c| {
            c.execute(
                "INSERT INTO classrooms (id, class_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![row.id, row.class_id, row.name, row.created_at],
            )
        })?;
        Ok(row)
    }

    pub fn classrooms(&self, class_id: &str) -> Result<Vec<ClassroomRow>, StoreError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, class_id, name, created_at FROM classrooms WHERE class_id = ?1 ORDER BY created_at, id",
            )?;
            st.query_map([class_id], classroom_row)?.collect()
        })
    }

    /// The classes owned by timetable periods: (period id, class id).
    pub fn classroom(&self, class_id: &str, id: &str) -> Result<Option<ClassroomRow>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT id, class_id, name, created_at FROM classrooms WHERE class_id = ?1 AND id = ?2",
                [class_id, id],
                classroom_row,
            )
            .optional()
        })
    }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tx = conn.transaction()?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
    }
    tx.commit()
}

const CLASS_COLUMNS: &str = "id, title, teacher, created_at, record, period_id";

pub(crate) fn class_row(r: &rusqlite::Row) -> rusqlite::Result<ClassRow> {
    Ok(ClassRow { id: r.get(0)?, title: r.get(1)?, teacher: r.get(2)?, created_at: r.get(3)?, record: r.get(4)?, period_id: r.get(5)? })
}

fn classroom_row(r: &rusqlite::Row) -> rusqlite::Result<ClassroomRow> {
    Ok(ClassroomRow { id: r.get(0)?, class_id: r.get(1)?, name: r.get(2)?, created_at: r.get(3)? })
}

pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn unix_now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A random id: a kind letter and 12 lowercase hex digits.
pub fn new_id(kind: char) -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{kind}{:012x}", n & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_classrooms_round_trip() {
        let s = Store::open_in_memory().unwrap();
        let k = s.create_class("数学 · 三年级", "王老师", true).unwrap();
        let r = s.add_classroom(&k.id, "龙泉小学教学点").unwrap();
        assert_eq!(s.class(&k.id).unwrap(), Some(k.clone()));
        assert_eq!(s.classrooms(&k.id).unwrap(), vec![r.clone()]);
        assert_eq!(s.classroom(&k.id, &r.id).unwrap(), Some(r.clone()));
        assert_eq!(s.classroom("other", &r.id).unwrap(), None);
        assert!(s.delete_class(&k.id).unwrap());
        assert!(s.classrooms(&k.id).unwrap().is_empty(), "classrooms go with their class");
        assert!(!s.delete_class(&k.id).unwrap());
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let path = std::env::temp_dir().join(format!("classcast-store-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let id = Store::open(&path).unwrap().create_class("A", "B", false).unwrap().id;
        let s = Store::open(&path).unwrap();
        let row = s.class(&id).unwrap().unwrap();
        assert_eq!((row.title.as_str(), row.record), ("A", false));
        let v: usize = s.with(|c| c.pragma_query_value(None, "user_version", |r| r.get(0))).unwrap();
        assert_eq!(v, MIGRATIONS.len());
        drop(s);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn ids_never_collide_with_reserved_names() {
        let id = new_id('r');
        assert_eq!(id.len(), 13);
        assert!(id != "main" && id != "spotlight" && !id.contains('/'));
    }
}
