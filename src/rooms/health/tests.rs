//! The verdict's rules, driven with synthetic inputs and explicit time.

use super::*;
use crate::sfu::health::PerKind;

const S: Duration = Duration::from_secs(1);

fn class() -> RoomId {
    RoomId::from("k1")
}

/// A connection's health at `at`: media flowing, no loss unless given.
fn sample(peer: u64, side: Side, at: Instant, loss: Option<f32>) -> PeerHealth {
    let flowing = PerKind { audio: Some(at), video: Some(at) };
    PeerHealth {
        peer: PeerId(peer),
        room: class(),
        participant: Arc::from("c1"),
        side,
        at,
        connected: true,
        bitrate_in: if side == Side::Up { 1_500_000 } else { 0 },
        bitrate_out: if side == Side::Down { 900_000 } else { 0 },
        loss_in: if side == Side::Up { loss } else { None },
        loss_out: if side == Side::Down { loss } else { None },
        rtt: Some(Duration::from_millis(20)),
        packets_in: PerKind { audio: 50, video: 100 },
        packets_out: PerKind { audio: 50, video: 100 },
        last_in: if side == Side::Up { flowing } else { PerKind::default() },
        last_out: if side == Side::Down { flowing } else { PerKind::default() },
    }
}

fn camera(key: &str, fps: f64, freezes: f64) -> TrackReport {
    TrackReport {
        key: key.into(),
        kind: MediaKind::Video,
        fps: Some(fps),
        width: Some(1280.0),
        height: Some(720.0),
        freeze_count: Some(freezes),
        freeze_ms: Some(freezes * 400.0),
        concealed_ratio: None,
        jitter_ms: Some(4.0),
    }
}

/// Both connections of c1, healthy, every second from `t0` for `secs`; returns the time after.
fn healthy(book: &mut HealthBook, t0: Instant, secs: u64) -> Instant {
    for i in 0..secs {
        let at = t0 + S * i as u32;
        book.peer(sample(1, Side::Up, at, Some(0.0)));
        book.peer(sample(2, Side::Down, at, Some(0.0)));
    }
    t0 + S * secs as u32
}

#[test]
fn a_healthy_classroom_is_connected_and_flowing_both_ways() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let t = healthy(&mut book, t0, 3);
    book.report(&class(), "c1", t, vec![camera("main/camera", 25.0, 0.0)], Some(18.0));
    let h = book.evaluate(&class(), "c1", t);
    assert!(h.connected && !h.degraded, "{h:?}");
    assert_eq!((h.audio, h.video), (Flow { up: true, down: true }, Flow { up: true, down: true }));
    assert_eq!((h.bitrate_up_kbps, h.bitrate_down_kbps), (1500, 900));
    assert_eq!((h.loss_up_pct, h.loss_down_pct, h.rtt_ms), (Some(0.0), Some(0.0), Some(18)), "the smaller round-trip estimate");
    assert_eq!(h.layer, Some(VideoIn { key: "main/camera".into(), width: 1280, height: 720, fps: Some(25.0) }));
}

#[test]
fn a_step_into_loss_degrades_at_once_and_recovery_waits_for_the_hold() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let t = healthy(&mut book, t0, 5);
    // One report with 30 % loss on the way down: degraded in that very update.
    book.peer(sample(2, Side::Down, t, Some(0.3)));
    let h = book.evaluate(&class(), "c1", t);
    assert!(h.degraded);
    assert_eq!(h.reasons, vec![Reason::Loss]);
    assert_eq!(h.loss_down_pct, Some(30.0));
    // The link recovers: clean reports, but the verdict holds for `hold` (5 s).
    let mut cleared = None;
    for i in 1..=8u32 {
        let at = t + S * i;
        book.peer(sample(2, Side::Down, at, Some(0.0)));
        book.peer(sample(1, Side::Up, at, Some(0.0)));
        let h = book.evaluate(&class(), "c1", at);
        if !h.degraded && cleared.is_none() {
            cleared = Some(i);
        }
        if cleared.is_some() {
            assert!(!h.degraded, "no flapping back at {i} s");
        }
    }
    assert_eq!(cleared, Some(5), "clears one hold after the lossy figure was replaced by a clean one");
}

