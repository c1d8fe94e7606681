//! The dashboard API and the receive reports over the real `classcast` binary in a
//! temporary data directory: admin only, today's timetable in the snapshot, a
//! classroom's report on its tile and in the metrics, out-of-bounds reports refused
//! (the session goes on), protocol versions 1 and 2 served, and the event stream.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::Server;

const KEY: &str = "dashboard-test-admin-key";

impl Server {
    async fn post(&self, path: &str, body: Value) -> Value {
        let resp = self.http.post(format!("{}/api{path}", self.base)).bearer_auth(KEY).json(&body).send().await.expect("the server answers");
        assert_eq!(resp.status().as_u16(), 201, "POST {path}");
        resp.json().await.expect("a JSON body")
    }

    async fn dashboard(&self) -> Value {
        let resp = self.http.get(format!("{}/api/dashboard", self.base)).bearer_auth(KEY).send().await.expect("the server answers");
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.expect("a JSON body")
    }

    async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.base)).send().await.expect("the server answers").text().await.expect("a body")
    }

    /// A WebSocket joined with protocol version `v`; returns it and the first answer.
    async fn join(&self, token: &str, v: u32) -> (Ws, Value) {
        let url = format!("{}/ws", self.base.replace("http://", "ws://"));
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("the WebSocket opens");
        send(&mut ws, json!({"type": "join", "v": v, "token": token})).await;
        let first = next_msg(&mut ws).await;
        (ws, first)
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("the message is sent");
}

/// The next JSON message that answers the client (skipping what the server sends on
/// its own: `recording`, `subscribe_offer`, source and participant news).
async fn next_msg(ws: &mut Ws) -> Value {
    const UNPROMPTED: [&str; 5] = ["recording", "subscribe_offer", "source_state", "participant_joined", "participant_left"];
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a message within 10 s");
        let Some(Ok(Message::Text(text))) = msg else { panic!("expected a text message, got {msg:?}") };
        let v: Value = serde_json::from_str(text.as_str()).expect("JSON");
        if !UNPROMPTED.iter().any(|t| v["type"] == *t) {
            return v;
        }
    }
}

/// A class with one classroom; returns (class id, classroom id, classroom token).
async fn class_with_classroom(s: &Server) -> (String, String, String) {
    let class = s.post("/classes", json!({"title": "Physics", "teacher": "Mr. Wu", "record": false})).await;
    let id = class["id"].as_str().expect("an id").to_string();
    let room = s.post(&format!("/classes/{id}/classrooms"), json!({"name": "Room A"})).await;
    let rid = room["id"].as_str().expect("an id").to_string();
    let link = s.post(&format!("/classes/{id}/links"), json!({"role": "classroom", "classroom_id": rid})).await;
    (id, rid, link["token"].as_str().expect("a token").to_string())
}

fn report(fps: f64) -> Value {
    json!({"type": "receive_report", "rtt_ms": 12.0, "tracks": [
        {"key": "main/camera", "kind": "video", "fps": fps, "width": 1280, "height": 720, "freeze_count": 0, "freeze_ms": 0, "jitter_ms": 3.0},
        {"key": "main/mic", "kind": "audio", "concealed_ratio": 0.0, "jitter_ms": 2.0},
    ]})
}

