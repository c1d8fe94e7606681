//! HLS playlists (version 7, fMP4) served straight from recorded part files: every segment
//! is a byte range of one or more consecutive fragments found by [`crate::fmp4`]; nothing is
//! copied or re-muxed.
//!
//! Invariants:
//! - Text only: no I/O, no clock. The same input gives the same playlist byte for byte.
//! - A segment is one or more consecutive, byte-contiguous complete fragments of one part,
//!   so its byte range never crosses a part or a gap. Each listed part starts with its
//!   `#EXT-X-MAP`; every listed part after the first also starts with
//!   `#EXT-X-DISCONTINUITY`. A part without fragments is not listed.
//! - Video: a segment starts at each independent fragment, and when the next fragment
//!   would take it past `max_segment`. Audio: fragments are grouped until the segment
//!   reaches [`AUDIO_SEGMENT`] (a fragment that long is a segment of its own).
//! - A fragment plays until the next fragment's `tfdt` (the file's own timeline, which
//!   summed sample durations miss by their rounding: 0.1 % for VP8); only a part's last
//!   fragment uses its summed durations. `#EXTINF`s therefore add up to the media times.
//! - Segmentation is greedy from the first fragment and each decision only uses fragments
//!   whose length is known, so a listed segment never changes. While live, the last
//!   fragment's length is not known: segmentation stops before it, and the last segment is
//!   listed only if that fragment must start a new one anyway. Successive playlists of a
//!   live lesson therefore only append, and the ended (VOD) playlist lists the same
//!   segments plus the rest. The same `max_segment` must be used for every request.
//! - `#EXT-X-TARGETDURATION` is at least every `#EXTINF` rounded up. In an EVENT playlist
//!   it is also at least `max_segment` (which no segment exceeds unless one fragment alone
//!   does), so it does not change while the lesson grows.
//! - `#EXT-X-INDEPENDENT-SEGMENTS` only when every listed segment starts with a sync
//!   sample, and, while live, only for audio (every Opus frame is a sync sample; a future
//!   video segment may not start with one).
//! - URIs are the part's file name plus `query` verbatim; `"`, CR and LF, which cannot be in
//!   a URI but would break the playlist, are percent-encoded.

use std::time::Duration;

use crate::fmp4::{Fmp4Index, Fragment};

/// Audio fragments are grouped into segments of at least this long.
pub const AUDIO_SEGMENT: Duration = Duration::from_millis(1900);
/// Default longest video segment (a segment starting at a keyframe may be shorter).
pub const DEFAULT_MAX_SEGMENT: Duration = Duration::from_secs(10);
/// `GROUP-ID` of the audio rendition in the master playlist.
const AUDIO_GROUP: &str = "a";

/// One part file of a track and its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPart {
    /// [`crate::layout::PartFile::file_name`], e.g. `main.camera.part1.mp4`.
    pub file_name: String,
    pub index: Fmp4Index,
}

/// How to write a media playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistOptions {
    /// The lesson is over: `VOD` with `#EXT-X-ENDLIST`; else a growing `EVENT` playlist.
    pub ended: bool,
    /// Appended verbatim to every URI, e.g. `?exp=123&sig=abc`; may be empty.
    pub query: String,
    /// [`crate::layout::LessonMeta::started_at_ms`]: wall clock of lesson time 0.
    pub lesson_started_at_ms: u64,
    /// Longest video segment (unless one fragment alone is longer).
    pub max_segment: Duration,
}

impl Default for PlaylistOptions {
    fn default() -> PlaylistOptions {
        PlaylistOptions {
            ended: false,
            query: String::new(),
            lesson_started_at_ms: 0,
            max_segment: DEFAULT_MAX_SEGMENT,
        }
    }
}

/// The video variant of a master playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantInfo {
    /// URI of the video media playlist, as the master playlist should list it.
    pub uri: String,
    /// RFC 6381 codec string ([`Fmp4Index::codec`]).
    pub codec: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Bytes of media and the time they last: `BANDWIDTH` is their ratio.
    pub bytes: u64,
    pub duration: Duration,
}

/// The audio rendition of a master playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioRendition {
    /// URI of the audio media playlist, as the master playlist should list it.
    pub uri: String,
    /// `NAME` shown by players.
    pub name: String,
    pub codec: String,
    pub bytes: u64,
    pub duration: Duration,
}

