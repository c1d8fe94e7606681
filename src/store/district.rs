//! District data for scheduled classes: schools, district classrooms (main or
//! listening, each with a device token), pairings, terms with holidays, the weekly
//! timetable, and the audit log of admin changes.
//!
//! Invariants:
//! - Every change runs in one transaction with its audit row: a request is saved
//!   whole or not at all, and no change goes unaudited.
//! - Inputs are checked (`validate`) inside that transaction against the rows they
//!   reference; the connection lock serialises writers, so two requests cannot
//!   both pass one overlap check.
//! - A device token is returned once, at creation; only its SHA-256 is stored.
//! - A row still referenced (a school's classrooms, a classroom in a pairing or a
//!   period, a term's periods) is not deleted: `InUse`.
//! - These tables (`schools`, `rooms`, `pairings`, `terms`, `timetable`, ...) are
//!   apart from the ad-hoc `classes`/`classrooms`.

pub mod validate;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, new_id, unix_now, unix_now_ms};
use validate::{Checked, FieldError, RoomKind, Slot};

/// Largest page of the audit log.
pub const MAX_AUDIT_PAGE: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum DistrictError {
    #[error("{}: {}", .0.field, .0.reason)]
    Invalid(FieldError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InUse(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<FieldError> for DistrictError {
    fn from(e: FieldError) -> Self {
        DistrictError::Invalid(e)
    }
}

impl From<rusqlite::Error> for DistrictError {
    fn from(e: rusqlite::Error) -> Self {
        DistrictError::Store(StoreError::Sql(e))
    }
}

type Result<T> = std::result::Result<T, DistrictError>;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct School {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub school_id: String,
    pub name: String,
    pub kind: RoomKind,
    /// The device token no longer opens anything.
    pub revoked: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Pairing {
    pub id: String,
    pub name: String,
    pub main_classroom_id: String,
    pub listening_classroom_ids: Vec<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Holiday {
    pub date: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Term {
    pub id: String,
    pub name: String,
    pub start: String,
    pub end: String,
    pub holidays: Vec<Holiday>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Period {
    pub id: String,
    pub term_id: String,
    pub weekday: u8,
    pub start: String,
    pub end: String,
    pub subject: String,
    pub teacher: String,
    pub main_classroom_id: String,
    pub listening_classroom_ids: Vec<String>,
    /// The period's lessons are recorded.
    pub record: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: i64,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub summary: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewSchool {
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewRoom {
    pub school_id: String,
    pub name: String,
    /// `main` or `listening`.
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewPairing {
    pub name: String,
    pub main_classroom_id: String,
    pub listening_classroom_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewTerm {
    pub name: String,
    pub start: String,
    pub end: String,
    pub holidays: Vec<Holiday>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewPeriod {
    pub term_id: String,
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: Option<i64>,
    /// `HH:MM`.
    pub start: String,
    pub end: String,
    pub subject: String,
    pub teacher: String,
    pub main_classroom_id: String,
    pub listening_classroom_ids: Vec<String>,
    /// Record the period's lessons (default: yes).
    pub record: Option<bool>,
}

/// The SHA-256 of a device token, hex: what the store keeps.
pub fn device_token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_device_token() -> String {
    use base64::Engine;
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    format!("cdt_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl Store {
    /// One request's change: its checks, writes and audit row in one transaction.
    fn change<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&conn)
    }

    // Schools.

    pub fn create_school(&self, new: &NewSchool) -> Result<School> {
        let row = School { id: new_id('s'), name: validate::text("name", &new.name)?, created_at: unix_now() };
        self.change(|c| {
            c.execute("INSERT INTO schools (id, name, created_at) VALUES (?1, ?2, ?3)", params![row.id, row.name, row.created_at])?;
            audit(c, "create", "school", &row.id, &row.name)
        })?;
        Ok(row)
    }

    pub fn schools(&self) -> Result<Vec<School>> {
        self.read(|c| rows(c, "SELECT id, name, created_at FROM schools ORDER BY name, id", [], school_row))
    }

    pub fn school(&self, id: &str) -> Result<Option<School>> {
        self.read(|c| Ok(c.query_row("SELECT id, name, created_at FROM schools WHERE id = ?1", [id], school_row).optional()?))
    }

    pub fn delete_school(&self, id: &str) -> Result<()> {
        self.change(|c| {
            must_exist(c, "schools", "school", id)?;
            refuse_if(c, "SELECT 1 FROM rooms WHERE school_id = ?1", id, "the school still has classrooms")?;
            c.execute("DELETE FROM schools WHERE id = ?1", [id])?;
            audit(c, "delete", "school", id, "")
        })
    }

    // District classrooms.

    /// The new classroom and its device token (shown only now).
    pub fn create_room(&self, new: &NewRoom) -> Result<(Room, String)> {
        let name = validate::text("name", &new.name)?;
        let kind = RoomKind::parse("kind", new.kind.trim())?;
        let token = new_device_token();
        let row = Room { id: new_id('d'), school_id: new.school_id.clone(), name, kind, revoked: false, created_at: unix_now() };
        self.change(|c| {
            if !exists(c, "schools", &row.school_id)? {
                return Err(FieldError::new("school_id", "no such school").into());
            }
            c.execute(
                "INSERT INTO rooms (id, school_id, name, kind, token_hash, revoked, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                params![row.id, row.school_id, row.name, kind.as_str(), device_token_hash(&token), row.created_at],
            )?;
            audit(c, "create", "room", &row.id, &format!("{} classroom {} in school {}", kind.as_str(), row.name, row.school_id))
        })?;
        Ok((row, token))
    }

    /// Classrooms, all or of one school.
    pub fn district_rooms(&self, school_id: Option<&str>) -> Result<Vec<Room>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE (?1 IS NULL OR school_id = ?1) ORDER BY school_id, name, id");
        self.read(|c| rows(c, &sql, [school_id], room_row))
    }

    pub fn district_room(&self, id: &str) -> Result<Option<Room>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?1");
        self.read(|c| Ok(c.query_row(&sql, [id], room_row).optional()?))
    }

    /// The classroom a device token belongs to (revoked or not: the caller refuses revoked ones).
    pub fn room_by_device_token(&self, token: &str) -> Result<Option<Room>> {
        let sql = format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE token_hash = ?1");
        self.read(|c| Ok(c.query_row(&sql, [device_token_hash(token)], room_row).optional()?))
    }

    pub fn revoke_room(&self, id: &str) -> Result<Room> {
        self.change(|c| {
            must_exist(c, "rooms", "classroom", id)?;
            c.execute("UPDATE rooms SET revoked = 1 WHERE id = ?1", [id])?;
            audit(c, "revoke", "room", id, "device token revoked")?;
            Ok(c.query_row(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?1"), [id], room_row)?)
        })
    }

    pub fn delete_room(&self, id: &str) -> Result<()> {
        self.change(|c| {
            must_exist(c, "rooms", "classroom", id)?;
            let pairing = "SELECT 1 FROM pairings WHERE main_room_id = ?1 UNION ALL SELECT 1 FROM pairing_members WHERE room_id = ?1";
            refuse_if(c, pairing, id, "the classroom is in a pairing")?;
            let period = "SELECT 1 FROM timetable WHERE main_room_id = ?1 UNION ALL SELECT 1 FROM timetable_listeners WHERE room_id = ?1";
            refuse_if(c, period, id, "the classroom is in the timetable")?;
            c.execute("DELETE FROM rooms WHERE id = ?1", [id])?;
            audit(c, "delete", "room", id, "")
        })
    }

    // Pairings (a main classroom and the listening classrooms it serves).

    pub fn create_pairing(&self, new: &NewPairing) -> Result<Pairing> {
        let name = validate::optional_text("name", &new.name)?;
        validate::listening_list(&new.main_classroom_id, &new.listening_classroom_ids, true)?;
        let row = Pairing {
            id: new_id('p'),
            name,
            main_classroom_id: new.main_classroom_id.clone(),
            listening_classroom_ids: new.listening_classroom_ids.clone(),
            created_at: unix_now(),
        };
        self.change(|c| {
            check_rooms(c, &row.main_classroom_id, &row.listening_classroom_ids)?;
            c.execute(
                "INSERT INTO pairings (id, name, main_room_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![row.id, row.name, row.main_classroom_id, row.created_at],
            )?;
            insert_members(c, "INSERT INTO pairing_members (pairing_id, room_id, position) VALUES (?1, ?2, ?3)", &row.id, &row.listening_classroom_ids)?;
            audit(c, "create", "pairing", &row.id, &format!("{} -> {}", row.main_classroom_id, row.listening_classroom_ids.join(", ")))
        })?;
        Ok(row)
    }

    pub fn pairings(&self) -> Result<Vec<Pairing>> {
        self.read(|c| {
            let heads = rows(c, &format!("SELECT {PAIRING_COLUMNS} FROM pairings ORDER BY created_at, id"), [], pairing_row)?;
            heads.into_iter().map(|p| with_pairing_members(c, p)).collect()
        })
    }

    pub fn pairing(&self, id: &str) -> Result<Option<Pairing>> {
        self.read(|c| {
            let head = c.query_row(&format!("SELECT {PAIRING_COLUMNS} FROM pairings WHERE id = ?1"), [id], pairing_row).optional()?;
            head.map(|p| with_pairing_members(c, p)).transpose()
        })
    }

    pub fn delete_pairing(&self, id: &str) -> Result<()> {
        self.change(|c| {
            must_exist(c, "pairings", "pairing", id)?;
            c.execute("DELETE FROM pairings WHERE id = ?1", [id])?;
            audit(c, "delete", "pairing", id, "")
        })
    }

    // Terms and holidays.

    pub fn create_term(&self, new: &NewTerm) -> Result<Term> {
        let (start, end) = (validate::date("start", new.start.trim())?, validate::date("end", new.end.trim())?);
        validate::ordered(&start, &end, true)?;
        let row = Term { id: new_id('t'), name: validate::text("name", &new.name)?, start, end, holidays: Vec::new(), created_at: unix_now() };
        let holidays = term_holidays(&row, &new.holidays)?;
        self.change(|c| {
            c.execute(
                "INSERT INTO terms (id, name, start_date, end_date, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.id, row.name, row.start, row.end, row.created_at],
            )?;
            holidays.iter().try_for_each(|h| insert_holiday(c, &row.id, h))?;
            audit(c, "create", "term", &row.id, &format!("{} {}..{}, {} holidays", row.name, row.start, row.end, holidays.len()))
        })?;
        Ok(Term { holidays, ..row })
    }

    pub fn terms(&self) -> Result<Vec<Term>> {
        self.read(|c| {
            let heads = rows(c, &format!("SELECT {TERM_COLUMNS} FROM terms ORDER BY start_date, id"), [], term_row)?;
            heads.into_iter().map(|t| with_holidays(c, t)).collect()
        })
    }

    pub fn term(&self, id: &str) -> Result<Option<Term>> {
        self.read(|c| load_term(c, id))
    }

    pub fn delete_term(&self, id: &str) -> Result<()> {
        self.change(|c| {
            must_exist(c, "terms", "term", id)?;
            refuse_if(c, "SELECT 1 FROM timetable WHERE term_id = ?1", id, "the term still has timetable periods")?;
            c.execute("DELETE FROM terms WHERE id = ?1", [id])?;
            audit(c, "delete", "term", id, "")
        })
    }

    /// Adds a holiday to a term; returns the term.
    pub fn add_holiday(&self, term_id: &str, new: &Holiday) -> Result<Term> {
        self.change(|c| {
            let term = load_term(c, term_id)?.ok_or_else(|| not_found("term", term_id))?;
            let h = holiday(&term, "", new)?;
            if term.holidays.iter().any(|x| x.date == h.date) {
                return Err(FieldError::new("date", "already a holiday of this term").into());
            }
            insert_holiday(c, term_id, &h)?;
            audit(c, "create", "holiday", term_id, &format!("{} {}", h.date, h.name))?;
            load_term(c, term_id)?.ok_or_else(|| not_found("term", term_id))
        })
    }

    pub fn delete_holiday(&self, term_id: &str, date: &str) -> Result<()> {
        self.change(|c| {
            if c.execute("DELETE FROM holidays WHERE term_id = ?1 AND date = ?2", [term_id, date])? == 0 {
                return Err(DistrictError::NotFound(format!("term {term_id} has no holiday on {date}")));
            }
            audit(c, "delete", "holiday", term_id, date)
        })
    }

    // The timetable.

    pub fn create_period(&self, new: &NewPeriod) -> Result<Period> {
        let (weekday, start, end) = period_times(new)?;
        let row = Period {
            id: new_id('e'),
            term_id: new.term_id.clone(),
            weekday,
            start: validate::format_time(start),
            end: validate::format_time(end),
            subject: validate::text("subject", &new.subject)?,
            teacher: validate::optional_text("teacher", &new.teacher)?,
            main_classroom_id: new.main_classroom_id.clone(),
            listening_classroom_ids: new.listening_classroom_ids.clone(),
            record: new.record.unwrap_or(true),
            created_at: unix_now(),
        };
        validate::listening_list(&row.main_classroom_id, &row.listening_classroom_ids, false)?;
        self.change(|c| {
            check_period(c, &row, start, end)?;
            insert_period(c, &row, start, end)?;
            let summary = format!("{} weekday {} {}-{} {}", row.term_id, row.weekday, row.start, row.end, row.subject);
            audit(c, "create", "period", &row.id, &summary)
        })?;
        Ok(row)
    }

    /// Periods, all or of one term, by weekday and start.
    pub fn timetable(&self, term_id: Option<&str>) -> Result<Vec<Period>> {
        let sql = format!("SELECT {PERIOD_COLUMNS} FROM timetable WHERE (?1 IS NULL OR term_id = ?1) ORDER BY weekday, start_min, id");
        self.read(|c| {
            rows(c, &sql, [term_id], period_row)?.into_iter().map(|p| with_listeners(c, p)).collect()
        })
    }

    pub fn period(&self, id: &str) -> Result<Option<Period>> {
        let sql = format!("SELECT {PERIOD_COLUMNS} FROM timetable WHERE id = ?1");
        self.read(|c| c.query_row(&sql, [id], period_row).optional()?.map(|p| with_listeners(c, p)).transpose())
    }

    pub fn delete_period(&self, id: &str) -> Result<()> {
        self.change(|c| {
            must_exist(c, "timetable", "period", id)?;
            c.execute("DELETE FROM timetable WHERE id = ?1", [id])?;
            audit(c, "delete", "period", id, "")
        })
    }

    // The audit log.

    /// A page of the audit log, newest first, and the total number of rows.
    pub fn audit_log(&self, limit: u32, offset: u32) -> Result<(Vec<AuditRow>, u64)> {
        let limit = limit.clamp(1, MAX_AUDIT_PAGE);
        self.read(|c| {
            let total: u64 = c.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
            let sql = "SELECT id, at_ms, action, entity, entity_id, summary FROM audit_log ORDER BY id DESC LIMIT ?1 OFFSET ?2";
            Ok((rows(c, sql, [limit, offset], audit_row)?, total))
        })
    }
}

/// Every row `sql` finds, each read by `f`.
fn rows<T>(c: &Connection, sql: &str, p: impl rusqlite::Params, f: fn(&rusqlite::Row) -> rusqlite::Result<T>) -> Result<Vec<T>> {
    Ok(c.prepare(sql)?.query_map(p, f)?.collect::<rusqlite::Result<_>>()?)
}

fn not_found(what: &str, id: &str) -> DistrictError {
    DistrictError::NotFound(format!("{what} {id} does not exist"))
}

/// `table` is one of this module's constant table names, never user input.
fn exists(c: &Connection, table: &str, id: &str) -> Result<bool> {
    Ok(c.query_row(&format!("SELECT 1 FROM {table} WHERE id = ?1"), [id], |_| Ok(())).optional()?.is_some())
}

fn must_exist(c: &Connection, table: &str, what: &str, id: &str) -> Result<()> {
    if exists(c, table, id)? { Ok(()) } else { Err(not_found(what, id)) }
}

/// `InUse(reason)` when `sql` (one `?1` parameter) finds a row.
fn refuse_if(c: &Connection, sql: &str, id: &str, reason: &str) -> Result<()> {
    match c.query_row(sql, [id], |_| Ok(())).optional()? {
        Some(()) => Err(DistrictError::InUse(format!("{id}: {reason}"))),
        None => Ok(()),
    }
}

fn audit(c: &Connection, action: &str, entity: &str, id: &str, summary: &str) -> Result<()> {
    Ok(audit_entry(c, action, entity, id, summary)?)
}

/// One audit row, now; the other store modules write theirs through this too.
pub(super) fn audit_entry(c: &Connection, action: &str, entity: &str, id: &str, summary: &str) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO audit_log (at_ms, action, entity, entity_id, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![unix_now_ms(), action, entity, id, summary],
    )?;
    Ok(())
}

fn room_kind(c: &Connection, id: &str) -> Result<Option<RoomKind>> {
    let kind: Option<String> = c.query_row("SELECT kind FROM rooms WHERE id = ?1", [id], |r| r.get(0)).optional()?;
    Ok(kind.map(|k| kind_from_db(&k)))
}

fn kind_from_db(s: &str) -> RoomKind {
    if s == "listening" { RoomKind::Listening } else { RoomKind::Main }
}

/// The main classroom exists and is main; each listed one exists and is listening.
fn check_rooms(c: &Connection, main: &str, listening: &[String]) -> Result<()> {
    validate::room_ref("main_classroom_id", room_kind(c, main)?, RoomKind::Main)?;
    for (i, id) in listening.iter().enumerate() {
        validate::room_ref(&format!("listening_classroom_ids[{i}]"), room_kind(c, id)?, RoomKind::Listening)?;
    }
    Ok(())
}

fn insert_members(c: &Connection, sql: &str, owner: &str, ids: &[String]) -> Result<()> {
    let mut st = c.prepare(sql)?;
    for (i, id) in ids.iter().enumerate() {
        st.execute(params![owner, id, i as i64])?;
    }
    Ok(())
}

fn members(c: &Connection, sql: &str, owner: &str) -> Result<Vec<String>> {
    rows(c, sql, [owner], |r| r.get(0))
}

fn with_pairing_members(c: &Connection, p: Pairing) -> Result<Pairing> {
    let ids = members(c, "SELECT room_id FROM pairing_members WHERE pairing_id = ?1 ORDER BY position", &p.id)?;
    Ok(Pairing { listening_classroom_ids: ids, ..p })
}

fn with_listeners(c: &Connection, p: Period) -> Result<Period> {
    let ids = members(c, "SELECT room_id FROM timetable_listeners WHERE entry_id = ?1 ORDER BY position", &p.id)?;
    Ok(Period { listening_classroom_ids: ids, ..p })
}

/// The holidays of a new term: real dates inside the term, none twice.
fn term_holidays(term: &Term, given: &[Holiday]) -> Checked<Vec<Holiday>> {
    let mut out: Vec<Holiday> = Vec::with_capacity(given.len());
    for (i, h) in given.iter().enumerate() {
        let h = holiday(term, &format!("holidays[{i}]."), h)?;
        if out.iter().any(|x| x.date == h.date) {
            return Err(FieldError::new(format!("holidays[{i}].date"), "listed twice"));
        }
        out.push(h);
    }
    Ok(out)
}

/// One holiday of `term`; `prefix` places its fields in the request.
fn holiday(term: &Term, prefix: &str, h: &Holiday) -> Checked<Holiday> {
    let date = validate::date(&format!("{prefix}date"), h.date.trim())?;
    if date < term.start || date > term.end {
        return Err(FieldError::new(format!("{prefix}date"), format!("outside the term ({} to {})", term.start, term.end)));
    }
    Ok(Holiday { date, name: validate::optional_text(&format!("{prefix}name"), &h.name)? })
}

fn insert_holiday(c: &Connection, term_id: &str, h: &Holiday) -> Result<()> {
    c.execute("INSERT INTO holidays (term_id, date, name) VALUES (?1, ?2, ?3)", params![term_id, h.date, h.name])?;
    Ok(())
}

fn load_term(c: &Connection, id: &str) -> Result<Option<Term>> {
    let head = c.query_row(&format!("SELECT {TERM_COLUMNS} FROM terms WHERE id = ?1"), [id], term_row).optional()?;
    head.map(|t| with_holidays(c, t)).transpose()
}

fn with_holidays(c: &Connection, t: Term) -> Result<Term> {
    let sql = "SELECT date, name FROM holidays WHERE term_id = ?1 ORDER BY date";
    let holidays = rows(c, sql, [&t.id], |r| Ok(Holiday { date: r.get(0)?, name: r.get(1)? }))?;
    Ok(Term { holidays, ..t })
}

/// Weekday, start and end minutes of a new period, in field order.
fn period_times(new: &NewPeriod) -> Checked<(u8, u16, u16)> {
    let weekday = validate::weekday(new.weekday)?;
    let start = validate::time("start", new.start.trim())?;
    let end = validate::time("end", new.end.trim())?;
    validate::ordered(&start, &end, false)?;
    Ok((weekday, start, end))
}

/// References and overlaps of a period about to be saved.
fn check_period(c: &Connection, p: &Period, start: u16, end: u16) -> Result<()> {
    let term = load_term(c, &p.term_id)?.ok_or_else(|| FieldError::new("term_id", "no such term"))?;
    check_rooms(c, &p.main_classroom_id, &p.listening_classroom_ids)?;
    let slot = Slot {
        id: p.id.clone(),
        term_start: term.start,
        term_end: term.end,
        weekday: p.weekday,
        start,
        end,
        main: p.main_classroom_id.clone(),
        listening: p.listening_classroom_ids.clone(),
    };
    validate::no_overlap(&slot, &slots_on(c, p.weekday)?)?;
    Ok(())
}

/// Every period on one weekday, with its term's dates.
fn slots_on(c: &Connection, weekday: u8) -> Result<Vec<Slot>> {
    let sql = "SELECT e.id, t.start_date, t.end_date, e.weekday, e.start_min, e.end_min, e.main_room_id
               FROM timetable e JOIN terms t ON t.id = e.term_id WHERE e.weekday = ?1";
    let heads = rows(c, sql, [weekday], slot_row)?;
    let listeners = "SELECT room_id FROM timetable_listeners WHERE entry_id = ?1 ORDER BY position";
    heads.into_iter().map(|s| -> Result<Slot> { Ok(Slot { listening: members(c, listeners, &s.id)?, ..s }) }).collect()
}

fn insert_period(c: &Connection, p: &Period, start: u16, end: u16) -> Result<()> {
    c.execute(
        "INSERT INTO timetable (id, term_id, weekday, start_min, end_min, subject, teacher, main_room_id, created_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![p.id, p.term_id, p.weekday, start, end, p.subject, p.teacher, p.main_classroom_id, p.created_at, p.record],
    )?;
    let sql = "INSERT INTO timetable_listeners (entry_id, room_id, position) VALUES (?1, ?2, ?3)";
    insert_members(c, sql, &p.id, &p.listening_classroom_ids)
}

const ROOM_COLUMNS: &str = "id, school_id, name, kind, revoked, created_at";
const PAIRING_COLUMNS: &str = "id, name, main_room_id, created_at";
const TERM_COLUMNS: &str = "id, name, start_date, end_date, created_at";
const PERIOD_COLUMNS: &str = "id, term_id, weekday, start_min, end_min, subject, teacher, main_room_id, created_at, record";

fn school_row(r: &rusqlite::Row) -> rusqlite::Result<School> {
    Ok(School { id: r.get(0)?, name: r.get(1)?, created_at: r.get(2)? })
}

fn room_row(r: &rusqlite::Row) -> rusqlite::Result<Room> {
    let kind: String = r.get(3)?;
    Ok(Room { id: r.get(0)?, school_id: r.get(1)?, name: r.get(2)?, kind: kind_from_db(&kind), revoked: r.get(4)?, created_at: r.get(5)? })
}

fn pairing_row(r: &rusqlite::Row) -> rusqlite::Result<Pairing> {
    Ok(Pairing { id: r.get(0)?, name: r.get(1)?, main_classroom_id: r.get(2)?, listening_classroom_ids: Vec::new(), created_at: r.get(3)? })
}

fn term_row(r: &rusqlite::Row) -> rusqlite::Result<Term> {
    Ok(Term { id: r.get(0)?, name: r.get(1)?, start: r.get(2)?, end: r.get(3)?, holidays: Vec::new(), created_at: r.get(4)? })
}

fn period_row(r: &rusqlite::Row) -> rusqlite::Result<Period> {
    Ok(Period {
        id: r.get(0)?,
        term_id: r.get(1)?,
        weekday: r.get(2)?,
        start: validate::format_time(r.get(3)?),
        end: validate::format_time(r.get(4)?),
        subject: r.get(5)?,
        teacher: r.get(6)?,
        main_classroom_id: r.get(7)?,
        listening_classroom_ids: Vec::new(),
        created_at: r.get(8)?,
        record: r.get(9)?,
    })
}

fn slot_row(r: &rusqlite::Row) -> rusqlite::Result<Slot> {
    Ok(Slot {
        id: r.get(0)?,
        term_start: r.get(1)?,
        term_end: r.get(2)?,
        weekday: r.get(3)?,
        start: r.get(4)?,
        end: r.get(5)?,
        main: r.get(6)?,
        listening: Vec::new(),
    })
}

fn audit_row(r: &rusqlite::Row) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow { id: r.get(0)?, at_ms: r.get(1)?, action: r.get(2)?, entity: r.get(3)?, entity_id: r.get(4)?, summary: r.get(5)? })
}

#[cfg(test)]
mod tests;