#[test]
fn loss_at_the_threshold_is_not_degraded_and_unknown_loss_is_not_zero() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    book.peer(sample(1, Side::Up, t0, Some(0.05)));
    book.peer(sample(2, Side::Down, t0, None));
    let h = book.evaluate(&class(), "c1", t0);
    assert!(!h.degraded, "{h:?}");
    assert_eq!(h.loss_down_pct, None);
}

#[test]
fn freezes_count_over_a_minute_and_a_recent_one_degrades() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let both = |book: &mut HealthBook, at: Instant, down_peer: u64| {
        book.peer(sample(1, Side::Up, at, Some(0.0)));
        book.peer(sample(down_peer, Side::Down, at, Some(0.0)));
    };
    // The first report is the baseline: freezes from before it are not counted; nor
    // are those of the stream's first 15 s (the picture steps up in size).
    both(&mut book, t0, 2);
    book.report(&class(), "c1", t0, vec![camera("main/camera", 25.0, 4.0)], None);
    let t = t0 + 10 * S;
    both(&mut book, t, 2);
    book.report(&class(), "c1", t, vec![camera("main/camera", 25.0, 5.0)], None);
    let h = book.evaluate(&class(), "c1", t);
    assert_eq!((h.freezes_last_minute, h.degraded), (0, false), "{h:?}");
    let t = t0 + 20 * S;
    both(&mut book, t, 2);
    book.report(&class(), "c1", t, vec![camera("main/camera", 25.0, 7.0)], None);
    let h = book.evaluate(&class(), "c1", t);
    assert_eq!((h.freezes_last_minute, h.reasons.clone()), (2, vec![Reason::Freeze]));
    // A new subscribe connection starts counting from zero: a new stream, with its own start.
    let t2 = t + 20 * S;
    both(&mut book, t2, 3);
    book.report(&class(), "c1", t2, vec![camera("main/camera", 25.0, 1.0)], None);
    let t3 = t2 + 16 * S;
    both(&mut book, t3, 3);
    book.report(&class(), "c1", t3, vec![camera("main/camera", 25.0, 2.0)], None);
    let h = book.evaluate(&class(), "c1", t3);
    assert_eq!((h.freezes_last_minute, h.reasons.clone()), (3, vec![Reason::Freeze]));
    // A minute after the first two, only the last one is within the window.
    let t4 = t + 65 * S;
    both(&mut book, t4, 3);
    book.report(&class(), "c1", t4, vec![camera("main/camera", 25.0, 2.0)], None);
    let h = book.evaluate(&class(), "c1", t4);
    assert_eq!(h.freezes_last_minute, 1);
    assert!(!h.degraded, "the last freeze is 29 s old: {h:?}");
}

#[test]
fn low_frame_rate_of_a_camera_degrades_but_a_still_screen_does_not() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let t = healthy(&mut book, t0, 1);
    book.report(&class(), "c1", t, vec![camera("main/camera", 25.0, 0.0), camera("main/screen", 2.0, 0.0)], None);
    assert!(!book.evaluate(&class(), "c1", t).degraded);
    book.report(&class(), "c1", t + S, vec![camera("main/camera", 6.0, 0.0), camera("main/screen", 2.0, 0.0)], None);
    assert_eq!(book.evaluate(&class(), "c1", t + S).reasons, vec![Reason::LowFps]);
}