/// Bytes of all fragments of `parts` and the media time they cover: what
/// [`VariantInfo`] and [`AudioRendition`] compute `BANDWIDTH` from.
pub fn media_totals(parts: &[IndexedPart]) -> (u64, Duration) {
    parts
        .iter()
        .fold((0, Duration::ZERO), |(bytes, time), part| {
            let index = &part.index;
            let part_bytes = index
                .fragments
                .iter()
                .fold(0, |n, f| f.len.saturating_add(n));
            let ms = ticks_to_ms(index.media_duration(), index.timescale);
            let time = time.saturating_add(Duration::from_millis(ms));
            (bytes.saturating_add(part_bytes), time)
        })
}

/// The media playlist of one track made of `parts` (in part order). See the module docs.
pub fn media_playlist(parts: &[IndexedPart], opts: &PlaylistOptions) -> String {
    let listed = listed_parts(parts, opts);
    let mut lines = playlist_header(&listed, opts);
    for (n, (part, segments)) in listed.iter().enumerate() {
        if n > 0 {
            lines.push("#EXT-X-DISCONTINUITY".to_string());
        }
        lines.push(map_line(part, &opts.query));
        for segment in segments {
            lines.extend(segment_lines(part, segment, opts));
        }
    }
    if opts.ended {
        lines.push("#EXT-X-ENDLIST".to_string());
    }
    lines.push(String::new());
    lines.join("\n")
}

/// The master playlist: one video variant and, if present, its audio rendition.
pub fn master_playlist(video: &VariantInfo, audio: Option<&AudioRendition>) -> String {
    let mut lines = vec!["#EXTM3U".to_string(), "#EXT-X-VERSION:7".to_string()];
    let mut bandwidth = bits_per_second(video.bytes, video.duration);
    let mut codecs = video.codec.clone();
    if let Some(audio) = audio {
        lines.push(format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{}\",DEFAULT=YES,\
             AUTOSELECT=YES,URI=\"{}\"",
            quoted_text(&audio.name),
            uri_safe(&audio.uri)
        ));
        bandwidth = bandwidth.saturating_add(bits_per_second(audio.bytes, audio.duration));
        codecs = format!("{codecs},{}", audio.codec);
    }
    let mut stream = format!(
        "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"{}\"",
        quoted_text(&codecs)
    );
    if let (Some(width), Some(height)) = (video.width, video.height) {
        stream += &format!(",RESOLUTION={width}x{height}");
    }
    if audio.is_some() {
        stream += &format!(",AUDIO=\"{AUDIO_GROUP}\"");
    }
    lines.extend([stream, uri_safe(&video.uri), String::new()]);
    lines.join("\n")
}

/// `bytes * 8 / duration`, rounded up, at least 1 (a zero duration counts as 1 ms).
fn bits_per_second(bytes: u64, duration: Duration) -> u64 {
    let ms = duration.as_millis().max(1);
    let bps = (u128::from(bytes) * 8 * 1000).div_ceil(ms);
    u64::try_from(bps).unwrap_or(u64::MAX).max(1)
}

// ---- Segments.

/// A byte range of consecutive fragments of one part, played as one HLS segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    offset: u64,
    len: u64,
    /// Media time of the first fragment, in timescale units.
    start: u64,
    /// Playback length (see [`fragment_lengths`]), in timescale units.
    duration: u64,
    independent: bool,
}

impl Segment {
    fn of(fragment: &Fragment, length: u64) -> Segment {
        Segment {
            offset: fragment.offset,
            len: fragment.len,
            start: fragment.start,
            duration: length,
            independent: fragment.independent,
        }
    }

    fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }

    fn append(&mut self, fragment: &Fragment, length: u64) {
        self.len = self.len.saturating_add(fragment.len);
        self.duration = self.duration.saturating_add(length);
    }
}

/// When a segment is closed, in the timescale of one track.
struct SegmentRule {
    video: bool,
    /// No segment grows past this (unless one fragment alone is longer).
    max: u64,
    /// A segment this long is full: the next fragment starts a new one.
    full: u64,
}

impl SegmentRule {
    fn new(index: &Fmp4Index, max_segment: Duration) -> SegmentRule {
        let max = duration_to_ticks(max_segment, index.timescale);
        let full = if index.is_video() {
            max
        } else {
            max.min(duration_to_ticks(AUDIO_SEGMENT, index.timescale))
        };
        SegmentRule {
            video: index.is_video(),
            max,
            full,
        }
    }

