//! Which path a parsed elementary stream takes, from its caps alone (pure, unit-tested).
//!
//! Invariant: passthrough only for 8-bit 4:2:0 H.264 in a profile Chromium's
//! decoder takes; everything else video is transcoded, all audio goes to Opus.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Video,
    Audio,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Video => "video",
            StreamKind::Audio => "audio",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPath {
    /// Repacketized without decoding.
    Passthrough,
    /// Decoded and encoded again (video to H.264 constrained baseline, audio to Opus).
    Transcode,
}

impl MediaPath {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaPath::Passthrough => "passthrough",
            MediaPath::Transcode => "transcode",
        }
    }
}

/// H.264 profiles a browser decodes (8-bit 4:2:0).
const BROWSER_H264: [&str; 6] = ["constrained-baseline", "baseline", "main", "high", "progressive-high", "constrained-high"];

/// The route of a stream with caps `name` (e.g. `video/x-h264`) and, for H.264,
/// its `profile` and `chroma`/`bit_depth` fields when the parser set them.
/// `None` for streams that are neither audio nor video.
pub fn route(name: &str, profile: Option<&str>, chroma: Option<&str>, bit_depth: Option<u32>) -> Option<(StreamKind, MediaPath)> {
    if name.starts_with("audio/") {
        return Some((StreamKind::Audio, MediaPath::Transcode));
    }
    if !name.starts_with("video/") {
        return None;
    }
    let browser_h264 = name == "video/x-h264"
        && profile.is_none_or(|p| BROWSER_H264.contains(&p))
        && chroma.is_none_or(|c| c == "4:2:0")
        && bit_depth.is_none_or(|d| d == 8);
    Some((StreamKind::Video, if browser_h264 { MediaPath::Passthrough } else { MediaPath::Transcode }))
}

/// The H.264 profile name (as `h264parse` names it) of an SDP `profile-level-id`
/// (6 hex digits: profile_idc, constraint flags, level_idc).
pub fn h264_profile(profile_level_id: &str) -> Option<&'static str> {
    let v = u32::from_str_radix(profile_level_id.get(..6)?, 16).ok()?;
    let (idc, flags) = (v >> 16, (v >> 8) & 0xff);
    Some(match idc {
        66 if flags & 0x40 != 0 => "constrained-baseline",
        66 => "baseline",
        77 => "main",
        88 => "extended",
        100 => "high",
        110 => "high-10",
        122 => "high-4:2:2",
        244 => "high-4:4:4",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_h264_passes_through() {
        for p in ["constrained-baseline", "main", "high"] {
            assert_eq!(route("video/x-h264", Some(p), Some("4:2:0"), Some(8)), Some((StreamKind::Video, MediaPath::Passthrough)));
        }
    }

    #[test]
    fn other_video_is_transcoded() {
        let t = Some((StreamKind::Video, MediaPath::Transcode));
        assert_eq!(route("video/x-h265", Some("main"), None, None), t);
        assert_eq!(route("video/x-h264", Some("high-4:4:4"), None, None), t);
        assert_eq!(route("video/x-h264", Some("high-10"), Some("4:2:0"), Some(10)), t);
        assert_eq!(route("video/x-h264", Some("high"), Some("4:2:2"), Some(8)), t);
        assert_eq!(route("video/mpeg", None, None, None), t);
    }

    #[test]
    fn sdp_profiles() {
        assert_eq!(h264_profile("42e01f"), Some("constrained-baseline"));
        assert_eq!(h264_profile("42001f"), Some("baseline"));
        assert_eq!(h264_profile("4d0028"), Some("main"));
        assert_eq!(h264_profile("640c1f"), Some("high"));
        assert_eq!(h264_profile("f4001f"), Some("high-4:4:4"));
        assert_eq!(h264_profile("zz"), None);
        assert_eq!(h264_profile("ff0000"), None);
    }

    #[test]
    fn audio_goes_to_opus_and_data_is_ignored() {
        assert_eq!(route("audio/mpeg", None, None, None), Some((StreamKind::Audio, MediaPath::Transcode)));
        assert_eq!(route("application/x-klv", None, None, None), None);
    }
}
