//! Arbitrary bytes as a recorded part file: the fMP4 indexer, as for a growing file, then
//! the playlists built on its index. An odd first byte puts the rest after a valid H.264
//! init segment, so inputs reach moof/traf/trun parsing without first having to guess a
//! whole moov. Nothing may panic, and every indexed fragment lies within the file.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use classcast_recorder::fmp4;
use classcast_recorder::hls::{self, IndexedPart, PlaylistOptions};
use libfuzzer_sys::fuzz_target;

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let size = u32::try_from(payload.len() + 8).expect("the init's boxes are small");
    [&size.to_be_bytes()[..], kind, payload].concat()
}

fn full(kind: &[u8; 4], flags: u32, payload: &[u8]) -> Vec<u8> {
    bx(kind, &[&flags.to_be_bytes()[..], payload].concat())
}

/// ftyp + moov of one 320x240 H.264 track at 90 kHz, laid out as isofmp4mux writes it.
fn init_segment() -> &'static [u8] {
    static INIT: OnceLock<Vec<u8>> = OnceLock::new();
    INIT.get_or_init(|| {
        let avcc = bx(b"avcC", &[1, 0x42, 0xc0, 0x1f, 0xff, 0xe0]);
        let avc1 = [
            &[0; 7][..],
            &[1],
            &[0; 16],
            &[1, 64, 0, 240],
            &[0; 50],
            &avcc,
        ]
        .concat();
        let stsd = full(
            b"stsd",
            0,
            &[&1u32.to_be_bytes()[..], &bx(b"avc1", &avc1)].concat(),
        );
        let mdhd = full(
            b"mdhd",
            0,
            &[&[0; 8][..], &90_000u32.to_be_bytes(), &[0; 8]].concat(),
        );
        let hdlr = full(b"hdlr", 0, &[&[0; 4][..], b"vide", &[0; 13]].concat());
        let mdia = bx(
            b"mdia",
            &[mdhd, hdlr, bx(b"minf", &bx(b"stbl", &stsd))].concat(),
        );
        let tkhd = full(
            b"tkhd",
            3,
            &[&[0; 8][..], &1u32.to_be_bytes(), &[0; 8]].concat(),
        );
        let trex = full(
            b"trex",
            0,
            &[&1u32.to_be_bytes()[..], &[0, 0, 0, 1], &[0; 12]].concat(),
        );
        let moov = [bx(b"trak", &[tkhd, mdia].concat()), bx(b"mvex", &trex)].concat();
        [bx(b"ftyp", b"iso6\0\0\0\0iso6"), bx(b"moov", &moov)].concat()
    })
}

fn check(file: &[u8]) {
    let len = file.len() as u64;
    let Ok(mut index) = fmp4::index_header(&mut Cursor::new(file), len) else {
        return;
    };
    // As a file being written: half of it, then all of it. Errors keep what was indexed.
    let _ = index.extend(&mut Cursor::new(file), len / 2);
    let _ = index.extend(&mut Cursor::new(file), len);
    assert!(index.fragments.iter().all(|f| f.end() <= len), "{index:?}");
    let part = IndexedPart {
        file_name: "main.camera.part1.mp4".into(),
        index,
    };
    for ended in [false, true] {
        let opts = PlaylistOptions {
            ended,
            ..PlaylistOptions::default()
        };
        let _ = hls::media_playlist(std::slice::from_ref(&part), &opts);
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((mode, rest)) if mode % 2 == 1 => check(&[init_segment(), rest].concat()),
        _ => check(data),
    }
});
