//! Pure checks of district data: text, dates, times, weekdays, classroom kinds and
//! overlapping periods. No SQL and no I/O: the store loads what a check needs and
//! calls these inside the request's transaction.
//!
//! Invariants:
//! - Every failure is a `FieldError` naming the request field (`start`,
//!   `listening_classroom_ids[1]`, `holidays[0].date`) and the reason.
//! - Dates are `YYYY-MM-DD` (a real calendar day), so they compare as strings;
//!   times are `HH:MM` (00:00-23:59) held as minutes since midnight.
//! - Periods are half-open: one may end at the minute the next begins.

use std::collections::HashSet;

use serde::Serialize;

pub const MAX_TEXT: usize = 200;
/// Most listening classrooms one pairing or period may list.
pub const MAX_LISTENING: usize = 500;

/// A request field that failed a check, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), reason: reason.into() }
    }
}

pub type Checked<T> = Result<T, FieldError>;

/// Main classrooms teach; listening classrooms (teaching points) watch and talk back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    Main,
    Listening,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Main => "main",
            RoomKind::Listening => "listening",
        }
    }

    pub fn parse(field: &str, s: &str) -> Checked<RoomKind> {
        match s {
            "main" => Ok(RoomKind::Main),
            "listening" => Ok(RoomKind::Listening),
            _ => Err(FieldError::new(field, "must be \"main\" or \"listening\"")),
        }
    }
}

/// A trimmed, non-empty text of at most `MAX_TEXT` characters.
pub fn text(field: &str, value: &str) -> Checked<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    optional_text(field, v)
}

/// Like `text`, but empty is allowed.
pub fn optional_text(field: &str, value: &str) -> Checked<String> {
    let v = value.trim();
    if v.chars().count() > MAX_TEXT {
        return Err(FieldError::new(field, format!("at most {MAX_TEXT} characters")));
    }
    Ok(v.to_string())
}

/// `HH:MM` to minutes since midnight.
pub fn time(field: &str, value: &str) -> Checked<u16> {
    let bad = || FieldError::new(field, "must be a time HH:MM between 00:00 and 23:59");
    let (h, m) = value.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m) = (two_digits(h).ok_or_else(bad)?, two_digits(m).ok_or_else(bad)?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Minutes since midnight as `HH:MM`.
pub fn format_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn two_digits(s: &str) -> Option<u16> {
    s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok()).flatten()
}

/// A calendar date `YYYY-MM-DD` (years 2000-2999), returned as given.
pub fn date(field: &str, value: &str) -> Checked<String> {
    let bad = || FieldError::new(field, "must be a date YYYY-MM-DD");
    let parts: Vec<&str> = value.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 || !value.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err(bad());
    }
    let (y, m, d): (u32, u32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    if !(2000..=2999).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(FieldError::new(field, "not a calendar date (YYYY-MM-DD, years 2000-2999)"));
    }
    Ok(value.to_string())
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// ISO weekday: 1 = Monday ... 7 = Sunday.
pub fn weekday(value: Option<i64>) -> Checked<u8> {
    let v = value.ok_or_else(|| FieldError::new("weekday", "required (1 = Monday ... 7 = Sunday)"))?;
    match u8::try_from(v) {
        Ok(w @ 1..=7) => Ok(w),
        _ => Err(FieldError::new("weekday", "must be 1 (Monday) to 7 (Sunday)")),
    }
}

/// `end` must come after `start` (times or dates; `same_ok` allows equality).
pub fn ordered<T: PartialOrd>(start: &T, end: &T, same_ok: bool) -> Checked<()> {
    if end > start || (same_ok && end == start) {
        return Ok(());
    }
    Err(FieldError::new("end", if same_ok { "must not be before start" } else { "must be after start" }))
}

/// The kind of a referenced classroom, if it exists.
pub fn room_ref(field: &str, found: Option<RoomKind>, want: RoomKind) -> Checked<()> {
    match found {
        None => Err(FieldError::new(field, "no such classroom")),
        Some(k) if k != want => Err(FieldError::new(field, format!("is a {} classroom, not a {} one", k.as_str(), want.as_str()))),
        Some(_) => Ok(()),
    }
}