    fn is_full(&self, segment: &Segment) -> bool {
        segment.duration >= self.full
    }

    /// Whether `next`, whatever its length, starts a new segment after `segment`.
    fn must_start_new(&self, segment: &Segment, next: &Fragment) -> bool {
        self.is_full(segment) || next.offset != segment.end() || (self.video && next.independent)
    }

    fn starts_new(&self, segment: &Segment, next: &Fragment, length: u64) -> bool {
        self.must_start_new(segment, next) || segment.duration.saturating_add(length) > self.max
    }
}

/// How long each fragment plays: until the next fragment's start, or for the last one (and
/// one whose successor starts earlier, which is nonsense) its summed sample durations.
fn fragment_lengths(fragments: &[Fragment]) -> Vec<u64> {
    let successors = fragments.iter().skip(1).map(Some).chain([None]);
    let lengths = fragments
        .iter()
        .zip(successors)
        .map(|(fragment, next)| match next {
            Some(next) if next.start >= fragment.start => next.start - fragment.start,
            _ => fragment.duration,
        });
    lengths.collect()
}

/// Greedy segmentation of a part's fragments. While `live`, the last fragment (whose length
/// is unknown) is left out, and so is the last segment unless that fragment must start a
/// new one.
fn segments(index: &Fmp4Index, rule: &SegmentRule, live: bool) -> Vec<Segment> {
    let fragments = &index.fragments;
    let known = if live {
        fragments.len().saturating_sub(1)
    } else {
        fragments.len()
    };
    let lengths = fragment_lengths(fragments);
    let mut segments: Vec<Segment> = Vec::new();
    for (fragment, &length) in fragments.iter().zip(&lengths).take(known) {
        match segments.last_mut() {
            Some(last) if !rule.starts_new(last, fragment, length) => last.append(fragment, length),
            _ => segments.push(Segment::of(fragment, length)),
        }
    }
    let pending = fragments.get(known);
    if let (Some(last), Some(pending)) = (segments.last(), pending)
        && !rule.must_start_new(last, pending)
    {
        segments.pop();
    }
    segments
}

/// The parts to list with their segments; only the last part may still grow.
fn listed_parts<'a>(
    parts: &'a [IndexedPart],
    opts: &PlaylistOptions,
) -> Vec<(&'a IndexedPart, Vec<Segment>)> {
    let last = parts.len().saturating_sub(1);
    let mut listed = Vec::new();
    for (n, part) in parts.iter().enumerate() {
        let rule = SegmentRule::new(&part.index, opts.max_segment);
        let part_segments = segments(&part.index, &rule, !opts.ended && n == last);
        if !part_segments.is_empty() {
            listed.push((part, part_segments));
        }
    }
    listed
}

// ---- Playlist lines.

type Listed<'a> = [(&'a IndexedPart, Vec<Segment>)];

fn playlist_header(listed: &Listed, opts: &PlaylistOptions) -> Vec<String> {
    let kind = if opts.ended { "VOD" } else { "EVENT" };
    let mut lines = vec![
        "#EXTM3U".to_string(),
        "#EXT-X-VERSION:7".to_string(),
        format!("#EXT-X-TARGETDURATION:{}", target_duration(listed, opts)),
        "#EXT-X-MEDIA-SEQUENCE:0".to_string(),
        format!("#EXT-X-PLAYLIST-TYPE:{kind}"),
    ];
    let all_independent = listed
        .iter()
        .all(|(_, segments)| segments.iter().all(|s| s.independent));
    let is_video = listed.iter().any(|(part, _)| part.index.is_video());
    if !listed.is_empty() && all_independent && (opts.ended || !is_video) {
        lines.push("#EXT-X-INDEPENDENT-SEGMENTS".to_string());
    }
    lines
}

/// Longest `#EXTINF` rounded up; while live, at least `max_segment`.
fn target_duration(listed: &Listed, opts: &PlaylistOptions) -> u64 {
    let max_segment = opts.max_segment.as_millis().div_ceil(1000);
    let max_segment = u64::try_from(max_segment).unwrap_or(u64::MAX);
    let longest = listed
        .iter()
        .flat_map(|(part, segments)| segments.iter().map(|s| extinf_ms(part, s)))
        .max()
        .map(|ms| ms.div_ceil(1000));
    let floor = if opts.ended { 1 } else { max_segment };
    longest.unwrap_or(max_segment).max(floor).max(1)
}

