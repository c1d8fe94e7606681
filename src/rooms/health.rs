//! How each participant of a live class is doing, for the dashboard and metrics:
//! the server's view of its connections (`PeerHealth`, once a second each) and
//! the client's own view of what it receives (`receive_report`, every 2 s),
//! combined into one `ClassroomHealth` with a `degraded` verdict and its reasons.
//!
//! Invariants:
//! - Pure logic with explicit time: nothing here reads a clock, so every rule is
//!   tested with synthetic inputs.
//! - A reason counts as soon as one input shows it (a step into loss is degraded
//!   on the next evaluation); the verdict clears only after no reason has been
//!   seen for `Rules::hold`, so a link at the edge of a threshold does not flap.
//!   The reasons shown are those seen within the hold.
//! - Figures older than `Rules::sample_age` (server) or `Rules::report_age`
//!   (client) are unknown, not zero: a connection that stopped reporting does not
//!   keep its last bitrate.
//! - Memory is bounded by the participants tracked: each keeps its connections'
//!   latest health (dropped when the connection closes or its shard restarts), its
//!   latest report (at most `report::MAX_TRACKS` tracks) and one minute of freeze
//!   counts. A participant is forgotten when it leaves (`forget`), when its class
//!   closes (`forget_class`), when a picture no longer lists it (`retain`), and a
//!   connection-only participant (a WHEP viewer) when its last connection closes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sfu::health::{PeerHealth, Side};
use crate::sfu::{PeerId, RoomId};
use crate::signaling::protocol::MediaKind;
use crate::signaling::report::TrackReport;

/// Thresholds of the verdict.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Loss fraction above which a direction is degraded.
    pub max_loss: f32,
    pub max_rtt: Duration,
    /// A freeze this recent degrades.
    pub freeze_recent: Duration,
    /// Freezes are counted over this window for display.
    pub freeze_window: Duration,
    /// Freezes in a received stream's first moments are not counted (see `FreezeLog`).
    pub freeze_startup: Duration,
    /// Received camera or board video below this rate degrades.
    pub min_fps: f64,
    /// Media sent by the participant that stops this long while connected degrades.
    pub media_stall: Duration,
    /// How long the verdict stays degraded after the last reason was seen.
    pub hold: Duration,
    /// A member whose media is not connected this long after it joined is degraded.
    pub connect_grace: Duration,
    pub sample_age: Duration,
    pub report_age: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_loss: 0.05,
            max_rtt: Duration::from_millis(500),
            freeze_recent: Duration::from_secs(10),
            freeze_window: Duration::from_secs(60),
            freeze_startup: Duration::from_secs(15),
            min_fps: 10.0,
            media_stall: Duration::from_secs(3),
            hold: Duration::from_secs(5),
            connect_grace: Duration::from_secs(5),
            sample_age: Duration::from_secs(3),
            report_age: Duration::from_secs(6),
        }
    }
}

/// Why a participant is degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// In the class, but its media connection is not up.
    NoMedia,
    Loss,
    Rtt,
    Freeze,
    LowFps,
    /// What it sends stopped arriving.
    MediaStopped,
}

impl Reason {
    pub const ALL: [Reason; 6] = [Reason::NoMedia, Reason::Loss, Reason::Rtt, Reason::Freeze, Reason::LowFps, Reason::MediaStopped];
}

/// Whether a kind of media flows from (`up`) and to (`down`) the participant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub up: bool,
    pub down: bool,
}

/// A received video track as the client sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoIn {
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub fps: Option<f64>,
}

/// A participant's state on the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClassroomHealth {
    pub connected: bool,
    pub audio: Flow,
    pub video: Flow,
    pub bitrate_down_kbps: u64,
    pub bitrate_up_kbps: u64,
    pub loss_down_pct: Option<f32>,
    pub loss_up_pct: Option<f32>,
    /// The smallest of the server's and the client's estimates.
    pub rtt_ms: Option<u32>,
    pub jitter_ms: Option<f64>,
    /// Audio concealed by the receiver over the last report, worst track.
    pub concealed_pct: Option<f64>,
    /// The main video received (the teacher's camera for a classroom).
    pub layer: Option<VideoIn>,
    pub video_in: Vec<VideoIn>,
    pub freezes_last_minute: u32,
    pub degraded: bool,
    pub reasons: Vec<Reason>,
}