/// The listening list: not empty (when required), no repeats, not the main classroom.
pub fn listening_list(main: &str, ids: &[String], required: bool) -> Checked<()> {
    if required && ids.is_empty() {
        return Err(FieldError::new("listening_classroom_ids", "at least one listening classroom"));
    }
    if ids.len() > MAX_LISTENING {
        return Err(FieldError::new("listening_classroom_ids", format!("at most {MAX_LISTENING}")));
    }
    let mut seen = HashSet::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("listening_classroom_ids[{i}]");
        if id == main {
            return Err(FieldError::new(field, "is the main classroom"));
        }
        if !seen.insert(id.as_str()) {
            return Err(FieldError::new(field, "listed twice"));
        }
    }
    Ok(())
}

/// One timetable period with its term's dates, as the overlap check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub id: String,
    pub term_start: String,
    pub term_end: String,
    pub weekday: u8,
    pub start: u16,
    pub end: u16,
    pub main: String,
    pub listening: Vec<String>,
}

impl Slot {
    fn meets(&self, other: &Slot) -> bool {
        self.weekday == other.weekday
            && self.term_start <= other.term_end
            && other.term_start <= self.term_end
            && self.start < other.end
            && other.start < self.end
    }

    fn rooms(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.main).chain(&self.listening)
    }
}

