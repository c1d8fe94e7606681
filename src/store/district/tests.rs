//! Store tests of the district tables: round trips, references, overlaps inside
//! the transaction, all-or-nothing writes, device tokens and the audit log.

use super::*;

struct District {
    s: Store,
    school: School,
    main: Room,
    main2: Room,
    l1: Room,
    l2: Room,
    term: Term,
}

fn room(s: &Store, school: &str, name: &str, kind: &str) -> Room {
    s.create_room(&NewRoom { school_id: school.into(), name: name.into(), kind: kind.into() }).unwrap().0
}

fn district() -> District {
    let s = Store::open_in_memory().unwrap();
    let school = s.create_school(&NewSchool { name: "一中".into() }).unwrap();
    let main = room(&s, &school.id, "Room 1", "main");
    let main2 = room(&s, &school.id, "Room 2", "main");
    let l1 = room(&s, &school.id, "Point A", "listening");
    let l2 = room(&s, &school.id, "Point B", "listening");
    let term = s.create_term(&NewTerm { name: "Spring".into(), start: "2025-02-17".into(), end: "2025-07-04".into(), holidays: vec![] }).unwrap();
    District { s, school, main, main2, l1, l2, term }
}

fn period(d: &District, weekday: i64, start: &str, end: &str, main: &Room, listening: &[&Room]) -> NewPeriod {
    NewPeriod {
        term_id: d.term.id.clone(),
        weekday: Some(weekday),
        start: start.into(),
        end: end.into(),
        subject: "数学".into(),
        teacher: "王老师".into(),
        main_classroom_id: main.id.clone(),
        listening_classroom_ids: listening.iter().map(|r| r.id.clone()).collect(),
        record: None,
    }
}