fn extinf_ms(part: &IndexedPart, segment: &Segment) -> u64 {
    ticks_to_ms(segment.duration, part.index.timescale)
}

fn part_uri(part: &IndexedPart, query: &str) -> String {
    uri_safe(&format!("{}{query}", part.file_name))
}

fn map_line(part: &IndexedPart, query: &str) -> String {
    let init = part.index.init;
    format!(
        "#EXT-X-MAP:URI=\"{}\",BYTERANGE=\"{}@{}\"",
        part_uri(part, query),
        init.len,
        init.offset
    )
}

fn segment_lines(part: &IndexedPart, segment: &Segment, opts: &PlaylistOptions) -> [String; 4] {
    let start_ms = ticks_to_ms(segment.start, part.index.timescale);
    let wall_ms = opts.lesson_started_at_ms.saturating_add(start_ms);
    let ms = extinf_ms(part, segment);
    [
        format!("#EXT-X-PROGRAM-DATE-TIME:{}", iso8601_utc(wall_ms)),
        format!("#EXTINF:{}.{:03},", ms / 1000, ms % 1000),
        format!("#EXT-X-BYTERANGE:{}@{}", segment.len, segment.offset),
        part_uri(part, &opts.query),
    ]
}

/// `s` with `"`, CR and LF percent-encoded (none can be in a valid URI).
fn uri_safe(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `s` without `"`, CR and LF, for a quoted-string attribute.
fn quoted_text(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n'))
        .collect()
}

// ---- Time.

/// Milliseconds in `ticks` of `timescale`, rounded to the nearest (a zero timescale counts
/// as 1).
fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    let timescale = u128::from(timescale.max(1));
    let ms = (u128::from(ticks) * 1000 + timescale / 2) / timescale;
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// `duration` in ticks of `timescale`, rounded down.
fn duration_to_ticks(duration: Duration, timescale: u32) -> u64 {
    let ticks = duration.as_nanos() * u128::from(timescale) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// ISO 8601 UTC with milliseconds, as `#EXT-X-PROGRAM-DATE-TIME` wants it:
/// `2026-11-23T10:00:00.000Z` for unix milliseconds `1_795_428_000_000`.
pub fn iso8601_utc(unix_ms: u64) -> String {
    const DAY_MS: u64 = 86_400_000;
    let (year, month, day) = civil_from_days(unix_ms / DAY_MS);
    let ms = unix_ms % DAY_MS;
    let (hour, minute, second) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}Z",
        ms % 1000
    )
}

