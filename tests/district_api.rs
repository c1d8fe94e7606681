//! The district admin API over HTTP, against the real `classcast` binary in a
//! temporary data directory (issue 7, acceptance 3): overlapping periods, bad
//! times and unknown references each get 422 naming the field, and a refused
//! request saves nothing (no row, no audit entry).


use serde_json::{Value, json};

mod common;
use common::Server;

const KEY: &str = "district-test-admin-key";

impl Server {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<String>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}/api{path}", self.base)).bearer_auth(KEY);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(body.to_string())).await
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    async fn delete(&self, path: &str) -> u16 {
        self.send(reqwest::Method::DELETE, path, None).await.0
    }

    /// POST that must succeed; the new row's id.
    async fn create(&self, path: &str, body: Value) -> String {
        let (status, v) = self.post(path, body).await;
        assert_eq!(status, 201, "POST {path}: {v}");
        v["id"].as_str().expect("an id").to_string()
    }

    /// Row counts of everything a refused request could have left behind.
    async fn counts(&self) -> [usize; 7] {
        let len = |v: &Value| v.as_array().map_or(0, Vec::len);
        let terms = self.get("/terms").await;
        let holidays = terms.as_array().map_or(0, |ts| ts.iter().map(|t| len(&t["holidays"])).sum());
        [
            len(&self.get("/schools").await),
            len(&self.get("/rooms").await),
            len(&self.get("/pairings").await),
            len(&terms),
            holidays,
            len(&self.get("/timetable").await),
            self.get("/audit").await["total"].as_u64().unwrap_or(0) as usize,
        ]
    }
}

fn assert_field(resp: (u16, Value), field: &str) {
    let (status, v) = resp;
    assert_eq!(status, 422, "expected 422 on {field}: {v}");
    assert_eq!(v["error"], "invalid_field", "{v}");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("{field}: ")), "expected the field {field} to be named: {message}");
}

struct Ids {
    term: String,
    main1: String,
    main2: String,
    l1: String,
    l2: String,
}

async fn setup(s: &Server) -> Ids {
    let school = s.create("/schools", json!({"name": "县一中"})).await;
    let room = |name: &'static str, kind: &'static str| json!({"school_id": school, "name": name, "kind": kind});
    Ids {
        main1: s.create("/rooms", room("主讲教室 1", "main")).await,
        main2: s.create("/rooms", room("主讲教室 2", "main")).await,
        l1: s.create("/rooms", room("教学点 A", "listening")).await,
        l2: s.create("/rooms", room("教学点 B", "listening")).await,
        term: s.create("/terms", json!({"name": "2025 春", "start": "2025-02-17", "end": "2025-07-04"})).await,
    }
}

fn period(ids: &Ids, weekday: i64, start: &str, end: &str, main: &str, listening: &[&str]) -> Value {
    json!({
        "term_id": ids.term, "weekday": weekday, "start": start, "end": end,
        "subject": "数学", "teacher": "王老师", "main_classroom_id": main, "listening_classroom_ids": listening,
    })
}

#[tokio::test]
async fn refused_requests_name_the_field_and_save_nothing() {
    let s = Server::start("district-validation", KEY, &[]).await;
    let ids = setup(&s).await;
    s.create("/timetable", period(&ids, 1, "08:00", "08:45", &ids.main1, &[&ids.l1])).await;
    let before = s.counts().await;

    // Overlapping periods for one classroom, main or listening.
    assert_field(s.post("/timetable", period(&ids, 1, "08:30", "09:15", &ids.main1, &[&ids.l2])).await, "main_classroom_id");
    assert_field(s.post("/timetable", period(&ids, 1, "08:44", "09:00", &ids.main2, &[&ids.l2, &ids.l1])).await, "listening_classroom_ids[1]");
    // Bad times and days.
    assert_field(s.post("/timetable", period(&ids, 2, "8:00", "08:45", &ids.main1, &[])).await, "start");
    assert_field(s.post("/timetable", period(&ids, 2, "08:00", "24:00", &ids.main1, &[])).await, "end");
    assert_field(s.post("/timetable", period(&ids, 2, "09:00", "08:00", &ids.main1, &[])).await, "end");
    assert_field(s.post("/timetable", period(&ids, 0, "08:00", "08:45", &ids.main1, &[])).await, "weekday");
    assert_field(s.post("/terms", json!({"name": "秋", "start": "2025-09-01", "end": "2025-08-01"})).await, "end");
    let holidays = json!([{"date": "2025-10-01"}, {"date": "2026-03-01"}]);
    assert_field(s.post("/terms", json!({"name": "秋", "start": "2025-09-01", "end": "2026-01-16", "holidays": holidays})).await, "holidays[1].date");
    // Unknown references and classrooms of the wrong kind.
    let mut unknown_term = period(&ids, 2, "08:00", "08:45", &ids.main1, &[]);
    unknown_term["term_id"] = json!("t000000000000");
    assert_field(s.post("/timetable", unknown_term).await, "term_id");
    assert_field(s.post("/timetable", period(&ids, 2, "08:00", "08:45", "d000000000000", &[])).await, "main_classroom_id");
    assert_field(s.post("/timetable", period(&ids, 2, "08:00", "08:45", &ids.main1, &[&ids.l1, "nope"])).await, "listening_classroom_ids[1]");
    assert_field(s.post("/timetable", period(&ids, 2, "08:00", "08:45", &ids.l1, &[&ids.l2])).await, "main_classroom_id");
    assert_field(s.post("/timetable", period(&ids, 2, "08:00", "08:45", &ids.main1, &[&ids.main2])).await, "listening_classroom_ids[0]");
    assert_field(s.post("/rooms", json!({"school_id": "nope", "name": "X", "kind": "main"})).await, "school_id");
    assert_field(s.post("/pairings", json!({"main_classroom_id": ids.main1, "listening_classroom_ids": [ids.l1, "nope"]})).await, "listening_classroom_ids[1]");

    assert_eq!(s.counts().await, before, "no refused request left a row or an audit entry");
}

