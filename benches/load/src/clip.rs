//! The teacher's stream: a 1280x720 30 fps H.264 clip at 1.5 Mbit/s (x264,
//! constrained baseline, keyframe every 2 s, 1200-byte RTP packets) and Opus
//! (48 kHz stereo, 20 ms frames, pink noise so no two packets are equal), made
//! once with gst-launch and cached under target/bench-media/ (never committed).
//!
//! Each RTP packet is one file (`identity ! multifilesink`: `identity` splits the
//! payloader's buffer lists, which multifilesink would write as one file);
//! `rtpstreampay` framing came out corrupted for Opus here (a stray byte after
//! ~340 packets).
//!
//! Invariant: packets are returned in send order with their offset from the
//! clip's start, taken from their own RTP timestamps (90 kHz video, 48 kHz audio).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub const VIDEO: usize = 0;
pub const AUDIO: usize = 1;

#[derive(Clone)]
pub struct Packet {
    pub kind: usize,
    pub at: Duration,
    pub ts: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

#[derive(Clone)]
pub struct Clip {
    pub packets: Vec<Packet>,
    pub duration: Duration,
}

/// Seconds of media in the clip (the publisher loops it).
const SECS: u32 = 30;

pub fn load(cache: &Path) -> Result<Clip> {
    std::fs::create_dir_all(cache)?;
    let video = cache.join(format!("teacher-720p-1500k-{SECS}s-h264"));
    let audio = cache.join(format!("teacher-opus-48k-{SECS}s"));
    if !video.exists() {
        make(&video, &format!(
            "videotestsrc pattern=snow num-buffers={} ! video/x-raw,width=1280,height=720,framerate=30/1 ! x264enc bitrate=1500 speed-preset=ultrafast tune=zerolatency key-int-max=60 ! video/x-h264,profile=constrained-baseline ! rtph264pay mtu=1200 config-interval=-1 pt=127",
            SECS * 30
        ))?;
    }
    if !audio.exists() {
        make(&audio, &format!(
            "audiotestsrc wave=pink-noise num-buffers={} samplesperbuffer=960 ! audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=48000 frame-size=20 ! rtpopuspay pt=111",
            SECS * 50
        ))?;
    }
    let mut packets = read(&video, VIDEO, 90_000)?;
    packets.extend(read(&audio, AUDIO, 48_000)?);
    packets.sort_by_key(|p| p.at);
    Ok(Clip { packets, duration: Duration::from_secs(SECS as u64) })
}

/// Run `pipeline ! multifilesink` into a temporary folder, then rename it.
fn make(out: &Path, pipeline: &str) -> Result<()> {
    let tmp: PathBuf = out.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let line = format!("{pipeline} ! identity ! multifilesink location={}/%06d.rtp", tmp.display());
    eprintln!("clip: gst-launch-1.0 {line}");
    let status = Command::new("gst-launch-1.0").arg("-q").args(line.split_whitespace()).status().context("gst-launch-1.0 (gstreamer1.0-tools)")?;
    if !status.success() {
        bail!("gst-launch-1.0 failed: {status}");
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// One RTP packet per file, in name order.
fn read(dir: &Path, kind: usize, clock: u64) -> Result<Vec<Packet>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
    files.sort();
    let mut out = Vec::new();
    let mut first_ts: Option<u32> = None;
    for f in files {
        let p = std::fs::read(&f)?;
        let (ts, marker, payload) = parse_rtp(&p).with_context(|| format!("{}: not RTP", f.display()))?;
        let base = *first_ts.get_or_insert(ts);
        let at = Duration::from_micros(ts.wrapping_sub(base) as u64 * 1_000_000 / clock);
        out.push(Packet { kind, at, ts, marker, payload: payload.to_vec() });
    }
    Ok(out)
}

fn parse_rtp(p: &[u8]) -> Option<(u32, bool, &[u8])> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let cc = (p[0] & 0x0f) as usize;
    let mut off = 12 + 4 * cc;
    if p[0] & 0x10 != 0 {
        let ext = u16::from_be_bytes([*p.get(off + 2)?, *p.get(off + 3)?]) as usize;
        off += 4 + 4 * ext;
    }
    let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    Some((ts, p[1] & 0x80 != 0, p.get(off..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_payload_skips_csrcs_and_extensions() {
        let mut p = vec![0x91, 0xe0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 5, 5, 5];
        p.extend([0xbe, 0xde, 0, 1, 7, 7, 7, 7, 0xaa]);
        assert_eq!(parse_rtp(&p), Some((9, true, &[0xaa][..])));
        assert_eq!(parse_rtp(&[0x40; 12]), None);
    }
}
