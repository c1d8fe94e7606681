//! Real part files, recorded by `TrackRecorder` from GStreamer-made RTP (H.264, Opus, VP8),
//! indexed by `classcast_recorder::fmp4`: fragments tile the file, starts increase, the
//! durations add up to what was recorded, every prefix of the file (a part being written)
//! indexes to a prefix, and a VOD playlist's byte ranges cover every fragment.

mod common;

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use classcast_recorder::fmp4::{self, Fmp4Error, Fmp4Index, TrackKind};
use classcast_recorder::hls::{self, IndexedPart, PlaylistOptions};
use classcast_recorder::{Codec, TrackSummary};
use common::*;

fn index_bytes(bytes: &[u8]) -> Result<Fmp4Index, Fmp4Error> {
    fmp4::index(&mut Cursor::new(bytes), bytes.len() as u64)
}

const SECONDS: u32 = 6;
const TOLERANCE: Duration = Duration::from_millis(200);

/// Records `SECONDS` of `codec` (keyframe every second for video) and indexes the file.
fn record_and_index(name: &str, codec: Codec) -> (Vec<u8>, Fmp4Index, TrackSummary) {
    let packets = rtp_packets(codec, SECONDS, 30);
    let (path, summary) = record(name, codec, &packets);
    let bytes = std::fs::read(&path).expect("the part file");
    let index = index_file(&path);
    eprintln!(
        "{name}: {} bytes, {} ({:?} {:?}x{:?}), timescale {}",
        bytes.len(),
        index.codec,
        index.kind,
        index.width,
        index.height,
        index.timescale
    );
    for f in &index.fragments {
        eprintln!(
            "  {f:?}  {:.3} s + {:.3} s",
            f.start_secs(index.timescale),
            f.duration_secs(index.timescale)
        );
    }
    (bytes, index, summary)
}

fn index_file(path: &Path) -> Fmp4Index {
    let mut file = std::fs::File::open(path).expect("the part file");
    let len = file.metadata().expect("metadata").len();
    fmp4::index(&mut file, len).expect("a recorded part indexes")
}

/// What every recorded part must satisfy: tiling, increasing starts, the recorded duration.
fn check_recorded(bytes: &[u8], index: &Fmp4Index, summary: &TrackSummary) {
    assert!(index.fragments.len() >= 2, "{:?}", index.fragments);
    assert_tiles(index, bytes.len() as u64);
    for pair in index.fragments.windows(2) {
        assert!(pair[1].start > pair[0].start, "starts increase: {pair:?}");
    }
    let total =
        Duration::from_secs_f64(fmp4::ticks_to_secs(index.media_duration(), index.timescale));
    let diff = total.abs_diff(summary.duration);
    assert!(
        diff <= TOLERANCE,
        "indexed {total:?}, recorded {:?}",
        summary.duration
    );
    // Every prefix of the file (a live part being written) indexes to a prefix.
    for cut in (index.init.len as usize..bytes.len()).step_by(997) {
        let prefix = index_bytes(&bytes[..cut]).expect("a prefix indexes");
        assert_eq!(
            prefix.fragments[..],
            index.fragments[..prefix.fragments.len()],
            "cut at {cut}"
        );
    }
}

#[test]
fn a_recorded_h264_part_is_indexed() {
    let (bytes, index, summary) = record_and_index("fmp4-h264", Codec::H264);
    assert!(index.codec.starts_with("avc3."), "{}", index.codec);
    assert_eq!(
        (index.kind, index.width, index.height),
        (TrackKind::Video, Some(320), Some(240))
    );
    assert!(
        index.fragments[0].independent,
        "the part starts at a keyframe"
    );
    check_recorded(&bytes, &index, &summary);

    let part = IndexedPart {
        file_name: "main.camera.part1.mp4".into(),
        index,
    };
    let opts = PlaylistOptions {
        ended: true,
        ..PlaylistOptions::default()
    };
    let playlist = hls::media_playlist(std::slice::from_ref(&part), &opts);
    eprintln!("{playlist}");
    let ranges: Vec<(u64, u64)> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:")?.split_once('@'))
        .map(|(len, at)| {
            (
                len.parse().expect("a length"),
                at.parse().expect("an offset"),
            )
        })
        .collect();
    let covered: u64 = ranges.iter().map(|(len, _)| len).sum();
    assert_eq!(
        covered,
        bytes.len() as u64 - part.index.init.len,
        "segments cover every fragment"
    );
}

#[test]
fn a_recorded_opus_part_is_indexed() {
    let (bytes, index, summary) = record_and_index("fmp4-opus", Codec::Opus);
    assert_eq!(
        (index.codec.as_str(), index.kind, index.timescale),
        ("opus", TrackKind::Audio, 48_000)
    );
    assert!(
        index.fragments.iter().all(|f| f.independent),
        "every Opus frame is a sync sample"
    );
    check_recorded(&bytes, &index, &summary);
}

#[test]
fn a_recorded_vp8_part_is_indexed() {
    let (bytes, index, summary) = record_and_index("fmp4-vp8", Codec::Vp8);
    assert!(index.codec.starts_with("vp"), "{}", index.codec);
    assert_eq!((index.width, index.height), (Some(320), Some(240)));
    assert!(
        index.fragments[0].independent,
        "the part starts at a keyframe"
    );
    check_recorded(&bytes, &index, &summary);
}