#[derive(Debug)]
struct Report {
    at: Instant,
    tracks: Vec<TrackReport>,
    rtt_ms: Option<f64>,
}

/// Freeze counts of the received tracks, as increments over the last window.
#[derive(Debug, Default)]
struct FreezeLog {
    /// Per track key: its last count and since when it counts (its first report).
    counts: HashMap<String, (u64, Instant)>,
    events: VecDeque<(Instant, u64)>,
}

impl FreezeLog {
    /// The counts of one report. The first count of a track is its baseline, and a
    /// count that went down is a new stream (the browser started over); freezes in
    /// the first `startup` of a stream are not counted: the picture steps up in size
    /// while the bandwidth estimate ramps up, and each step may stall a moment.
    fn record(&mut self, at: Instant, tracks: &[TrackReport], rules: &Rules) {
        let mut counts = HashMap::new();
        for t in tracks {
            let Some(n) = t.freeze_count.map(|c| c as u64) else { continue };
            let (new, began) = match self.counts.get(&t.key) {
                Some(&(before, began)) if n >= before => (n - before, began),
                _ => (0, at),
            };
            if new > 0 && at.saturating_duration_since(began) >= rules.freeze_startup {
                self.events.push_back((at, new));
            }
            counts.insert(t.key.clone(), (n, began));
        }
        self.counts = counts;
        while self.events.front().is_some_and(|(t, _)| at.saturating_duration_since(*t) > rules.freeze_window) {
            self.events.pop_front();
        }
    }

    fn since(&self, now: Instant, window: Duration) -> u64 {
        self.events.iter().filter(|(t, _)| now.saturating_duration_since(*t) <= window).map(|(_, n)| n).sum()
    }
}

/// What is known about one participant.
#[derive(Debug)]
struct Tracked {
    since: Instant,
    peers: HashMap<PeerId, PeerHealth>,
    report: Option<Report>,
    freezes: FreezeLog,
    seen: [Option<Instant>; Reason::ALL.len()],
}

impl Tracked {
    fn new(since: Instant) -> Self {
        Tracked { since, peers: HashMap::new(), report: None, freezes: FreezeLog::default(), seen: [None; Reason::ALL.len()] }
    }
}

/// Every tracked participant, by class and identity.
#[derive(Debug, Default)]
pub struct HealthBook {
    rules: Rules,
    classes: HashMap<RoomId, HashMap<String, Tracked>>,
    owners: HashMap<PeerId, (RoomId, Arc<str>)>,
}

impl HealthBook {
    pub fn new(rules: Rules) -> Self {
        HealthBook { rules, ..HealthBook::default() }
    }

    fn tracked(&mut self, class: &RoomId, participant: &str, now: Instant) -> &mut Tracked {
        let members = self.classes.entry(class.clone()).or_default();
        members.entry(participant.to_string()).or_insert_with(|| Tracked::new(now))
    }

    /// The latest health of one connection.
    pub fn peer(&mut self, h: PeerHealth) {
        let (class, participant, at) = (h.room.clone(), h.participant.clone(), h.at);
        self.owners.insert(h.peer, (class.clone(), participant.clone()));
        self.tracked(&class, &participant, at).peers.insert(h.peer, h);
        self.evaluate(&class, &participant, at);
    }

    /// The connection is gone: its figures no longer count.
    pub fn peer_closed(&mut self, peer: PeerId) {
        let Some((class, participant)) = self.owners.remove(&peer) else { return };
        let Some(members) = self.classes.get_mut(&class) else { return };
        if let Some(t) = members.get_mut(&*participant) {
            t.peers.remove(&peer);
            if t.peers.is_empty() && t.report.is_none() {
                members.remove(&*participant);
            }
        }
        if members.is_empty() {
            self.classes.remove(&class);
        }
    }

