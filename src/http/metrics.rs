//! Prometheus text exposition of the server's counters and gauges.
//!
//! Label sets are bounded: drop reasons and report results are fixed enums;
//! `direction` is `up` or `down`. Per-class and per-classroom gauges carry a
//! `class` label only for classes live at the time of the scrape, and a
//! `participant` label only for participants in one of them: a scrape has at most
//! 2 series per live class plus 8 per participant of a live class, and a series
//! disappears when its class closes or its participant leaves. Expected classrooms
//! that have not joined get no series.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::rooms::dashboard::ClassView;
use crate::rooms::health::ClassroomHealth;
use crate::sfu::stats::{DropReason, SfuCounters};

pub async fn render(State(s): State<AppState>) -> impl IntoResponse {
    let counters = s.rooms.driver.counters();
    let gauges = s.rooms.driver.gauges();
    let sum = |f: fn(&SfuCounters) -> u64| counters.iter().map(|c| f(c)).sum::<u64>();
    let mut out = String::new();
    gauge(&mut out, "classcast_classes_live", "Classes with at least one participant", s.rooms.live.count() as u64);
    gauge(&mut out, "classcast_participants", "Participants in live classes", s.rooms.live.participant_count() as u64);
    gauge(&mut out, "classcast_peer_connections", "WebRTC connections", gauges.iter().map(|g| g.peers.load(Relaxed)).sum());
    gauge(&mut out, "classcast_tracks", "Tracks received from publishers", gauges.iter().map(|g| g.tracks.load(Relaxed)).sum());
    counter(&mut out, "classcast_packets_received_total", "RTP packets received from publishers", sum(|c| SfuCounters::get(&c.packets_received)));
    counter(&mut out, "classcast_packets_forwarded_total", "RTP packets sent to subscribers", sum(|c| SfuCounters::get(&c.packets_forwarded)));
    counter(&mut out, "classcast_bytes_forwarded_total", "RTP payload bytes sent to subscribers", sum(|c| SfuCounters::get(&c.bytes_forwarded)));
    counter(&mut out, "classcast_keyframe_requests_received_total", "Keyframe requests from subscribers", sum(|c| SfuCounters::get(&c.keyframe_requests_received)));
    counter(&mut out, "classcast_keyframe_requests_sent_total", "Keyframe requests sent to publishers", sum(|c| SfuCounters::get(&c.keyframe_requests_sent)));
    counter(&mut out, "classcast_send_errors_total", "Datagrams the media socket failed to send", gauges.iter().map(|g| g.send_errors.load(Relaxed)).sum());
    let _ = writeln!(out, "# HELP classcast_dropped_packets_total Datagrams and packets not forwarded, by reason\n# TYPE classcast_dropped_packets_total counter");
    for r in DropReason::ALL {
        let n: u64 = counters.iter().map(|c| c.drops(r)).sum();
        let _ = writeln!(out, "classcast_dropped_packets_total{{reason=\"{}\"}} {n}", r.as_str());
    }
    counter_labeled(&mut out, "classcast_receive_reports_total", "Client receive reports, by result (rejected: a value out of bounds)", "result", &[
        ("accepted", s.rooms.health.reports_accepted.load(Relaxed)),
        ("rejected", s.rooms.health.reports_rejected.load(Relaxed)),
    ]);
    live_classes(&mut out, &s.rooms.live_health(std::time::Instant::now()));
    if let Some(r) = s.rooms.recording() {
        let h = r.health();
        gauge(&mut out, "classcast_recording_lessons", "Lessons being recorded", h.lessons.load(Relaxed));
        gauge(&mut out, "classcast_recording_tracks", "Tracks being recorded", h.tracks_recording.load(Relaxed));
        gauge(&mut out, "classcast_recording_tracks_failing", "Recorded tracks whose pipeline failed and waits to restart (alert when > 0)", h.tracks_failing.load(Relaxed));
        gauge(&mut out, "classcast_recording_disk_low", "1 while recording is paused because the disk is almost full (alert)", h.disk_low.load(Relaxed));
        counter(&mut out, "classcast_recording_faults_total", "Recorder pipeline faults", h.faults.load(Relaxed));
        counter(&mut out, "classcast_recording_packets_lost_total", "Packets not recorded (queue full or pipeline down)", h.packets_lost.load(Relaxed));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out)
}

/// A labelled gauge family: HELP and TYPE, then one sample per `(labels, value)`.
struct Family<'a> {
    name: &'a str,
    samples: Vec<(String, f64)>,
}