#[tokio::test]
async fn the_dashboard_is_admin_only_and_lists_todays_periods() {
    let s = Server::start("dashboard-today", KEY, &[]).await;
    for path in ["/api/dashboard", "/api/dashboard/events"] {
        let resp = s.http.get(format!("{}{path}", s.base)).send().await.expect("the server answers");
        assert_eq!(resp.status().as_u16(), 401, "{path} without the key");
        let body: Value = resp.json().await.expect("a JSON error");
        assert_eq!(body["error"], "unauthorized");
    }
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64;
    let local = classcast::schedule::civil::to_local(now_ms, classcast::schedule::local_offset);
    let (date, weekday, minute) = (local.date.to_string(), local.date.weekday(), local.ms_of_day / 60_000);
    let school = s.post("/schools", json!({"name": "No. 1 Primary"})).await;
    let room = |name: &str, kind: &str| json!({"school_id": school["id"], "name": name, "kind": kind});
    let main = s.post("/rooms", room("Grade 5 main", "main")).await;
    let listening = s.post("/rooms", room("Village school", "listening")).await;
    let term = s.post("/terms", json!({"name": "Term", "start": date, "end": date})).await;
    let period = |weekday: u8, subject: &str| {
        json!({"term_id": term["id"], "weekday": weekday, "start": "00:00", "end": "23:59", "subject": subject,
               "main_classroom_id": main["id"], "listening_classroom_ids": [listening["id"]]})
    };
    let p = s.post("/timetable", period(weekday, "Maths")).await;
    s.post("/timetable", period(weekday % 7 + 1, "Tomorrow's art")).await;

    // The period runs all day: the scheduler opens its class within a tick.
    let mut snap = s.dashboard().await;
    for _ in 0..50 {
        if minute >= 23 * 60 + 59 || snap["today"][0]["live"] == json!(true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        snap = s.dashboard().await;
    }
    assert_eq!(snap["date"], json!(date));
    let listed = snap["today"].as_array().expect("a list");
    assert_eq!(listed.len(), 1, "only today's period: {listed:?}");
    let t = &listed[0];
    assert_eq!((&t["id"], &t["subject"], &t["main_classroom"]), (&p["id"], &json!("Maths"), &json!("Grade 5 main")));
    assert_eq!(t["listening_classrooms"], json!(["Village school"]));
    if minute < 23 * 60 + 59 {
        assert_eq!((&t["state"], &t["live"]), (&json!("now"), &json!(true)), "opened by the timetable: {t}");
        let class = &snap["classes"][0];
        assert_eq!((&class["id"], &class["title"]), (&t["class_id"], &json!("Maths")));
        let expected = &class["classrooms"][0];
        assert_eq!((&expected["name"], &expected["joined"]), (&json!("Village school"), &json!(false)), "the period's classroom, not joined yet");
    }
}

#[tokio::test]
async fn a_classroom_report_reaches_its_tile_and_the_metrics_and_bad_ones_are_refused() {
    let s = Server::start("dashboard-report", KEY, &[]).await;
    let (class, rid, token) = class_with_classroom(&s).await;
    let (_, refused) = s.join(&token, 4).await;
    assert_eq!((&refused["type"], &refused["code"]), (&json!("error"), &json!("unsupported_version")));
    let (mut old, joined) = s.join(&token, 1).await;
    assert_eq!((&joined["type"], &joined["v"]), (&json!("joined"), &json!(3)), "a version 1 client is served");
    let _ = old.close(None).await;

    let (mut ws, joined) = s.join(&token, 2).await;
    assert_eq!(joined["type"], "joined");
    send(&mut ws, report(24.0)).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_msg(&mut ws).await["type"], "pong", "a good report is not answered");
    let snap = s.dashboard().await;
    let c = &snap["classes"][0];
    assert_eq!((&c["id"], &c["participants"]), (&json!(class), &json!(1)));
    let tile = &c["classrooms"][0];
    assert_eq!((&tile["id"], &tile["joined"], &tile["name"]), (&json!(rid), &json!(true), &json!("Room A")));
    assert_eq!(tile["layer"], json!({"key": "main/camera", "width": 1280, "height": 720, "fps": 24.0}));
    assert_eq!((&tile["connected"], &tile["rtt_ms"]), (&json!(false), &json!(12)), "no media connection yet; the client's round trip");

    send(&mut ws, report(-1.0)).await;
    let err = next_msg(&mut ws).await;
    assert_eq!((&err["type"], &err["code"]), (&json!("error"), &json!("bad_message")));
    assert!(err["message"].as_str().is_some_and(|m| m.contains("tracks[0].fps")), "names the field: {err}");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_msg(&mut ws).await["type"], "pong", "the session goes on");

    let metrics = s.metrics().await;
    for line in [
        "classcast_receive_reports_total{result=\"accepted\"} 1".to_string(),
        "classcast_receive_reports_total{result=\"rejected\"} 1".to_string(),
        format!("classcast_class_participants{{class=\"{class}\"}} 1"),
        format!("classcast_classroom_connected{{class=\"{class}\",participant=\"{rid}\"}} 0"),
        format!("classcast_classroom_rtt_seconds{{class=\"{class}\",participant=\"{rid}\"}} 0.012"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line} in\n{metrics}");
    }
    ws.close(None).await.expect("closes");
}

#[tokio::test]
async fn the_event_stream_sends_a_snapshot_every_second() {
    let s = Server::start("dashboard-events", KEY, &[]).await;
    let mut resp = s.http.get(format!("{}/api/dashboard/events", s.base)).bearer_auth(KEY).send().await.expect("the server answers");
    assert_eq!(resp.status().as_u16(), 200);
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let t0 = Instant::now();
    let (mut text, mut snapshots) = (String::new(), Vec::new());
    while snapshots.len() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.expect("a chunk within 5 s").expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(&chunk.expect("not ended")));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.strip_prefix("event: snapshot\ndata: ") {
                snapshots.push(serde_json::from_str::<Value>(data.trim_end()).expect("a JSON snapshot"));
            }
        }
    }
    let elapsed = t0.elapsed();
    assert!(elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(4), "three snapshots a second apart: {elapsed:?}");
    assert!(snapshots.iter().all(|v| v["classes"].is_array() && v["today"].is_array()));
}