#[test]
fn a_slow_round_trip_degrades_when_every_estimate_says_so() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let t = healthy(&mut book, t0, 1);
    // The client's estimate spikes (a busy browser answers late), the server's does not.
    book.report(&class(), "c1", t, vec![], Some(650.0));
    let h = book.evaluate(&class(), "c1", t);
    assert_eq!((h.rtt_ms, h.degraded), (Some(20), false));
    // Both see a slow path.
    let t2 = t + S;
    for (peer, side) in [(1, Side::Up), (2, Side::Down)] {
        let mut slow = sample(peer, side, t2, Some(0.0));
        slow.rtt = Some(Duration::from_millis(600));
        book.peer(slow);
    }
    book.report(&class(), "c1", t2, vec![], Some(650.0));
    let h = book.evaluate(&class(), "c1", t2);
    assert_eq!((h.rtt_ms, h.reasons), (Some(600), vec![Reason::Rtt]));
}

#[test]
fn media_that_stops_arriving_while_connected_degrades_after_the_stall_time() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let t = healthy(&mut book, t0, 2);
    let last = t - S;
    for i in 0..=4u32 {
        let at = t + S * i;
        let mut up = sample(1, Side::Up, at, None);
        up.last_in = PerKind { audio: Some(at), video: Some(last) };
        up.packets_in.video = 0;
        book.peer(up);
        book.peer(sample(2, Side::Down, at, Some(0.0)));
        let h = book.evaluate(&class(), "c1", at);
        let stalled = at.duration_since(last) > Duration::from_secs(3);
        assert_eq!(h.reasons.contains(&Reason::MediaStopped), stalled, "at +{i} s: {h:?}");
        assert_eq!(h.video.up, !stalled);
    }
}

#[test]
fn a_member_without_media_is_degraded_after_the_grace_and_stale_figures_are_unknown() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    // Just joined: connecting takes a moment.
    assert!(!book.evaluate(&class(), "c1", t0).degraded);
    assert!(!book.evaluate(&class(), "c1", t0 + 4 * S).degraded);
    let h = book.evaluate(&class(), "c1", t0 + 5 * S);
    assert_eq!(h.reasons, vec![Reason::NoMedia]);
    // Connected, then its connections stop reporting: their figures age out.
    let t = healthy(&mut book, t0 + 6 * S, 1);
    assert!(book.evaluate(&class(), "c1", t).connected);
    let later = t + 4 * S;
    let h = book.evaluate(&class(), "c1", later);
    assert!(!h.connected && h.bitrate_up_kbps == 0 && h.reasons.contains(&Reason::NoMedia), "{h:?}");
}

#[test]
fn closed_connections_and_departed_members_are_forgotten() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let t = healthy(&mut book, t0, 1);
    book.peer_closed(PeerId(1));
    let h = book.evaluate(&class(), "c1", t);
    assert_eq!((h.bitrate_up_kbps, h.bitrate_down_kbps), (0, 900));
    book.peer_closed(PeerId(99));
    book.retain(|_, p| p != "c1");
    assert!(book.classes.is_empty());
    assert!(!book.owners.contains_key(&PeerId(1)));
}

#[test]
fn viewers_go_with_their_last_connection_and_members_when_they_leave() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let mut viewer = sample(7, Side::Down, t0, Some(0.0));
    viewer.participant = Arc::from("o1");
    book.peer(viewer);
    healthy(&mut book, t0, 1);
    book.report(&class(), "c1", t0, vec![], None);
    book.peer_closed(PeerId(7));
    assert!(!book.classes[&class()].contains_key("o1"), "a WHEP viewer is forgotten with its connection");
    book.peer_closed(PeerId(1));
    book.peer_closed(PeerId(2));
    assert!(book.classes[&class()].contains_key("c1"), "a member between reconnections keeps its history");
    book.forget("k1", "c1");
    assert!(book.classes.is_empty());
    healthy(&mut book, t0, 1);
    book.forget_class("k1");
    assert!(book.classes.is_empty());
}

#[test]
fn a_restarted_shard_takes_its_connections_figures_along() {
    let mut book = HealthBook::default();
    let t0 = Instant::now();
    let t = healthy(&mut book, t0, 1);
    book.rooms_reset(&[class()]);
    assert!(book.owners.is_empty());
    let h = book.evaluate(&class(), "c1", t);
    assert!(!h.connected && h.bitrate_down_kbps == 0, "{h:?}");
}