impl Family<'_> {
    fn write(&self, out: &mut String, help: &str) {
        let _ = writeln!(out, "# HELP {} {help}\n# TYPE {} gauge", self.name, self.name);
        for (labels, v) in &self.samples {
            let _ = writeln!(out, "{}{{{labels}}} {v}", self.name);
        }
    }
}

/// Per-class and per-participant gauges of the live classes (see the header for the bound).
fn live_classes(out: &mut String, classes: &[ClassView]) {
    let mut per_class = [Family { name: "classcast_class_participants", samples: vec![] }, Family { name: "classcast_class_degraded", samples: vec![] }];
    let names = [
        "classcast_classroom_connected",
        "classcast_classroom_degraded",
        "classcast_classroom_bitrate_bps",
        "classcast_classroom_loss_ratio",
        "classcast_classroom_rtt_seconds",
        "classcast_classroom_freezes_last_minute",
    ];
    let mut per_room = names.map(|name| Family { name, samples: vec![] });
    for c in classes {
        let class = format!("class=\"{}\"", escape(&c.id));
        per_class[0].samples.push((class.clone(), c.participants as f64));
        per_class[1].samples.push((class.clone(), c.degraded as f64));
        for r in c.classrooms.iter().filter(|r| r.joined) {
            room_samples(&mut per_room, &format!("{class},participant=\"{}\"", escape(&r.id)), &r.health);
        }
    }
    per_class[0].write(out, "Participants in a live class");
    per_class[1].write(out, "Degraded participants in a live class");
    let helps = [
        "1 while the participant's media connection is up",
        "1 while the participant is degraded (see the dashboard for the reasons)",
        "Media bitrate to (down) and from (up) the participant",
        "Fraction of packets lost to (down) and from (up) the participant, when known",
        "Round-trip time to the participant, when known",
        "Video freezes the participant saw in the last minute",
    ];
    for (f, help) in per_room.iter().zip(helps) {
        f.write(out, help);
    }
}

fn room_samples(f: &mut [Family; 6], labels: &str, h: &ClassroomHealth) {
    let dir = |d: &str| format!("{labels},direction=\"{d}\"");
    f[0].samples.push((labels.to_string(), f64::from(u8::from(h.connected))));
    f[1].samples.push((labels.to_string(), f64::from(u8::from(h.degraded))));
    f[2].samples.push((dir("down"), h.bitrate_down_kbps as f64 * 1000.0));
    f[2].samples.push((dir("up"), h.bitrate_up_kbps as f64 * 1000.0));
    for (d, loss) in [("down", h.loss_down_pct), ("up", h.loss_up_pct)] {
        if let Some(pct) = loss {
            f[3].samples.push((dir(d), f64::from(pct) / 100.0));
        }
    }
    if let Some(ms) = h.rtt_ms {
        f[4].samples.push((labels.to_string(), f64::from(ms) / 1000.0));
    }
    f[5].samples.push((labels.to_string(), f64::from(h.freezes_last_minute)));
}

/// A label value as the exposition format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn counter_labeled(out: &mut String, name: &str, help: &str, label: &str, values: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (value, n) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::dashboard::ClassroomView;
    use crate::signaling::protocol::Role;

    #[test]
    fn live_classes_give_one_series_per_class_and_per_joined_participant() {
        let joined = |id: &str, degraded| ClassroomView {
            id: id.into(),
            name: id.into(),
            role: Role::Classroom,
            joined: true,
            health: ClassroomHealth { connected: true, degraded, loss_down_pct: Some(30.0), rtt_ms: Some(40), ..Default::default() },
        };
        let absent = ClassroomView { joined: false, ..joined("r9", false) };
        let class = ClassView {
            id: "k\"1".into(),
            title: "Maths".into(),
            call_on: None,
            recording: false,
            participants: 2,
            degraded: 1,
            classrooms: vec![joined("r1", true), joined("r2", false), absent],
        };
        let mut out = String::new();
        live_classes(&mut out, &[class]);
        assert!(out.contains("classcast_class_participants{class=\"k\\\"1\"} 2\n"), "{out}");
        assert!(out.contains("classcast_classroom_degraded{class=\"k\\\"1\",participant=\"r1\"} 1\n"));
        assert!(out.contains("classcast_classroom_loss_ratio{class=\"k\\\"1\",participant=\"r2\",direction=\"down\"} 0.3\n"));
        assert!(out.contains("classcast_classroom_rtt_seconds{class=\"k\\\"1\",participant=\"r1\"} 0.04\n"));
        assert!(!out.contains("r9"), "no series for a classroom that has not joined");
        assert!(!out.contains("loss_ratio{class=\"k\\\"1\",participant=\"r1\",direction=\"up\"}"), "an unknown loss has no sample: {out}");
    }
}
