//! The body of `receive_report` (protocol version 2): how a client receives each
//! track, from the browser's `getStats`, and the bounds every value must respect.
//!
//! Invariants:
//! - Numbers are JSON numbers of any shape (a browser may send `29.97` frames or
//!   a width of `1280.0`), so an odd value is never a parse error that closes the
//!   session; `check` refuses a report with a value outside its bounds and names
//!   the field (`tracks[1].fps`), and the session answers `error` and goes on.
//! - A checked report has at most `MAX_TRACKS` tracks, each with a well-formed
//!   track key, so what the server keeps per participant is bounded.

use serde::{Deserialize, Serialize};

use super::protocol::{MediaKind, Source};

/// Most tracks in one report (a subscribe connection carries about ten).
pub const MAX_TRACKS: usize = 32;
/// Longest accepted track key.
pub const MAX_KEY: usize = 100;

/// How one received track is doing. Video fields are absent for audio and the other way round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackReport {
    /// The track key (`main/camera`, `spotlight/mic`, `<classroom>/camera`).
    pub key: String,
    pub kind: MediaKind,
    /// Frames decoded per second over the last interval.
    pub fps: Option<f64>,
    /// Size of the frames received (the layer received).
    pub width: Option<f64>,
    pub height: Option<f64>,
    /// The browser's `freezeCount` and `totalFreezesDuration` (in ms) since the track began.
    pub freeze_count: Option<f64>,
    pub freeze_ms: Option<f64>,
    /// Audio: concealed samples / samples received over the last interval (0-1).
    pub concealed_ratio: Option<f64>,
    /// Inter-arrival jitter, ms.
    pub jitter_ms: Option<f64>,
}

/// Why a report was refused: the field, as written in the message, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receive_report: {field} {reason}")]
pub struct ReportError {
    pub field: String,
    pub reason: &'static str,
}

fn bad(field: impl Into<String>, reason: &'static str) -> ReportError {
    ReportError { field: field.into(), reason }
}

/// Whether every value of a report lies within its bounds.
pub fn check(tracks: &[TrackReport], rtt_ms: Option<f64>) -> Result<(), ReportError> {
    if tracks.len() > MAX_TRACKS {
        return Err(bad("tracks", "lists more than 32 tracks"));
    }
    within("rtt_ms", rtt_ms, 0.0, 60_000.0)?;
    for (i, t) in tracks.iter().enumerate() {
        check_track(&format!("tracks[{i}]"), t)?;
    }
    Ok(())
}

fn check_track(at: &str, t: &TrackReport) -> Result<(), ReportError> {
    if !is_track_key(&t.key) {
        return Err(bad(format!("{at}.key"), "is not a track key like main/camera"));
    }
    within(&format!("{at}.fps"), t.fps, 0.0, 1000.0)?;
    whole(&format!("{at}.width"), t.width, 65_535.0)?;
    whole(&format!("{at}.height"), t.height, 65_535.0)?;
    whole(&format!("{at}.freeze_count"), t.freeze_count, 1e9)?;
    within(&format!("{at}.freeze_ms"), t.freeze_ms, 0.0, 1e10)?;
    within(&format!("{at}.concealed_ratio"), t.concealed_ratio, 0.0, 1.0)?;
    within(&format!("{at}.jitter_ms"), t.jitter_ms, 0.0, 60_000.0)
}

/// `owner/source` with a known source and a short owner.
fn is_track_key(key: &str) -> bool {
    let Some((owner, source)) = key.rsplit_once('/') else { return false };
    key.len() <= MAX_KEY && !owner.is_empty() && Source::ALL.iter().any(|s| s.as_str() == source)
}

fn within(field: &str, v: Option<f64>, min: f64, max: f64) -> Result<(), ReportError> {
    match v {
        Some(x) if !(x.is_finite() && (min..=max).contains(&x)) => Err(bad(field, "is out of bounds")),
        _ => Ok(()),
    }
}

fn whole(field: &str, v: Option<f64>, max: f64) -> Result<(), ReportError> {
    within(field, v, 0.0, max)?;
    match v {
        Some(x) if x.fract() != 0.0 => Err(bad(field, "is not a whole number")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::protocol::ClientMsg;

    fn video(key: &str) -> TrackReport {
        TrackReport {
            key: key.into(),
            kind: MediaKind::Video,
            fps: Some(29.5),
            width: Some(1280.0),
            height: Some(720.0),
            freeze_count: Some(2.0),
            freeze_ms: Some(1200.0),
            concealed_ratio: None,
            jitter_ms: Some(3.5),
        }
    }

    #[test]
    fn a_documented_report_parses_and_passes() {
        let json = r#"{"type":"receive_report","rtt_ms":12.5,"tracks":[
            {"key":"main/camera","kind":"video","fps":29.5,"width":1280,"height":720,"freeze_count":2,"freeze_ms":1200,"jitter_ms":3.5},
            {"key":"main/mic","kind":"audio","concealed_ratio":0.01,"jitter_ms":4}]}"#;
        let ClientMsg::ReceiveReport { tracks, rtt_ms } = serde_json::from_str(json).unwrap() else { panic!("wrong variant") };
        assert_eq!(tracks[0], video("main/camera"));
        assert_eq!(tracks[1].fps, None);
        assert_eq!(check(&tracks, rtt_ms), Ok(()));
    }

    #[test]
    fn out_of_bounds_values_are_refused_naming_the_field() {
        let cases: [(fn(&mut TrackReport), &str); 6] = [
            (|t| t.fps = Some(-1.0), "tracks[1].fps"),
            (|t| t.width = Some(1280.5), "tracks[1].width"),
            (|t| t.height = Some(1e6), "tracks[1].height"),
            (|t| t.concealed_ratio = Some(1.5), "tracks[1].concealed_ratio"),
            (|t| t.key = "main/hologram".into(), "tracks[1].key"),
            (|t| t.key = "/camera".into(), "tracks[1].key"),
        ];
        for (spoil, field) in cases {
            let mut bad_track = video("main/camera");
            spoil(&mut bad_track);
            let err = check(&[video("main/board"), bad_track], None).unwrap_err();
            assert_eq!(err.field, field);
        }
        assert_eq!(check(&[], Some(-3.0)).unwrap_err().field, "rtt_ms");
        let many: Vec<_> = (0..33).map(|_| video("main/camera")).collect();
        assert_eq!(check(&many, None).unwrap_err().field, "tracks");
        let long = format!("{}/camera", "x".repeat(200));
        assert_eq!(check(&[video(&long)], None).unwrap_err().field, "tracks[0].key");
    }

    #[test]
    fn unknown_fields_in_a_track_are_a_bad_message() {
        let json = r#"{"type":"receive_report","rtt_ms":null,"tracks":[{"key":"main/mic","kind":"audio","volume":3}]}"#;
        assert!(serde_json::from_str::<ClientMsg>(json).is_err());
    }
}