/// The first classroom of `new` already busy in an overlapping period of `existing`:
/// the error names that classroom's field and the period it collides with.
pub fn no_overlap(new: &Slot, existing: &[Slot]) -> Checked<()> {
    for other in existing.iter().filter(|o| o.id != new.id && new.meets(o)) {
        let busy: HashSet<&String> = other.rooms().collect();
        if let Some(i) = new.rooms().position(|r| busy.contains(r)) {
            let field = if i == 0 { "main_classroom_id".to_string() } else { format!("listening_classroom_ids[{}]", i - 1) };
            let when = format!("{}-{}", format_time(other.start), format_time(other.end));
            return Err(FieldError::new(field, format!("classroom already has period {} on weekday {} at {when}", other.id, other.weekday)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(id: &str, term: (&str, &str), weekday: u8, start: &str, end: &str, main: &str, listening: &[&str]) -> Slot {
        Slot {
            id: id.into(),
            term_start: term.0.into(),
            term_end: term.1.into(),
            weekday,
            start: time("start", start).unwrap(),
            end: time("end", end).unwrap(),
            main: main.into(),
            listening: listening.iter().map(|s| s.to_string()).collect(),
        }
    }

    const SPRING: (&str, &str) = ("2025-02-17", "2025-07-04");

    #[test]
    fn times_parse_strictly() {
        assert_eq!(time("start", "08:05"), Ok(485));
        assert_eq!(time("start", "23:59"), Ok(1439));
        for bad in ["8:05", "24:00", "12:60", "12-30", "ab:cd", "12:3", "+1:00", "12:00:00", ""] {
            assert_eq!(time("start", bad).unwrap_err().field, "start", "{bad}");
        }
        assert_eq!(format_time(485), "08:05");
    }

    #[test]
    fn dates_must_be_calendar_days() {
        assert!(date("start", "2024-02-29").is_ok());
        for bad in ["2025-02-29", "2025-13-01", "2025-04-31", "2025-1-01", "25-01-01", "2025/01/01", "2025-01-0a", "1999-12-31"] {
            assert_eq!(date("end", bad).unwrap_err().field, "end", "{bad}");
        }
    }

    #[test]
    fn weekday_is_one_to_seven() {
        assert_eq!(weekday(Some(1)), Ok(1));
        assert_eq!(weekday(Some(7)), Ok(7));
        for bad in [Some(0), Some(8), Some(-1), Some(i64::MAX), None] {
            assert_eq!(weekday(bad).unwrap_err().field, "weekday");
        }
    }

    #[test]
    fn end_must_follow_start() {
        assert!(ordered(&480u16, &525, false).is_ok());
        assert_eq!(ordered(&480u16, &480, false).unwrap_err().field, "end");
        assert_eq!(ordered(&480u16, &400, false).unwrap_err().field, "end");
        assert!(ordered(&"2025-02-17", &"2025-02-17", true).is_ok(), "a one-day term");
        assert!(ordered(&"2025-02-17", &"2025-02-16", true).is_err());
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(text("name", "  一中 "), Ok("一中".into()));
        assert_eq!(text("name", "   ").unwrap_err().reason, "must not be empty");
        assert!(text("name", &"字".repeat(MAX_TEXT)).is_ok());
        assert!(text("name", &"字".repeat(MAX_TEXT + 1)).is_err());
        assert_eq!(optional_text("teacher", " "), Ok(String::new()));
    }

    #[test]
    fn references_must_exist_with_the_right_kind() {
        assert!(room_ref("main_classroom_id", Some(RoomKind::Main), RoomKind::Main).is_ok());
        assert_eq!(room_ref("main_classroom_id", None, RoomKind::Main).unwrap_err().reason, "no such classroom");
        let e = room_ref("listening_classroom_ids[0]", Some(RoomKind::Main), RoomKind::Listening).unwrap_err();
        assert_eq!(e.reason, "is a main classroom, not a listening one");
        assert_eq!(RoomKind::parse("kind", "observer").unwrap_err().field, "kind");
    }

    #[test]
    fn listening_lists_have_no_repeats_and_not_the_main() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(listening_list("m", &ids(&["a", "b"]), true).is_ok());
        assert!(listening_list("m", &[], false).is_ok());
        assert_eq!(listening_list("m", &[], true).unwrap_err().field, "listening_classroom_ids");
        assert_eq!(listening_list("m", &ids(&["a", "b", "a"]), true).unwrap_err().field, "listening_classroom_ids[2]");
        assert_eq!(listening_list("m", &ids(&["a", "m"]), true).unwrap_err().field, "listening_classroom_ids[1]");
    }

    #[test]
    fn overlapping_periods_of_one_classroom_are_refused() {
        let existing = [slot("e1", SPRING, 1, "08:00", "08:45", "m1", &["l1", "l2"])];
        let clash_main = slot("new", SPRING, 1, "08:30", "09:15", "m1", &["l9"]);
        assert_eq!(no_overlap(&clash_main, &existing).unwrap_err().field, "main_classroom_id");
        let clash_listening = slot("new", SPRING, 1, "07:30", "08:01", "m2", &["l3", "l2"]);
        let e = no_overlap(&clash_listening, &existing).unwrap_err();
        assert_eq!(e.field, "listening_classroom_ids[1]");
        assert!(e.reason.contains("e1") && e.reason.contains("08:00-08:45"), "{}", e.reason);
        let main_was_listening = slot("new", SPRING, 1, "08:10", "08:20", "l1", &[]);
        assert_eq!(no_overlap(&main_was_listening, &existing).unwrap_err().field, "main_classroom_id");
        let inside = slot("new", SPRING, 1, "08:10", "08:20", "m3", &["l1"]);
        assert!(no_overlap(&inside, &existing).is_err(), "a period inside another");
    }

    #[test]
    fn periods_that_do_not_meet_are_accepted() {
        let existing = [slot("e1", SPRING, 1, "08:00", "08:45", "m1", &["l1"])];
        let back_to_back = slot("new", SPRING, 1, "08:45", "09:30", "m1", &["l1"]);
        let other_day = slot("new", SPRING, 2, "08:00", "08:45", "m1", &["l1"]);
        let other_rooms = slot("new", SPRING, 1, "08:00", "08:45", "m2", &["l2"]);
        let other_term = slot("new", ("2025-09-01", "2026-01-16"), 1, "08:00", "08:45", "m1", &["l1"]);
        let itself = slot("e1", SPRING, 1, "08:00", "08:45", "m1", &["l1"]);
        for s in [back_to_back, other_day, other_rooms, other_term, itself] {
            assert!(no_overlap(&s, &existing).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn terms_that_share_one_day_overlap() {
        let existing = [slot("e1", ("2025-02-17", "2025-07-04"), 5, "10:00", "10:45", "m1", &[])];
        let next = slot("new", ("2025-07-04", "2025-08-01"), 5, "10:00", "10:45", "m1", &[]);
        assert!(no_overlap(&next, &existing).is_err());
    }
}
