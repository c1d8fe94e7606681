use super::*;
use crate::store::{Holiday, SessionState};

const BEIJING: fn(i64) -> i64 = |_| 8 * 3600;

fn term() -> Term {
    let holiday = Holiday { date: "2026-11-30".into(), name: "运动会".into() };
    Term { id: "t1".into(), name: "秋季学期".into(), start: "2026-11-01".into(), end: "2026-12-31".into(), holidays: vec![holiday], created_at: 0 }
}

fn period(id: &str, weekday: u8, start: &str, end: &str, listening: &[&str]) -> Period {
    Period {
        id: id.into(),
        term_id: "t1".into(),
        weekday,
        start: start.into(),
        end: end.into(),
        subject: format!("subject {id}"),
        teacher: "王老师".into(),
        main_classroom_id: "m1".into(),
        listening_classroom_ids: listening.iter().map(|s| s.to_string()).collect(),
        record: true,
        created_at: 0,
    }
}

fn calendar() -> Calendar {
    Calendar::new(&[term()], &[period("p1", 1, "08:00", "08:45", &["b1"]), period("p2", 1, "09:00", "09:45", &["b2"])])
}

/// Unix ms of a Beijing wall time.
fn at(date: &str, hhmm: &str, secs: i64) -> i64 {
    to_unix_ms(Date::parse(date).unwrap(), minutes(hhmm).unwrap(), BEIJING) + secs * 1000
}

fn session(o: &Occurrence) -> ClassSession {
    ClassSession {
        period_id: o.period.id.clone(),
        date: o.date.clone(),
        class_id: format!("k-{}", o.period.id),
        opens_at_ms: o.opens_at_ms,
        closes_at_ms: o.closes_at_ms,
        state: SessionState::Open,
        opened_at_ms: o.opens_at_ms,
        closed_at_ms: None,
    }
}

fn opened(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::Open(o) = a { Some(format!("{} {}", o.period.id, o.date)) } else { None }).collect()
}

#[test]
fn a_period_opens_at_its_start_and_closes_at_its_end() {
    let cal = calendar();
    assert!(decide(&cal, &[], at("2026-11-23", "07:59", 59), &BEIJING).is_empty());
    let start = decide(&cal, &[], at("2026-11-23", "08:00", 0), &BEIJING);
    assert_eq!(opened(&start), ["p1 2026-11-23"]);
    let Action::Open(o) = &start[0] else { unreachable!() };
    assert_eq!(o.closes_at_ms - o.opens_at_ms, 45 * 60_000);
    let s = session(o);
    assert_eq!(decide(&cal, std::slice::from_ref(&s), at("2026-11-23", "08:44", 59), &BEIJING), [Action::Keep(s.clone())]);
    assert_eq!(decide(&cal, std::slice::from_ref(&s), at("2026-11-23", "08:45", 0), &BEIJING), [Action::Close(s)]);
}

#[test]
fn holidays_other_weekdays_and_days_outside_the_term_have_no_class() {
    let cal = calendar();
    for day in ["2026-11-30", "2026-11-24", "2027-01-04", "2026-10-26"] {
        assert!(cal.active(at(day, "08:10", 0), &BEIJING).is_empty(), "{day}");
    }
    assert_eq!(cal.active(at("2026-12-07", "08:10", 0), &BEIJING).len(), 1, "the Monday after the holiday");
}

#[test]
fn after_a_restart_an_open_session_is_kept_and_nothing_opens_twice() {
    let cal = calendar();
    let now = at("2026-11-23", "08:20", 0);
    let s = session(&cal.active(now, &BEIJING)[0]);
    assert_eq!(decide(&cal, std::slice::from_ref(&s), now, &BEIJING), [Action::Keep(s)]);
}

#[test]
fn clock_steps_close_only_what_is_really_over() {
    let cal = calendar();
    let s = session(&cal.active(at("2026-11-23", "08:00", 0), &BEIJING)[0]);
    let small_step_back = at("2026-11-23", "07:59", 0);
    assert_eq!(decide(&cal, std::slice::from_ref(&s), small_step_back, &BEIJING), [Action::Keep(s.clone())]);
    let big_step_back = at("2026-11-23", "07:00", 0);
    assert_eq!(decide(&cal, std::slice::from_ref(&s), big_step_back, &BEIJING), [Action::Close(s.clone())]);
    let into_next_period = decide(&cal, std::slice::from_ref(&s), at("2026-11-23", "09:10", 0), &BEIJING);
    assert_eq!(into_next_period[0], Action::Close(s));
    assert_eq!(opened(&into_next_period), ["p2 2026-11-23"]);
}

#[test]
fn a_deleted_period_or_a_new_holiday_closes_its_session() {
    let s = session(&calendar().active(at("2026-11-23", "08:10", 0), &BEIJING)[0]);
    let without_p1 = Calendar::new(&[term()], &[period("p2", 1, "09:00", "09:45", &["b2"])]);
    assert_eq!(decide(&without_p1, std::slice::from_ref(&s), at("2026-11-23", "08:10", 0), &BEIJING), [Action::Close(s.clone())]);
    let mut holiday_today = term();
    holiday_today.holidays.push(Holiday { date: "2026-11-23".into(), name: "停电".into() });
    let cal = Calendar::new(&[holiday_today], &[period("p1", 1, "08:00", "08:45", &["b1"])]);
    assert_eq!(decide(&cal, std::slice::from_ref(&s), at("2026-11-23", "08:10", 0), &BEIJING), [Action::Close(s)]);
}

#[test]
fn a_classroom_knows_its_next_period_across_holidays() {
    let cal = calendar();
    let during = cal.next_for_room("b1", at("2026-11-23", "08:10", 0), &BEIJING).unwrap();
    assert_eq!((during.period.id.as_str(), during.date.as_str()), ("p1", "2026-11-23"), "the current one first");
    let after = cal.next_for_room("b1", at("2026-11-23", "08:45", 0), &BEIJING).unwrap();
    assert_eq!(after.date, "2026-12-07", "next Monday is a holiday");
    assert_eq!(cal.next_for_room("m1", at("2026-11-23", "08:50", 0), &BEIJING).unwrap().period.id, "p2");
    assert!(cal.next_for_room("nobody", at("2026-11-23", "08:50", 0), &BEIJING).is_none());
}
