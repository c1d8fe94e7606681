//! Checks on an SDP offer before it reaches the WebRTC stack: does it offer any
//! codec this server forwards, and if not, which codecs did it offer.
//!
//! Forwarded codecs: Opus (audio); H.264 with packetization-mode=1 and VP8 (video).
//! Invariant: pure text inspection, never panics on any input.


/// Codecs offered in an SDP, per media kind, by rtpmap name (e.g. `opus`, `H264`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OfferedCodecs {
    /// Encoding names in offer order, without repair formats (rtx, red, ulpfec...).
    pub names: Vec<String>,
    /// Whether at least one m-line carries a codec this server forwards.
    pub usable: bool,
    /// Number of audio and video m-lines.
    pub media_lines: usize,
    /// `(kind, mid)` of each audio and video m-line, in offer order.
    pub media: Vec<(String, String)>,
}

const REPAIR_FORMATS: [&str; 6] = ["rtx", "red", "ulpfec", "flexfec-03", "telephone-event", "cn"];

/// Scan the `m=`, `a=rtpmap` and `a=fmtp` lines of an offer.
pub fn offered_codecs(sdp: &str) -> OfferedCodecs {
    let mut out = OfferedCodecs::default();
    let mut kind = "";
    let mut rtpmap: Vec<(String, String)> = Vec::new();
    let mut fmtp: Vec<(String, String)> = Vec::new();
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            out.finish_media(kind, &rtpmap, &fmtp);
            rtpmap.clear();
            fmtp.clear();
            kind = m.split(' ').next().unwrap_or("");
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            if kind == "audio" || kind == "video" {
                out.media.push((kind.to_string(), mid.trim().to_string()));
            }
        } else if let Some((pt, rest)) = attribute(line, "a=rtpmap:") {
            rtpmap.push((pt, rest.split('/').next().unwrap_or("").to_string()));
        } else if let Some((pt, rest)) = attribute(line, "a=fmtp:") {
            fmtp.push((pt, rest.to_string()));
        }
    }
    out.finish_media(kind, &rtpmap, &fmtp);
    out
}

fn attribute(line: &str, prefix: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix(prefix)?;
    let (pt, value) = rest.split_once(' ')?;
    Some((pt.to_string(), value.trim().to_string()))
}

impl OfferedCodecs {
    fn finish_media(&mut self, kind: &str, rtpmap: &[(String, String)], fmtp: &[(String, String)]) {
        if kind != "audio" && kind != "video" {
            return;
        }
        self.media_lines += 1;
        for (pt, name) in rtpmap {
            if REPAIR_FORMATS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
                continue;
            }
            let params = fmtp.iter().find(|(p, _)| p == pt).map(|(_, v)| v.as_str()).unwrap_or("");
            self.usable |= is_forwarded(kind, name, params);
            let label = if name.eq_ignore_ascii_case("h264") && !packetization_mode_1(params) {
                "H264 (packetization-mode=0)".to_string()
            } else {
                name.clone()
            };
            if !self.names.contains(&label) {
                self.names.push(label);
            }
        }
    }
}

fn is_forwarded(kind: &str, name: &str, fmtp: &str) -> bool {
    match kind {
        "audio" => name.eq_ignore_ascii_case("opus"),
        "video" => name.eq_ignore_ascii_case("vp8") || (name.eq_ignore_ascii_case("h264") && packetization_mode_1(fmtp)),
        _ => false,
    }
}

fn packetization_mode_1(fmtp: &str) -> bool {
    fmtp.split(';').any(|p| p.trim() == "packetization-mode=1")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_LIKE: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

    #[test]
    fn browser_offer_is_usable() {
        let c = offered_codecs(CHROME_LIKE);
        assert!(c.usable);
        assert_eq!(c.names, ["opus", "VP8", "H264"]);
        assert_eq!(c.media_lines, 2);
    }

    #[test]
    fn lists_mids_in_order() {
        let sdp = "m=video 9 X 96\na=mid:v0\na=rtpmap:96 VP8/90000\nm=application 9 X\na=mid:d\nm=audio 9 X 111\na=mid:a1\n";
        let c = offered_codecs(sdp);
        assert_eq!(c.media, [("video".to_string(), "v0".to_string()), ("audio".to_string(), "a1".to_string())]);
    }

    #[test]
    fn unsupported_codecs_are_named() {
        let sdp = "v=0\nm=audio 9 RTP/SAVPF 0\na=rtpmap:0 PCMU/8000\nm=video 9 RTP/SAVPF 45 102\na=rtpmap:45 AV1/90000\na=rtpmap:102 H264/90000\na=fmtp:102 packetization-mode=0\n";
        let c = offered_codecs(sdp);
        assert!(!c.usable);
        assert_eq!(c.names, ["PCMU", "AV1", "H264 (packetization-mode=0)"]);
    }

    #[test]
    fn garbage_never_panics() {
        for s in ["", "m=", "a=rtpmap:", "a=rtpmap:1", "m=video\na=fmtp:x", "\u{0}\u{ffff}"] {
            assert!(!offered_codecs(s).usable);
        }
    }
}