#[tokio::test]
async fn malformed_bodies_and_missing_credentials_are_refused() {
    let s = Server::start("district-framing", KEY, &[]).await;
    let ids = setup(&s).await;
    let before = s.counts().await;
    let mut extra = period(&ids, 1, "08:00", "08:45", &ids.main1, &[]);
    extra["room"] = json!("x");
    assert_eq!(s.post("/timetable", extra).await.0, 400, "unknown field");
    assert_eq!(s.send(reqwest::Method::POST, "/timetable", Some("{\"term_id\":".into())).await.0, 400, "truncated JSON");
    assert_eq!(s.post("/timetable", json!({"weekday": "Monday"})).await.0, 400, "wrong type");
    let big = "x".repeat(70 * 1024);
    assert_eq!(s.post("/schools", json!({ "name": big })).await.0, 400, "over 64 KiB");
    let anon = s.http.post(format!("{}/api/schools", s.base)).json(&json!({"name": "x"})).send().await.expect("answer");
    assert_eq!(anon.status().as_u16(), 401);
    assert_field(s.send(reqwest::Method::GET, "/audit?limit=0", None).await, "limit");
    assert_eq!(s.counts().await, before);
}

#[tokio::test]
async fn district_crud_round_trip_with_audit() {
    let s = Server::start("district-crud", KEY, &[]).await;
    let ids = setup(&s).await;
    let school = s.get(&format!("/rooms/{}", ids.l1)).await["school_id"].as_str().expect("school").to_string();
    let (status, room) = s.post("/rooms", json!({"school_id": school, "name": "Kiosk", "kind": "listening"})).await;
    assert_eq!(status, 201);
    assert!(room["device_token"].as_str().is_some_and(|t| t.starts_with("cdt_")), "{room}");
    let kiosk = room["id"].as_str().expect("id").to_string();
    assert_eq!(s.get(&format!("/rooms/{kiosk}")).await.get("device_token"), None, "the token is shown only once");
    let (status, revoked) = s.post(&format!("/rooms/{kiosk}/revoke"), json!({})).await;
    assert_eq!((status, &revoked["revoked"]), (200, &json!(true)));

    let pairing = s.create("/pairings", json!({"name": "一对多", "main_classroom_id": ids.main1, "listening_classroom_ids": [ids.l1, ids.l2]})).await;
    assert_eq!(s.get(&format!("/pairings/{pairing}")).await["listening_classroom_ids"], json!([ids.l1, ids.l2]));
    let (status, term) = s.post(&format!("/terms/{}/holidays", ids.term), json!({"date": "2025-05-01", "name": "劳动节"})).await;
    assert_eq!((status, &term["holidays"][0]["date"]), (201, &json!("2025-05-01")));
    let entry = s.create("/timetable", period(&ids, 3, "10:00", "10:45", &ids.main1, &[&ids.l1, &ids.l2])).await;
    let listed = s.get(&format!("/timetable?term={}", ids.term)).await;
    assert_eq!(listed[0]["start"], "10:00");

    assert_eq!(s.delete(&format!("/rooms/{}", ids.l1)).await, 409, "in a pairing and a period");
    assert_eq!(s.delete(&format!("/terms/{}", ids.term)).await, 409, "has periods");
    assert_eq!(s.delete(&format!("/timetable/{entry}")).await, 204);
    assert_eq!(s.delete(&format!("/pairings/{pairing}")).await, 204);
    assert_eq!(s.delete(&format!("/terms/{}/holidays/2025-05-01", ids.term)).await, 204);
    assert_eq!(s.delete(&format!("/terms/{}", ids.term)).await, 204);
    assert_eq!(s.delete(&format!("/rooms/{}", ids.l1)).await, 204);
    assert_eq!(s.send(reqwest::Method::GET, &format!("/rooms/{}", ids.l1), None).await.0, 404);

    let audit = s.get("/audit?limit=3").await;
    assert_eq!(audit["entries"].as_array().map(Vec::len), Some(3));
    assert_eq!(audit["entries"][0]["action"], "delete");
    assert_eq!(audit["entries"][0]["entity"], "room");
    assert_eq!(audit["total"], 16, "school, 5 rooms, term, revoke, pairing, holiday, period and 5 deletes");
}