    /// The forwarding thread of these classes restarted: their connections are gone
    /// without a close of their own.
    pub fn rooms_reset(&mut self, rooms: &[RoomId]) {
        self.owners.retain(|_, (class, _)| !rooms.contains(class));
        for (_, members) in self.classes.iter_mut().filter(|(class, _)| rooms.contains(class)) {
            members.values_mut().for_each(|t| t.peers.clear());
        }
    }

    /// The participant left its class.
    pub fn forget(&mut self, class: &str, participant: &str) {
        if let Some(members) = self.classes.get_mut(class) {
            members.remove(participant);
            if members.is_empty() {
                self.classes.remove(class);
            }
        }
    }

    /// The class closed.
    pub fn forget_class(&mut self, class: &str) {
        self.classes.remove(class);
    }

    /// A checked `receive_report` of a participant, received at `at`.
    pub fn report(&mut self, class: &RoomId, participant: &str, at: Instant, tracks: Vec<TrackReport>, rtt_ms: Option<f64>) {
        let rules = self.rules.clone();
        let t = self.tracked(class, participant, at);
        t.freezes.record(at, &tracks, &rules);
        t.report = Some(Report { at, tracks, rtt_ms });
        self.evaluate(class, participant, at);
    }

    /// Forget participants for which `keep(class, participant)` is false.
    pub fn retain(&mut self, keep: impl Fn(&str, &str) -> bool) {
        for (class, members) in self.classes.iter_mut() {
            members.retain(|p, _| keep(class, p));
        }
        self.classes.retain(|_, m| !m.is_empty());
    }

    /// The participant's state at `now` (a participant not seen before starts being tracked).
    pub fn evaluate(&mut self, class: &RoomId, participant: &str, now: Instant) -> ClassroomHealth {
        let rules = self.rules.clone();
        let t = self.tracked(class, participant, now);
        let mut health = figures(t, &rules, now);
        for r in reasons_now(t, &health, &rules, now) {
            t.seen[r as usize] = Some(now);
        }
        health.reasons = Reason::ALL.into_iter().filter(|r| t.seen[*r as usize].is_some_and(|s| now.saturating_duration_since(s) < rules.hold)).collect();
        health.degraded = !health.reasons.is_empty();
        health
    }
}

/// The figures of the fresh inputs (no verdict yet).
fn figures(t: &Tracked, rules: &Rules, now: Instant) -> ClassroomHealth {
    let fresh: Vec<&PeerHealth> = t.peers.values().filter(|h| now.saturating_duration_since(h.at) <= rules.sample_age).collect();
    let ups = || fresh.iter().filter(|h| h.side == Side::Up);
    let downs = || fresh.iter().filter(|h| h.side == Side::Down);
    let recent = |at: Option<Instant>| at.is_some_and(|a| now.saturating_duration_since(a) <= rules.media_stall);
    let report = t.report.as_ref().filter(|r| now.saturating_duration_since(r.at) <= rules.report_age);
    // Every estimate only adds processing delays to the true round trip (a busy
    // browser answers late), so the smallest one is the best.
    let server_rtt = fresh.iter().filter_map(|h| h.rtt).min().map(|d| d.as_millis() as f64);
    let client_rtt = report.and_then(|r| r.rtt_ms);
    let video_in = report.map(|r| videos(&r.tracks)).unwrap_or_default();
    ClassroomHealth {
        connected: fresh.iter().any(|h| h.connected),
        audio: Flow { up: ups().any(|h| recent(h.last_in.audio)), down: downs().any(|h| recent(h.last_out.audio)) },
        video: Flow { up: ups().any(|h| recent(h.last_in.video)), down: downs().any(|h| recent(h.last_out.video)) },
        bitrate_down_kbps: downs().map(|h| h.bitrate_out).sum::<u64>() / 1000,
        bitrate_up_kbps: ups().map(|h| h.bitrate_in).sum::<u64>() / 1000,
        loss_down_pct: percent(downs().filter_map(|h| h.loss_out)),
        loss_up_pct: percent(ups().filter_map(|h| h.loss_in)),
        rtt_ms: server_rtt.into_iter().chain(client_rtt).reduce(f64::min).map(|ms| ms.round() as u32),
        jitter_ms: report.and_then(|r| r.tracks.iter().filter_map(|x| x.jitter_ms).reduce(f64::max)),
        concealed_pct: report.and_then(|r| r.tracks.iter().filter_map(|x| x.concealed_ratio).reduce(f64::max)).map(|c| c * 100.0),
        layer: main_video(&video_in),
        video_in,
        freezes_last_minute: t.freezes.since(now, rules.freeze_window).min(u32::MAX as u64) as u32,
        degraded: false,
        reasons: Vec::new(),
    }
}

