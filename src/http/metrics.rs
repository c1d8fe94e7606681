//! Prometheus text exposition of the server's counters and gauges.
//!
//! Label sets are bounded: drop reasons are a fixed enum; no per-class or
//! per-peer labels here.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
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

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
}
