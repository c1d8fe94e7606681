//! The fMP4 indexer (`classcast_recorder::fmp4`) on synthetic files made with tiny box
//! builders: every rule (codec strings, trun/tfhd/trex defaults, sync flags, 64-bit and
//! to-the-end sizes, truncation, nonsense, growth), and garbage that must never panic.
//! Real part files recorded by `TrackRecorder` are in `fmp4_recorded.rs`.

mod common;

use std::io::Cursor;

use classcast_recorder::fmp4::{self, Fmp4Error, Fmp4Index, Fragment, TrackKind};
use common::{Rng, assert_tiles};

// ---- Box builders.

const SYNC: u32 = 0x0200_0000; // depends on nothing
const NON_SYNC: u32 = 0x0101_0000; // depends on others, sample_is_non_sync_sample
const VIDEO_HZ: u32 = 90_000;
const SAMPLE_SIZE: u32 = 10;

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let size = u32::try_from(payload.len() + 8).expect("test boxes are small");
    [&size.to_be_bytes()[..], kind, payload].concat()
}

/// A box with a 64-bit size (`size == 1`).
fn bx64(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let size = payload.len() as u64 + 16;
    [&1u32.to_be_bytes()[..], kind, &size.to_be_bytes(), payload].concat()
}

fn full(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let version_and_flags = (u32::from(version) << 24) | flags;
    bx(
        kind,
        &[&version_and_flags.to_be_bytes()[..], payload].concat(),
    )
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn visual_entry(format: &[u8; 4], width: u16, height: u16, config: &[u8]) -> Vec<u8> {
    let mut entry = vec![0; 6];
    entry.extend(1u16.to_be_bytes()); // data_reference_index
    entry.extend([0; 16]);
    entry.extend(width.to_be_bytes());
    entry.extend(height.to_be_bytes());
    entry.extend([0; 50]); // resolutions, frame count, compressor name, depth
    entry.extend(config);
    bx(format, &entry)
}

fn audio_entry(format: &[u8; 4], config: &[u8]) -> Vec<u8> {
    let mut entry = vec![0; 6];
    entry.extend(1u16.to_be_bytes());
    entry.extend([
        0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 16, 0, 0, 0, 0, 0xbb, 0x80, 0, 0,
    ]);
    entry.extend(config);
    bx(format, &entry)
}

fn avc1() -> Vec<u8> {
    visual_entry(
        b"avc1",
        320,
        240,
        &bx(b"avcC", &[1, 0x42, 0xc0, 0x1f, 0xff, 0xe0]),
    )
}

fn opus() -> Vec<u8> {
    audio_entry(
        b"Opus",
        &bx(b"dOps", &[0, 2, 1, 56, 0, 0, 0xbb, 0x80, 0, 0, 0]),
    )
}

/// ftyp + moov of one track (`track_id` 1) with the trex defaults `(duration, size, flags)`.
fn init(handler: &[u8; 4], timescale: u32, entry: &[u8], trex: [u32; 3]) -> Vec<u8> {
    let tkhd = full(b"tkhd", 0, 3, &u32s(&[0, 0, 1, 0, 0]));
    let mdhd = full(b"mdhd", 0, 0, &u32s(&[0, 0, timescale, 0, 0x55c4_0000]));
    let hdlr = full(b"hdlr", 0, 0, &[&[0; 4][..], handler, &[0; 13]].concat());
    let stsd = full(b"stsd", 0, 0, &[&u32s(&[1])[..], entry].concat());
    let minf = bx(b"minf", &bx(b"stbl", &stsd));
    let mdia = bx(b"mdia", &[mdhd, hdlr, minf].concat());
    let trak = bx(b"trak", &[tkhd, mdia].concat());
    let trex = full(b"trex", 0, 0, &u32s(&[1, 1, trex[0], trex[1], trex[2]]));
    let mvhd = full(b"mvhd", 0, 0, &[0; 96]);
    let moov = bx(b"moov", &[mvhd, trak, bx(b"mvex", &trex)].concat());
    [bx(b"ftyp", b"iso6\0\0\0\0iso6"), moov].concat()
}

fn video_init() -> Vec<u8> {
    init(b"vide", VIDEO_HZ, &avc1(), [0; 3])
}

/// One `trun`: per-sample `(duration, size, flags)` where given, else `count` samples.
#[derive(Clone, Default)]
struct Run {
    count: u32,
    durations: Option<Vec<u32>>,
    sizes: Option<Vec<u32>>,
    flags: Option<Vec<u32>>,
    first_flags: Option<u32>,
}

impl Run {
    fn bytes(&self) -> Vec<u8> {
        let columns = [&self.durations, &self.sizes, &self.flags];
        let mut tr_flags = 0x01; // data offset (not checked by the indexer)
        for (column, flag) in columns.iter().zip([0x100, 0x200, 0x400]) {
            tr_flags |= if column.is_some() { flag } else { 0 };
        }
        let mut body = u32s(&[self.count, 0]);
        if let Some(first) = self.first_flags {
            tr_flags |= 0x04;
            body.extend(first.to_be_bytes());
        }
        let present: Vec<&Vec<u32>> = columns.iter().filter_map(|c| c.as_ref()).collect();
        for i in (0..self.count as usize).take_while(|_| !present.is_empty()) {
            present
                .iter()
                .for_each(|column| body.extend(column[i].to_be_bytes()));
        }
        full(b"trun", 0, tr_flags, &body)
    }
}

/// One `traf`: `tfhd` defaults `(duration, size, flags)` where given, an optional `tfdt`.
#[derive(Clone, Default)]
struct Traf {
    track_id: u32,
    tfdt: Option<u64>,
    defaults: [Option<u32>; 3],
    runs: Vec<Run>,
}

impl Traf {
    fn bytes(&self) -> Vec<u8> {
        let mut tf_flags = 0x02_0000; // default-base-is-moof
        let mut tfhd = u32s(&[self.track_id]);
        for (value, flag) in self.defaults.iter().zip([0x08, 0x10, 0x20]) {
            if let Some(value) = value {
                tf_flags |= flag;
                tfhd.extend(value.to_be_bytes());
            }
        }
        let mut traf = full(b"tfhd", 0, tf_flags, &tfhd);
        if let Some(tfdt) = self.tfdt {
            let (version, bytes) = match u32::try_from(tfdt) {
                Ok(small) => (0, small.to_be_bytes().to_vec()),
                Err(_) => (1, tfdt.to_be_bytes().to_vec()),
            };
            traf.extend(full(b"tfdt", version, 0, &bytes));
        }
        self.runs.iter().for_each(|run| traf.extend(run.bytes()));
        bx(b"traf", &traf)
    }
}

/// `moof` + `mdat` holding `mdat_len` bytes.
fn fragment(traf: &Traf, mdat_len: usize) -> Vec<u8> {
    let moof = bx(
        b"moof",
        &[full(b"mfhd", 0, 0, &u32s(&[1])), traf.bytes()].concat(),
    );
    [moof, bx(b"mdat", &vec![0; mdat_len])].concat()
}

/// A video fragment as isofmp4mux writes it: per-sample durations and sizes, tfhd default
/// flags non-sync, and (if it starts with a keyframe) sync first-sample flags.
fn video_fragment(start: u64, durations: &[u32], keyframe_first: bool) -> Vec<u8> {
    let count = durations.len() as u32;
    let run = Run {
        count,
        durations: Some(durations.to_vec()),
        sizes: Some(vec![SAMPLE_SIZE; durations.len()]),
        first_flags: keyframe_first.then_some(SYNC),
        ..Run::default()
    };
    let traf = Traf {
        track_id: 1,
        tfdt: Some(start),
        defaults: [None, None, Some(NON_SYNC)],
        runs: vec![run],
    };
    fragment(&traf, (count * SAMPLE_SIZE) as usize)
}

fn styp() -> Vec<u8> {
    bx(b"styp", b"iso6\0\0\0\0iso6")
}

/// A video file: init, then (styp +) 2 s fragments of 3 frames each, keyframe at 0 and 4 s.
fn video_file() -> Vec<u8> {
    let frames = [60_000, 60_000, 60_000];
    let mut file = video_init();
    for (n, key) in [true, false, true, false].into_iter().enumerate() {
        if key {
            file.extend(styp());
        }
        file.extend(video_fragment(n as u64 * 180_000, &frames, key));
    }
    file
}

fn index_bytes(bytes: &[u8]) -> Result<Fmp4Index, Fmp4Error> {
    fmp4::index(&mut Cursor::new(bytes), bytes.len() as u64)
}

fn indexed(bytes: &[u8]) -> Fmp4Index {
    index_bytes(bytes).expect("a valid file")
}

// ---- Synthetic files.

#[test]
fn codec_strings_size_and_timescale() {
    let video = indexed(&video_init());
    assert_eq!(video.codec, "avc1.42c01f");
    assert_eq!(
        (video.kind, video.width, video.height),
        (TrackKind::Video, Some(320), Some(240))
    );
    assert_eq!(video.timescale, VIDEO_HZ);
    assert_eq!(
        (video.init.offset, video.init.len),
        (0, video_init().len() as u64)
    );

    let audio = indexed(&init(b"soun", 48_000, &opus(), [0; 3]));
    assert_eq!(
        (audio.codec.as_str(), audio.kind),
        ("opus", TrackKind::Audio)
    );
    assert_eq!((audio.width, audio.timescale), (None, 48_000));

    let vpcc = full(b"vpcC", 1, 0, &[0, 10, 0x82, 1, 1, 1, 0, 0]);
    let vp8 = indexed(&init(
        b"vide",
        VIDEO_HZ,
        &visual_entry(b"vp08", 640, 360, &vpcc),
        [0; 3],
    ));
    assert_eq!(
        (vp8.codec.as_str(), vp8.width),
        ("vp08.00.10.08", Some(640))
    );
    let bare_vp8 = indexed(&init(
        b"vide",
        VIDEO_HZ,
        &visual_entry(b"vp08", 64, 64, &[]),
        [0; 3],
    ));
    assert_eq!(bare_vp8.codec, "vp8");
}

#[test]
fn unknown_or_incomplete_tracks_are_refused() {
    let aac = init(b"soun", 48_000, &audio_entry(b"mp4a", &[]), [0; 3]);
    assert!(matches!(index_bytes(&aac), Err(Fmp4Error::Unsupported(_))));
    let subtitles = init(b"text", 1000, &opus(), [0; 3]);
    assert!(matches!(
        index_bytes(&subtitles),
        Err(Fmp4Error::Unsupported(_))
    ));
    let no_avcc = init(b"vide", VIDEO_HZ, &visual_entry(b"avc1", 1, 1, &[]), [0; 3]);
    assert!(matches!(
        index_bytes(&no_avcc),
        Err(Fmp4Error::Malformed { .. })
    ));
    let zero_timescale = init(b"vide", 0, &avc1(), [0; 3]);
    assert!(matches!(
        index_bytes(&zero_timescale),
        Err(Fmp4Error::Malformed { .. })
    ));
    assert!(matches!(
        index_bytes(b""),
        Err(Fmp4Error::HeaderIncomplete(0))
    ));
}

#[test]
fn durations_from_trun_then_tfhd_then_trex() {
    let mut file = init(b"soun", 48_000, &opus(), [960, 4, SYNC]);
    let per_sample = Run {
        count: 3,
        durations: Some(vec![1000, 1000, 1003]),
        ..Run::default()
    };
    let counted = |count| Run {
        count,
        ..Run::default()
    };
    let traf = |tfdt, defaults, run| Traf {
        track_id: 1,
        tfdt,
        defaults,
        runs: vec![run],
    };
    file.extend(fragment(&traf(Some(0), [None; 3], per_sample), 12));
    file.extend(fragment(
        &traf(Some(3003), [Some(1500), Some(2), None], counted(4)),
        8,
    ));
    file.extend(fragment(&traf(None, [None; 3], counted(5)), 20));
    file.extend(fragment(&traf(Some(1 << 40), [None; 3], counted(1)), 4));
    let index = indexed(&file);
    let timing: Vec<_> = index
        .fragments
        .iter()
        .map(|f| (f.start, f.duration))
        .collect();
    // The third has no tfdt: it starts where the second ended.
    assert_eq!(
        timing,
        [(0, 3003), (3003, 6000), (9003, 4800), (1 << 40, 960)]
    );
    assert_eq!(index.media_duration(), 3003 + 6000 + 4800 + 960);
    assert!((index.fragments[1].start_secs(48_000) - 3003.0 / 48_000.0).abs() < 1e-12);
    assert!((index.fragments[2].duration_secs(48_000) - 0.1).abs() < 1e-12);
}

/// Whether a fragment with these `tfhd` defaults, runs and `trex` flags is independent.
fn independent(trex_flags: u32, tfhd_flags: Option<u32>, runs: Vec<Run>) -> bool {
    let mut file = init(b"vide", VIDEO_HZ, &avc1(), [3000, 1, trex_flags]);
    let traf = Traf {
        track_id: 1,
        tfdt: Some(0),
        defaults: [None, None, tfhd_flags],
        runs,
    };
    file.extend(fragment(&traf, 100));
    let index = indexed(&file);
    assert_eq!(index.fragments.len(), 1);
    index.fragments[0].independent
}

#[test]
fn sync_flags_first_sample_then_per_sample_then_tfhd_then_trex() {
    let count = |count| Run {
        count,
        ..Run::default()
    };
    let first = |flags| Run {
        first_flags: Some(flags),
        ..count(2)
    };
    let each = |flags: Vec<u32>| Run {
        count: flags.len() as u32,
        flags: Some(flags),
        ..Run::default()
    };
    assert!(independent(NON_SYNC, Some(NON_SYNC), vec![first(SYNC)]));
    assert!(!independent(SYNC, Some(SYNC), vec![first(NON_SYNC)]));
    assert!(independent(
        NON_SYNC,
        Some(NON_SYNC),
        vec![each(vec![SYNC, NON_SYNC])]
    ));
    assert!(!independent(
        SYNC,
        Some(SYNC),
        vec![each(vec![NON_SYNC, SYNC])]
    ));
    assert!(independent(NON_SYNC, Some(SYNC), vec![count(3)]));
    assert!(!independent(SYNC, Some(NON_SYNC), vec![count(3)]));
    assert!(
        independent(0, None, vec![count(3)]),
        "isofmp4mux's trex: flags 0 = sync"
    );
    assert!(!independent(NON_SYNC, None, vec![count(3)]));
    // An empty run says nothing; the first sample is in the next one.
    assert!(independent(NON_SYNC, None, vec![count(0), first(SYNC)]));
    assert!(!independent(SYNC, None, vec![]), "no sample at all");
}

#[test]
fn fragments_tile_the_file_with_their_styp() {
    let file = video_file();
    let index = indexed(&file);
    let summary: Vec<_> = index
        .fragments
        .iter()
        .map(|f| (f.start, f.duration, f.independent))
        .collect();
    assert_eq!(
        summary,
        [
            (0, 180_000, true),
            (180_000, 180_000, false),
            (360_000, 180_000, true),
            (540_000, 180_000, false)
        ]
    );
    assert_eq!(
        index.fragments[0].offset, index.init.len,
        "the styp belongs to the fragment"
    );
    assert_tiles(&index, file.len() as u64);
    assert_eq!(
        index.fragments.iter().map(|f| f.media_bytes).sum::<u64>(),
        4 * 30
    );
}

#[test]
fn a_truncated_tail_is_ignored() {
    let file = video_file();
    let whole = indexed(&file);
    for cut in 0..=file.len() {
        let result = index_bytes(&file[..cut]);
        if (cut as u64) < whole.init.len {
            assert!(
                matches!(result, Err(Fmp4Error::HeaderIncomplete(_))),
                "cut at {cut}"
            );
            continue;
        }
        let index = result.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let complete: Vec<Fragment> = whole
            .fragments
            .iter()
            .copied()
            .filter(|f| f.end() <= cut as u64)
            .collect();
        assert_eq!(index.fragments, complete, "cut at {cut}");
    }
}

#[test]
fn box_sizes_of_64_bits_and_to_the_end() {
    let run = Run {
        count: 2,
        durations: Some(vec![10, 20]),
        ..Run::default()
    };
    let traf = Traf {
        track_id: 1,
        tfdt: Some(7),
        runs: vec![run],
        ..Traf::default()
    };
    let moof = bx64(b"moof", &traf.bytes());
    let mut file = [video_init(), moof.clone(), bx64(b"mdat", &[0; 5])].concat();
    file.extend([&moof[..], &0u32.to_be_bytes(), b"mdat", &[0; 9]].concat()); // mdat to the end
    let index = indexed(&file);
    assert_eq!(index.fragments.len(), 2);
    assert_eq!(
        (index.fragments[0].start, index.fragments[0].duration),
        (7, 30)
    );
    assert_eq!(
        (
            index.fragments[0].media_bytes,
            index.fragments[1].media_bytes
        ),
        (5, 9)
    );
    assert_tiles(&index, file.len() as u64);
}

#[test]
fn nonsense_is_an_error() {
    let bad = |tail: Vec<u8>| index_bytes(&[video_file(), tail].concat());
    let is_malformed =
        |r: Result<Fmp4Index, Fmp4Error>| matches!(r, Err(Fmp4Error::Malformed { .. }));
    let fragment = video_fragment(720_000, &[3000], true);
    assert!(
        is_malformed(bad([&4u32.to_be_bytes()[..], b"free"].concat())),
        "size < header"
    );
    let moof = &fragment[..fragment.len() - 18]; // without its mdat
    assert!(
        is_malformed(bad([moof, &bx(b"free", &[])].concat())),
        "moof, then no mdat"
    );
    let other_track = Traf {
        track_id: 2,
        tfdt: Some(0),
        runs: vec![Run::default()],
        ..Traf::default()
    };
    assert!(
        is_malformed(bad(self::fragment(&other_track, 0))),
        "no traf for the track"
    );
    let long = Run {
        count: 1000,
        durations: Some(vec![1; 1000]),
        ..Run::default()
    };
    let mut short = long.bytes();
    short.truncate(400);
    short[..4].copy_from_slice(&400u32.to_be_bytes());
    let traf = bx(b"traf", &[full(b"tfhd", 0, 0, &u32s(&[1])), short].concat());
    let moof = bx(b"moof", &traf);
    assert!(
        is_malformed(bad([moof, bx(b"mdat", &[])].concat())),
        "trun past its box"
    );
    let greedy = Traf {
        track_id: 1,
        defaults: [None, Some(100), None],
        runs: vec![Run {
            count: 2,
            ..Run::default()
        }],
        ..Traf::default()
    };
    assert!(
        is_malformed(bad(self::fragment(&greedy, 199))),
        "samples larger than mdat"
    );
    let media_first = [bx(b"mdat", &[]), video_init()].concat();
    assert!(is_malformed(index_bytes(&media_first)), "media before moov");
    let mut overflowing = video_init();
    let trak = overflowing
        .windows(4)
        .position(|w| w == b"trak")
        .expect("a trak")
        - 4;
    overflowing[trak..trak + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        is_malformed(index_bytes(&overflowing)),
        "child larger than its parent"
    );
}

#[test]
fn extend_keeps_what_precedes_damage() {
    let file = [video_file(), bx(b"moof", &[0; 3]), bx(b"mdat", &[])].concat();
    let mut index = fmp4::index_header(&mut Cursor::new(&file), file.len() as u64).expect("header");
    let result = index.extend(&mut Cursor::new(&file), file.len() as u64);
    assert!(
        matches!(result, Err(Fmp4Error::Malformed { .. })),
        "{result:?}"
    );
    assert_eq!(index.fragments, indexed(&video_file()).fragments);
}

#[test]
fn oversized_header_boxes_are_not_read() {
    let huge = fmp4::MAX_HEADER_BOX as usize + 1;
    let file = [video_init(), bx(b"moof", &vec![0; huge]), bx(b"mdat", &[])].concat();
    let result = index_bytes(&file);
    assert!(
        matches!(result, Err(Fmp4Error::BoxTooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn huge_sample_counts_cost_nothing() {
    let traf = Traf {
        track_id: 1,
        tfdt: Some(0),
        defaults: [Some(u32::MAX), Some(0), Some(SYNC)],
        runs: vec![Run {
            count: u32::MAX,
            ..Run::default()
        }],
    };
    let index = indexed(&[video_init(), fragment(&traf, 0)].concat());
    assert_eq!(
        index.fragments[0].duration,
        u64::from(u32::MAX) * u64::from(u32::MAX)
    );
}

#[test]
fn extend_follows_a_growing_file() {
    let file = video_file();
    let whole = indexed(&file);
    let cuts = [
        whole.init.len + 5,
        whole.fragments[1].end() - 1,
        whole.fragments[2].offset + 3,
    ];
    let mut growing = indexed(&file[..cuts[0] as usize]);
    assert!(growing.fragments.is_empty());
    for cut in cuts.into_iter().chain([file.len() as u64]) {
        growing
            .extend(&mut Cursor::new(&file), cut)
            .expect("extends");
        assert_eq!(growing, indexed(&file[..cut as usize]), "extended to {cut}");
    }
    assert_eq!(growing, whole);
    let shrunk = growing.extend(&mut Cursor::new(&file), cuts[2]);
    assert!(
        matches!(shrunk, Err(Fmp4Error::Shrunk { .. })),
        "{shrunk:?}"
    );
}

/// Indexes `bytes` and checks what any result must satisfy.
fn index_garbage(bytes: &[u8]) {
    let Ok(index) = index_bytes(bytes) else {
        return;
    };
    let mut offset = index.init.len;
    for f in &index.fragments {
        assert!(
            f.offset >= offset && f.end() <= bytes.len() as u64 && f.len > 0,
            "{f:?}"
        );
        offset = f.end();
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng::new(0x5eed);
    for _ in 0..3000 {
        let len = (rng.next() % 600) as usize;
        index_garbage(&rng.bytes(len));
        // Plausible box headers with random sizes after a valid header.
        let mut file = video_init();
        for _ in 0..rng.next() % 6 {
            let kind = [b"moof", b"mdat", b"traf", b"styp", b"trun"][(rng.next() % 5) as usize];
            let size = rng.next() as u32 % 64;
            file.extend(
                [
                    &size.to_be_bytes()[..],
                    kind,
                    &rng.bytes(size as usize % 40),
                ]
                .concat(),
            );
        }
        index_garbage(&file);
    }
}

#[test]
fn mutated_files_never_panic() {
    let file = video_file();
    let mut rng = Rng::new(42);
    for _ in 0..4000 {
        let mut mutated = file.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() % file.len() as u64) as usize;
            mutated[at] = match rng.next() % 3 {
                0 => mutated[at] ^ (1 << (rng.next() % 8)),
                1 => [0, 1, 0xff, 0x7f][(rng.next() % 4) as usize],
                _ => rng.next() as u8,
            };
        }
        let cut = mutated.len() - (rng.next() % 40) as usize;
        index_garbage(&mutated[..cut]);
    }
}