/// (year, month, day) of the proleptic Gregorian calendar, `days` after 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let from_march_0000 = days + 719_468;
    let era = from_march_0000 / 146_097; // 400-year cycles
    let day_of_era = from_march_0000 % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    (era * 400 + year_of_era + u64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmp4::{ByteRange, SampleDefaults, TrackKind};

    const INIT_LEN: u64 = 1000;
    const FRAGMENT_LEN: u64 = 1000;
    const LESSON_START: u64 = 1_795_428_000_000; // 2026-11-23T10:00:00Z
    const VIDEO_HZ: u32 = 90_000;
    const AUDIO_HZ: u32 = 48_000;

    /// An index of byte-contiguous fragments `(duration in ms, independent)` from `start_ms`.
    fn track(
        kind: TrackKind,
        timescale: u32,
        start_ms: u64,
        fragments: &[(u64, bool)],
    ) -> Fmp4Index {
        let ticks = |ms: u64| ms * u64::from(timescale) / 1000;
        let (mut offset, mut start) = (INIT_LEN, ticks(start_ms));
        let mut index = Fmp4Index {
            init: ByteRange {
                offset: 0,
                len: INIT_LEN,
            },
            track_id: 1,
            kind,
            timescale,
            codec: String::from(if kind == TrackKind::Video {
                "avc1.42c01f"
            } else {
                "opus"
            }),
            width: (kind == TrackKind::Video).then_some(320),
            height: (kind == TrackKind::Video).then_some(240),
            defaults: SampleDefaults::default(),
            fragments: Vec::new(),
        };
        for &(ms, independent) in fragments {
            let (len, duration, media_bytes) = (FRAGMENT_LEN, ticks(ms), FRAGMENT_LEN - 100);
            let fragment = Fragment {
                offset,
                len,
                start,
                duration,
                independent,
                media_bytes,
            };
            index.fragments.push(fragment);
            (offset, start) = (offset + FRAGMENT_LEN, start + duration);
        }
        index
    }

    fn part(name: &str, index: Fmp4Index) -> IndexedPart {
        IndexedPart {
            file_name: name.to_string(),
            index,
        }
    }

    fn opts(ended: bool, query: &str) -> PlaylistOptions {
        PlaylistOptions {
            ended,
            query: query.to_string(),
            lesson_started_at_ms: LESSON_START,
            ..PlaylistOptions::default()
        }
    }

    /// A camera part from minute 10: keyframes at 0 s and 6 s, 2 s fragments.
    fn camera() -> IndexedPart {
        let (key, delta) = ((2000, true), (2000, false));
        let index = track(
            TrackKind::Video,
            VIDEO_HZ,
            600_000,
            &[key, delta, delta, key, delta],
        );
        part("main.camera.part1.mp4", index)
    }

    #[test]
    fn vod_video_playlist_golden() {
        let text = media_playlist(&[camera()], &opts(true, "?exp=123&sig=abc"));
        let uri = "main.camera.part1.mp4?exp=123&sig=abc";
        let want = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"{uri}\",BYTERANGE=\"1000@0\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:10:00.000Z\n#EXTINF:6.000,\n\
             #EXT-X-BYTERANGE:3000@1000\n{uri}\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:10:06.000Z\n#EXTINF:4.000,\n\
             #EXT-X-BYTERANGE:2000@4000\n{uri}\n#EXT-X-ENDLIST\n"
        );
        assert_eq!(text, want);
    }

    #[test]
    fn event_video_playlist_golden_withholds_the_open_segment() {
        let text = media_playlist(&[camera()], &opts(false, ""));
        let want = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n\
             #EXT-X-MAP:URI=\"main.camera.part1.mp4\",BYTERANGE=\"1000@0\"\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:10:00.000Z\n#EXTINF:6.000,\n\
             #EXT-X-BYTERANGE:3000@1000\nmain.camera.part1.mp4\n";
        assert_eq!(text, want);
    }

    /// Two mic parts: 2 s fragments, then (after a restart at 30 s) 0.5 s fragments.
    fn mic_parts() -> [IndexedPart; 2] {
        let first = track(TrackKind::Audio, AUDIO_HZ, 0, &[(2000, true), (2000, true)]);
        let second = track(TrackKind::Audio, AUDIO_HZ, 30_000, &[(500, true); 5]);
        [
            part("main.mic.part1.mp4", first),
            part("main.mic.part2.mp4", second),
        ]
    }

    const MIC_PART1: &str = "#EXT-X-MAP:URI=\"main.mic.part1.mp4\",BYTERANGE=\"1000@0\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:00:00.000Z\n#EXTINF:2.000,\n\
        #EXT-X-BYTERANGE:1000@1000\nmain.mic.part1.mp4\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:00:02.000Z\n#EXTINF:2.000,\n\
        #EXT-X-BYTERANGE:1000@2000\nmain.mic.part1.mp4\n\
        #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"main.mic.part2.mp4\",BYTERANGE=\"1000@0\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:00:30.000Z\n#EXTINF:2.000,\n\
        #EXT-X-BYTERANGE:4000@1000\nmain.mic.part2.mp4\n";

    #[test]
    fn two_parts_golden_with_discontinuity() {
        let head = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n";
        let vod = media_playlist(&mic_parts(), &opts(true, ""));
        let tail = "#EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:00:32.000Z\n#EXTINF:0.500,\n\
             #EXT-X-BYTERANGE:1000@5000\nmain.mic.part2.mp4\n#EXT-X-ENDLIST\n";
        let types = "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n";
        assert_eq!(vod, format!("{head}{types}{MIC_PART1}{tail}"));
        // Live: the last 0.5 s may still grow into a 2 s segment, so it is not listed yet.
        let event = media_playlist(&mic_parts(), &opts(false, ""));
        let head = head.replace("TARGETDURATION:2", "TARGETDURATION:10");
        let types = "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-INDEPENDENT-SEGMENTS\n";
        assert_eq!(event, format!("{head}{types}{MIC_PART1}"));
    }

    fn segment_durations_ms(index: &Fmp4Index, max_segment: Duration) -> Vec<u64> {
        let rule = SegmentRule::new(index, max_segment);
        let segments = segments(index, &rule, false);
        segments
            .iter()
            .map(|s| ticks_to_ms(s.duration, index.timescale))
            .collect()
    }

    #[test]
    fn video_segments_end_at_keyframes_and_at_max_segment() {
        let mut fragments = vec![(3000, true)];
        fragments.extend([(3000, false); 6]);
        fragments.extend([(1000, true), (12_400, false), (1000, false)]);
        let index = track(TrackKind::Video, VIDEO_HZ, 0, &fragments);
        let durations = segment_durations_ms(&index, DEFAULT_MAX_SEGMENT);
        assert_eq!(durations, [9000, 9000, 3000, 1000, 12_400, 1000]);
        // One fragment longer than max_segment: the target duration still covers it.
        let text = media_playlist(&[part("p.mp4", index)], &opts(true, ""));
        assert!(text.contains("#EXT-X-TARGETDURATION:13\n#"), "{text}");
    }

    #[test]
    fn audio_fragments_are_grouped_to_about_two_seconds() {
        let mut fragments = vec![(500, true); 9];
        fragments.extend([(1950, true), (2000, true), (300, true)]);
        let index = track(TrackKind::Audio, AUDIO_HZ, 0, &fragments);
        let durations = segment_durations_ms(&index, DEFAULT_MAX_SEGMENT);
        assert_eq!(durations, [2000, 2000, 2450, 2000, 300]);
    }

    #[test]
    fn extinf_follows_the_tfdt_timeline() {
        // As isofmp4mux writes VP8 (timescale 10 000, 30 fps): fragments start every 2 s but
        // their rounded sample durations add up to 1.998 s.
        let mut fragments = vec![(2000, true)];
        fragments.extend([(2000, false); 6]);
        let mut index = track(TrackKind::Video, 10_000, 0, &fragments);
        index.fragments.iter_mut().for_each(|f| f.duration -= 20);
        let durations = segment_durations_ms(&index, DEFAULT_MAX_SEGMENT);
        assert_eq!(
            durations,
            [10_000, 3998],
            "the last fragment plays its own durations"
        );
    }

    #[test]
    fn live_segmentation_waits_for_the_last_fragments_length() {
        let live_segments = |fragments: &[(u64, bool)]| {
            let index = track(TrackKind::Video, VIDEO_HZ, 0, fragments);
            let rule = SegmentRule::new(&index, DEFAULT_MAX_SEGMENT);
            let segments = segments(&index, &rule, true);
            segments
                .iter()
                .map(|s| (s.offset, s.len))
                .collect::<Vec<_>>()
        };
        let (key, delta) = ((2000, true), (2000, false));
        assert_eq!(
            live_segments(&[key, delta, delta]),
            [],
            "the last may still join"
        );
        assert_eq!(
            live_segments(&[key, delta, key]),
            [(1000, 2000)],
            "a keyframe closes it"
        );
        assert_eq!(
            live_segments(&[key]),
            [],
            "one fragment: its length is unknown"
        );
        let full = [key, delta, delta, delta, delta, delta];
        assert_eq!(live_segments(&full), [(1000, 5000)], "10 s is full");
    }

    #[test]
    fn a_gap_between_fragments_ends_the_segment() {
        let mut index = track(TrackKind::Audio, AUDIO_HZ, 0, &[(500, true); 3]);
        index.fragments[2].offset += 8; // an unknown box between the fragments
        let durations = segment_durations_ms(&index, DEFAULT_MAX_SEGMENT);
        assert_eq!(durations, [1000, 500]);
    }

    #[test]
    fn event_playlists_only_ever_append() {
        for kind in [TrackKind::Video, TrackKind::Audio] {
            // About 2 s each, rare keyframes, durations 0.2 % short of the tfdt spacing.
            let fragments: Vec<(u64, bool)> = (0..40)
                .map(|i| (1900 + i * 37 % 200, kind == TrackKind::Audio || i % 7 == 0))
                .collect();
            let playlist = |n: usize, ended| {
                let mut index = track(kind, VIDEO_HZ, 0, &fragments[..n]);
                index
                    .fragments
                    .iter_mut()
                    .for_each(|f| f.duration -= f.duration / 500);
                media_playlist(&[part("p.mp4", index)], &opts(ended, "?q"))
            };
            let ended = playlist(fragments.len(), true);
            for n in 0..fragments.len() {
                let (live, next) = (playlist(n, false), playlist(n + 1, false));
                assert!(
                    next.starts_with(&live),
                    "{kind:?}: playlist {n} was rewritten"
                );
                let body = live.split_once("#EXT-X-MAP").map_or("", |(_, body)| body);
                assert!(
                    ended.contains(body),
                    "{kind:?}: playlist {n} is not in the VOD one"
                );
            }
        }
    }

    #[test]
    fn empty_parts_are_not_listed() {
        let empty = track(TrackKind::Audio, AUDIO_HZ, 0, &[]);
        let parts = [
            part("a.mp4", empty.clone()),
            part(
                "b.mp4",
                track(TrackKind::Audio, AUDIO_HZ, 0, &[(2000, true)]),
            ),
            part("c.mp4", empty),
        ];
        let text = media_playlist(&parts, &opts(true, ""));
        assert!(!text.contains("a.mp4") && !text.contains("c.mp4"), "{text}");
        assert!(!text.contains("DISCONTINUITY"), "{text}");
        let nothing = media_playlist(&[], &opts(false, ""));
        assert_eq!(
            nothing,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n"
        );
    }

    #[test]
    fn a_query_cannot_break_the_playlist() {
        let text = media_playlist(&mic_parts(), &opts(true, "?a=\"x\"\n#EXT-X-ENDLIST"));
        assert!(
            text.contains("main.mic.part1.mp4?a=%22x%22%0A#EXT-X-ENDLIST\n"),
            "{text}"
        );
        assert_eq!(text.matches("\n#EXT-X-ENDLIST").count(), 1, "{text}");
    }

    #[test]
    fn program_date_time_format() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(LESSON_START), "2026-11-23T10:00:00.000Z");
        assert_eq!(iso8601_utc(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(iso8601_utc(951_868_800_000), "2000-03-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(4_107_501_296_789), "2100-02-28T12:34:56.789Z");
        assert!(iso8601_utc(u64::MAX).ends_with(".615Z"));
    }

    #[test]
    fn civil_dates_match_counting_days() {
        let (mut year, mut month, mut day) = (1970, 1, 1);
        for days in 0..300_000 {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let month_len = [
                31,
                28 + u64::from(leap),
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            day += 1;
            if day > month_len[month as usize - 1] {
                (day, month) = (1, month + 1);
            }
            if month > 12 {
                (month, year) = (1, year + 1);
            }
        }
    }

    #[test]
    fn master_playlist_golden() {
        let ((video_bytes, video_time), (audio_bytes, audio_time)) =
            (media_totals(&[camera()]), media_totals(&mic_parts()));
        let video = VariantInfo {
            uri: "camera.m3u8?s=1".into(),
            codec: "avc1.42c01f".into(),
            width: Some(320),
            height: Some(240),
            bytes: video_bytes,
            duration: video_time,
        };
        let audio = AudioRendition {
            uri: "mic.m3u8?s=1".into(),
            name: "Teacher".into(),
            codec: "opus".into(),
            bytes: audio_bytes,
            duration: audio_time,
        };
        // camera: 5000 bytes in 10 s = 4000 bit/s; mic: 7000 bytes in 6.5 s = 8616 bit/s.
        assert_eq!(
            master_playlist(&video, Some(&audio)),
            "#EXTM3U\n#EXT-X-VERSION:7\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"Teacher\",DEFAULT=YES,AUTOSELECT=YES,\
             URI=\"mic.m3u8?s=1\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=12616,CODECS=\"avc1.42c01f,opus\",RESOLUTION=320x240,\
             AUDIO=\"a\"\ncamera.m3u8?s=1\n"
        );
        assert_eq!(
            master_playlist(&video, None),
            "#EXTM3U\n#EXT-X-VERSION:7\n\
             #EXT-X-STREAM-INF:BANDWIDTH=4000,CODECS=\"avc1.42c01f\",RESOLUTION=320x240\n\
             camera.m3u8?s=1\n"
        );
    }

    #[test]
    fn bandwidth_is_positive() {
        assert_eq!(bits_per_second(0, Duration::ZERO), 1);
        assert_eq!(bits_per_second(u64::MAX, Duration::ZERO), u64::MAX);
        assert_eq!(bits_per_second(1000, Duration::from_secs(8)), 1000);
    }
}