/// The worst loss, in percent to one decimal.
fn percent(losses: impl Iterator<Item = f32>) -> Option<f32> {
    losses.reduce(f32::max).map(|l| (l * 1000.0).round() / 10.0)
}

fn videos(tracks: &[TrackReport]) -> Vec<VideoIn> {
    tracks
        .iter()
        .filter(|t| t.kind == MediaKind::Video)
        .map(|t| VideoIn { key: t.key.clone(), width: t.width.unwrap_or(0.0) as u32, height: t.height.unwrap_or(0.0) as u32, fps: t.fps })
        .collect()
}

/// The video that matters most: the teacher's camera, else the called-on classroom's, else the first.
fn main_video(v: &[VideoIn]) -> Option<VideoIn> {
    let by_key = |k: &str| v.iter().find(|x| x.key == k);
    by_key("main/camera").or_else(|| by_key("spotlight/camera")).or(v.first()).cloned()
}

/// The reasons the inputs show at `now`.
fn reasons_now(t: &Tracked, h: &ClassroomHealth, rules: &Rules, now: Instant) -> Vec<Reason> {
    let max_loss = rules.max_loss * 100.0;
    let lossy = h.loss_down_pct.is_some_and(|l| l > max_loss) || h.loss_up_pct.is_some_and(|l| l > max_loss);
    let slow = h.rtt_ms.is_some_and(|r| u128::from(r) > rules.max_rtt.as_millis());
    let no_media = !h.connected && now.saturating_duration_since(t.since) >= rules.connect_grace;
    let frozen = t.freezes.since(now, rules.freeze_recent) > 0;
    let low_fps = h.video_in.iter().any(|v| is_camera(&v.key) && v.fps.is_some_and(|f| f < rules.min_fps));
    let checks = [
        (Reason::NoMedia, no_media),
        (Reason::Loss, lossy),
        (Reason::Rtt, slow),
        (Reason::Freeze, frozen),
        (Reason::LowFps, low_fps),
        (Reason::MediaStopped, media_stopped(t, rules, now)),
    ];
    checks.into_iter().filter(|(_, on)| *on).map(|(r, _)| r).collect()
}

/// Cameras move all the time; a shared screen may legitimately send few frames.
fn is_camera(key: &str) -> bool {
    key.ends_with("/camera") || key.ends_with("/board")
}

/// A connected publish connection whose audio or video flowed, and stopped.
fn media_stopped(t: &Tracked, rules: &Rules, now: Instant) -> bool {
    let stale = |at: Option<Instant>| at.is_some_and(|a| now.saturating_duration_since(a) > rules.media_stall);
    t.peers
        .values()
        .filter(|h| h.side == Side::Up && h.connected && now.saturating_duration_since(h.at) <= rules.sample_age)
        .any(|h| stale(h.last_in.audio) || stale(h.last_in.video))
}

#[cfg(test)]
mod tests;