fn field(e: DistrictError) -> String {
    match e {
        DistrictError::Invalid(f) => f.field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn schools_and_rooms_round_trip() {
    let d = district();
    assert_eq!(d.s.schools().unwrap(), vec![d.school.clone()]);
    assert_eq!(d.s.school(&d.school.id).unwrap(), Some(d.school.clone()));
    assert_eq!(d.s.district_rooms(Some(&d.school.id)).unwrap().len(), 4);
    assert!(d.s.district_rooms(Some("nope")).unwrap().is_empty());
    assert_eq!(d.s.district_room(&d.l1.id).unwrap(), Some(d.l1.clone()));
    assert_eq!(d.l1.kind, RoomKind::Listening);
    let bad = NewRoom { school_id: "nope".into(), name: "X".into(), kind: "main".into() };
    assert_eq!(field(d.s.create_room(&bad).unwrap_err()), "school_id");
    let bad = NewRoom { school_id: d.school.id.clone(), name: "X".into(), kind: "teacher".into() };
    assert_eq!(field(d.s.create_room(&bad).unwrap_err()), "kind");
}

#[test]
fn device_tokens_are_stored_hashed_and_revocable() {
    let d = district();
    let (r, token) = d.s.create_room(&NewRoom { school_id: d.school.id.clone(), name: "Kiosk".into(), kind: "listening".into() }).unwrap();
    assert!(token.starts_with("cdt_") && token.len() > 40);
    let stored: String = d.s.with(|c| c.query_row("SELECT token_hash FROM rooms WHERE id = ?1", [&r.id], |x| x.get(0))).unwrap();
    assert_eq!(stored, device_token_hash(&token));
    assert!(!stored.contains(&token[4..]), "only the hash is kept");
    assert_eq!(d.s.room_by_device_token(&token).unwrap().map(|x| x.id), Some(r.id.clone()));
    assert!(d.s.room_by_device_token("cdt_wrong").unwrap().is_none());
    assert!(d.s.revoke_room(&r.id).unwrap().revoked);
    assert!(d.s.room_by_device_token(&token).unwrap().unwrap().revoked);
    assert!(matches!(d.s.revoke_room("nope"), Err(DistrictError::NotFound(_))));
}

#[test]
fn pairings_check_kinds_and_keep_order() {
    let d = district();
    let pairing = |main: &Room, listening: &[&Room]| NewPairing {
        name: "".into(),
        main_classroom_id: main.id.clone(),
        listening_classroom_ids: listening.iter().map(|r| r.id.clone()).collect(),
    };
    let p = d.s.create_pairing(&pairing(&d.main, &[&d.l2, &d.l1])).unwrap();
    assert_eq!(d.s.pairing(&p.id).unwrap(), Some(p.clone()));
    assert_eq!(d.s.pairings().unwrap(), vec![p.clone()]);
    assert_eq!(field(d.s.create_pairing(&pairing(&d.l1, &[&d.l2])).unwrap_err()), "main_classroom_id");
    assert_eq!(field(d.s.create_pairing(&pairing(&d.main, &[&d.l1, &d.main2])).unwrap_err()), "listening_classroom_ids[1]");
    assert_eq!(field(d.s.create_pairing(&pairing(&d.main, &[])).unwrap_err()), "listening_classroom_ids");
    assert!(matches!(d.s.delete_room(&d.l1.id), Err(DistrictError::InUse(_))), "a paired classroom stays");
    d.s.delete_pairing(&p.id).unwrap();
    d.s.delete_room(&d.l1.id).unwrap();
    assert_eq!(d.s.pairings().unwrap(), vec![]);
}

#[test]
fn terms_check_dates_and_holidays() {
    let d = district();
    let h = |date: &str| Holiday { date: date.into(), name: "".into() };
    let term = |start: &str, end: &str, holidays| NewTerm { name: "Autumn".into(), start: start.into(), end: end.into(), holidays };
    assert_eq!(field(d.s.create_term(&term("2025-09-01", "2025-08-31", vec![])).unwrap_err()), "end");
    assert_eq!(field(d.s.create_term(&term("2025-9-01", "2026-01-16", vec![])).unwrap_err()), "start");
    let outside = term("2025-09-01", "2026-01-16", vec![h("2025-10-01"), h("2026-02-01")]);
    assert_eq!(field(d.s.create_term(&outside).unwrap_err()), "holidays[1].date");
    let twice = term("2025-09-01", "2026-01-16", vec![h("2025-10-01"), h("2025-10-01")]);
    assert_eq!(field(d.s.create_term(&twice).unwrap_err()), "holidays[1].date");
    assert_eq!(d.s.terms().unwrap().len(), 1, "nothing of the refused terms was saved");
    let t = d.s.create_term(&term("2025-09-01", "2026-01-16", vec![h("2025-10-02"), h("2025-10-01")])).unwrap();
    assert_eq!(d.s.term(&t.id).unwrap().unwrap().holidays.iter().map(|x| x.date.as_str()).collect::<Vec<_>>(), ["2025-10-01", "2025-10-02"]);
    assert_eq!(d.s.add_holiday(&t.id, &h("2025-10-03")).unwrap().holidays.len(), 3);
    assert_eq!(field(d.s.add_holiday(&t.id, &h("2025-10-03")).unwrap_err()), "date");
    assert!(matches!(d.s.add_holiday("nope", &h("2025-10-03")), Err(DistrictError::NotFound(_))));
    d.s.delete_holiday(&t.id, "2025-10-03").unwrap();
    assert!(matches!(d.s.delete_holiday(&t.id, "2025-10-03"), Err(DistrictError::NotFound(_))));
    d.s.delete_term(&t.id).unwrap();
}

#[test]
fn periods_round_trip_and_hold_their_references() {
    let d = district();
    let p = d.s.create_period(&period(&d, 1, "08:00", "08:45", &d.main, &[&d.l1, &d.l2])).unwrap();
    assert_eq!((p.start.as_str(), p.end.as_str()), ("08:00", "08:45"));
    assert_eq!(d.s.period(&p.id).unwrap(), Some(p.clone()));
    assert_eq!(d.s.timetable(Some(&d.term.id)).unwrap(), vec![p.clone()]);
    assert!(d.s.timetable(Some("other")).unwrap().is_empty());
    assert!(matches!(d.s.delete_term(&d.term.id), Err(DistrictError::InUse(_))));
    assert!(matches!(d.s.delete_room(&d.l2.id), Err(DistrictError::InUse(_))));
    assert!(matches!(d.s.delete_school(&d.school.id), Err(DistrictError::InUse(_))));
    d.s.delete_period(&p.id).unwrap();
    assert!(d.s.period(&p.id).unwrap().is_none());
    d.s.delete_term(&d.term.id).unwrap();
}

#[test]
fn period_fields_are_named_on_failure() {
    let d = district();
    let cases: Vec<(NewPeriod, &str)> = vec![
        (NewPeriod { term_id: "nope".into(), ..period(&d, 1, "08:00", "08:45", &d.main, &[]) }, "term_id"),
        (period(&d, 8, "08:00", "08:45", &d.main, &[]), "weekday"),
        (period(&d, 1, "8:00", "08:45", &d.main, &[]), "start"),
        (period(&d, 1, "08:00", "25:00", &d.main, &[]), "end"),
        (period(&d, 1, "09:00", "08:45", &d.main, &[]), "end"),
        (period(&d, 1, "08:00", "08:45", &d.l1, &[]), "main_classroom_id"),
        (period(&d, 1, "08:00", "08:45", &d.main, &[&d.l1, &d.main2]), "listening_classroom_ids[1]"),
        (period(&d, 1, "08:00", "08:45", &d.main, &[&d.l1, &d.l1]), "listening_classroom_ids[1]"),
        (NewPeriod { subject: " ".into(), ..period(&d, 1, "08:00", "08:45", &d.main, &[]) }, "subject"),
        (NewPeriod { listening_classroom_ids: vec!["nope".into()], ..period(&d, 1, "08:00", "08:45", &d.main, &[]) }, "listening_classroom_ids[0]"),
    ];
    for (p, want) in cases {
        assert_eq!(field(d.s.create_period(&p).unwrap_err()), want, "{p:?}");
    }
    assert!(d.s.timetable(None).unwrap().is_empty());
}

#[test]
fn overlapping_periods_are_refused_and_nothing_is_saved() {
    let d = district();
    d.s.create_period(&period(&d, 2, "10:00", "10:45", &d.main, &[&d.l1])).unwrap();
    let audit_before = d.s.audit_log(200, 0).unwrap().1;
    let same_main = period(&d, 2, "10:30", "11:15", &d.main, &[&d.l2]);
    assert_eq!(field(d.s.create_period(&same_main).unwrap_err()), "main_classroom_id");
    let same_listener = period(&d, 2, "10:44", "11:00", &d.main2, &[&d.l2, &d.l1]);
    assert_eq!(field(d.s.create_period(&same_listener).unwrap_err()), "listening_classroom_ids[1]");
    let overlapping_term = d.s.create_term(&NewTerm { name: "Summer".into(), start: "2025-07-01".into(), end: "2025-08-01".into(), holidays: vec![] }).unwrap();
    let in_other_term = NewPeriod { term_id: overlapping_term.id.clone(), ..period(&d, 2, "10:00", "10:45", &d.main2, &[&d.l1]) };
    assert_eq!(field(d.s.create_period(&in_other_term).unwrap_err()), "listening_classroom_ids[0]");
    assert_eq!(d.s.timetable(None).unwrap().len(), 1, "no refused period was saved");
    assert_eq!(d.s.audit_log(200, 0).unwrap().1, audit_before + 1, "only the new term was audited");
    d.s.create_period(&period(&d, 2, "10:45", "11:30", &d.main, &[&d.l1])).unwrap();
    d.s.create_period(&period(&d, 3, "10:00", "10:45", &d.main, &[&d.l1])).unwrap();
}

#[test]
fn every_change_is_audited_newest_first() {
    let d = district();
    let (rows, total) = d.s.audit_log(2, 0).unwrap();
    assert_eq!(total, 6, "school, four classrooms, term");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].action.as_str(), rows[0].entity.as_str(), rows[0].entity_id.as_str()), ("create", "term", d.term.id.as_str()));
    d.s.revoke_room(&d.l2.id).unwrap();
    d.s.delete_room(&d.l2.id).unwrap();
    let (rows, _) = d.s.audit_log(2, 0).unwrap();
    assert_eq!(rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["delete", "revoke"]);
    let (rows, total) = d.s.audit_log(10, 7).unwrap();
    assert_eq!((rows.len(), total), (1, 8));
    assert_eq!(rows[0].entity, "school");
}
