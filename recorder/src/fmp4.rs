//! A small ISO-BMFF indexer for the fragmented MP4 part files written by `isofmp4mux`:
//! the init segment (everything up to the end of `moov`), the track's timescale, codec
//! string (RFC 6381) and size, and every complete fragment (`moof`+`mdat`) with its byte
//! range, `tfdt` start, duration and whether it starts with a sync sample. [`crate::hls`]
//! turns this into byte-range playlists; nothing is copied or re-muxed.
//!
//! Invariants:
//! - No panic on any input, and no allocation sized by the file: `mdat` and unknown boxes
//!   are skipped by seeking; only `moov` and `moof` are read, each only once it lies whole
//!   within `len` and is at most [`MAX_HEADER_BOX`] bytes. Sample loops are bounded by the
//!   bytes of their `trun`.
//! - Only complete fragments are indexed. A fragment is a `moof`, the `mdat` right after it
//!   and the `styp`/`prft`/`emsg`/`sidx`/`free`/`skip` boxes right before it (isofmp4mux puts
//!   a `styp` before each keyframe fragment), so fragments tile the file from the end of the
//!   init segment. A box cut off by `len` (a crash, a write in progress) ends the index
//!   without error.
//! - [`Fmp4Index::extend`] resumes after the last complete fragment: re-indexing a growing
//!   file reads only what is new, and gives what a fresh [`index`] of the file gives.
//! - Nonsense is an error, not a guess: a box smaller than its header, a child box
//!   overflowing its parent, a `moof` followed by anything but `mdat`, a `trun` longer than
//!   its box or than the `mdat`. `extend` keeps the fragments found before the damage.
//! - One track is indexed: the first `trak` of `moov`; `traf`s of other tracks are ignored.

use std::io::{self, Read, Seek, SeekFrom};

/// Largest `moov` or `moof` read into memory (isofmp4mux writes a few KiB at most).
pub const MAX_HEADER_BOX: u64 = 4 << 20;
/// `sample_is_non_sync_sample` in ISO-BMFF sample flags.
pub const SAMPLE_IS_NON_SYNC: u32 = 0x0001_0000;
/// Top-level boxes that belong to the fragment whose `moof` follows them.
const FRAGMENT_PREFIX: [&[u8; 4]; 6] = [b"styp", b"prft", b"emsg", b"sidx", b"free", b"skip"];

/// Why a file could not be indexed (further).
#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("reading the file: {0}")]
    Io(#[from] io::Error),
    #[error("no complete moov in the first {0} bytes")]
    HeaderIncomplete(u64),
    #[error("malformed box at byte {offset}: {what}")]
    Malformed { offset: u64, what: String },
    #[error("{kind} box at byte {offset} is {size} bytes, more than {MAX_HEADER_BOX}")]
    BoxTooLarge {
        kind: String,
        offset: u64,
        size: u64,
    },
    #[error("unsupported track: {0}")]
    Unsupported(String),
    #[error("the file is {len} bytes, shorter than the {indexed} bytes already indexed")]
    Shrunk { len: u64, indexed: u64 },
}

/// What the indexed track carries (its `hdlr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
}

/// `offset..offset + len` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }
}

/// Per-sample values that apply when neither `trun` nor `tfhd` gives them (`trex`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SampleDefaults {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// One complete fragment: `len` bytes from `offset` (prefix boxes, `moof`, `mdat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    pub offset: u64,
    pub len: u64,
    /// `tfdt` baseMediaDecodeTime (lesson time), in timescale units.
    pub start: u64,
    /// Sum of the sample durations, in timescale units.
    pub duration: u64,
    /// The first sample is a sync sample: playback can start here.
    pub independent: bool,
    /// Payload bytes of the `mdat` (the media itself, without box headers).
    pub media_bytes: u64,
}

impl Fragment {
    /// First byte after the fragment.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }

    /// Media time right after the fragment, in timescale units.
    pub fn media_end(&self) -> u64 {
        self.start.saturating_add(self.duration)
    }

    pub fn start_secs(&self, timescale: u32) -> f64 {
        ticks_to_secs(self.start, timescale)
    }

    pub fn duration_secs(&self, timescale: u32) -> f64 {
        ticks_to_secs(self.duration, timescale)
    }
}

/// Seconds in `ticks` of `timescale` (a zero timescale counts as 1).
pub fn ticks_to_secs(ticks: u64, timescale: u32) -> f64 {
    ticks as f64 / f64::from(timescale.max(1))
}

/// What a part file holds, by byte range. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmp4Index {
    /// `ftyp`+`moov` (and anything before `moov`): offset 0, up to the end of `moov`.
    pub init: ByteRange,
    /// `track_ID` of the indexed track (the first `trak`).
    pub track_id: u32,
    pub kind: TrackKind,
    /// Units per second of every time in the index (`mdhd`), never 0.
    pub timescale: u32,
    /// RFC 6381 codec string: `avc1.42c01f`, `opus`, `vp08.00.10.08` or `vp8`.
    pub codec: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The track's `trex` defaults, used by [`Fmp4Index::extend`].
    pub defaults: SampleDefaults,
    /// Complete fragments in file order.
    pub fragments: Vec<Fragment>,
}

/// Indexes the first `len` bytes of `r`: the init segment and every complete fragment.
pub fn index(r: &mut (impl Read + Seek), len: u64) -> Result<Fmp4Index, Fmp4Error> {
    let mut index = index_header(r, len)?;
    index.extend(r, len)?;
    Ok(index)
}

/// The index of the init segment alone (no fragments yet). With [`Fmp4Index::extend`] after
/// it, a caller keeps the fragments that precede damage that [`index`] would refuse.
pub fn index_header(r: &mut (impl Read + Seek), len: u64) -> Result<Fmp4Index, Fmp4Error> {
    let mut offset = 0;
    while let Some(header) = read_header(r, offset, len)? {
        match &header.kind {
            b"moov" => {
                let moov = read_payload(r, &header)?;
                return parse_moov(&moov, header.end()).map_err(|p| p.at(header.offset));
            }
            b"moof" | b"mdat" => return Err(malformed_at(header.offset, "media before moov")),
            _ => offset = header.end(),
        }
    }
    Err(Fmp4Error::HeaderIncomplete(len))
}

impl Fmp4Index {
    pub fn is_video(&self) -> bool {
        self.kind == TrackKind::Video
    }

    /// Bytes covered so far: up to the end of the last complete fragment (or of the init).
    pub fn indexed_len(&self) -> u64 {
        self.fragments.last().map_or(self.init.end(), Fragment::end)
    }

    /// Sum of the fragment durations, in timescale units.
    pub fn media_duration(&self) -> u64 {
        self.fragments
            .iter()
            .fold(0, |sum, f| sum.saturating_add(f.duration))
    }

    /// Adds the fragments completed since the last call, reading from
    /// [`Fmp4Index::indexed_len`] up to `len`. On error the fragments before the bad box stay.
    pub fn extend(&mut self, r: &mut (impl Read + Seek), len: u64) -> Result<(), Fmp4Error> {
        let indexed = self.indexed_len();
        if len < indexed {
            return Err(Fmp4Error::Shrunk { len, indexed });
        }
        let (mut offset, mut prefix) = (indexed, None);
        while let Some(header) = read_header(r, offset, len)? {
            offset = header.end();
            if &header.kind == b"moof" {
                let start = prefix.take().unwrap_or(header.offset);
                let Some(fragment) = self.read_fragment(r, &header, start, len)? else {
                    return Ok(());
                };
                offset = fragment.end();
                self.fragments.push(fragment);
            } else if FRAGMENT_PREFIX.contains(&&header.kind) {
                prefix.get_or_insert(header.offset);
            } else {
                prefix = None;
            }
        }
        Ok(())
    }

    /// The fragment of `moof` starting at byte `start`; `None` until its `mdat` is whole.
    fn read_fragment(
        &self,
        r: &mut (impl Read + Seek),
        moof: &BoxHeader,
        start: u64,
        len: u64,
    ) -> Result<Option<Fragment>, Fmp4Error> {
        let Some(mdat) = read_header(r, moof.end(), len)? else {
            return Ok(None);
        };
        if &mdat.kind != b"mdat" {
            return Err(malformed_at(mdat.offset, "moof not followed by mdat"));
        }
        let payload = read_payload(r, moof)?;
        let timing =
            parse_moof(&payload, self.track_id, &self.defaults).map_err(|p| p.at(moof.offset))?;
        if timing.sample_bytes > mdat.payload_len() {
            return Err(malformed_at(moof.offset, "samples larger than their mdat"));
        }
        let media_start = self.fragments.last().map_or(0, Fragment::media_end);
        Ok(Some(Fragment {
            offset: start,
            len: mdat.end() - start,
            start: timing.start.unwrap_or(media_start),
            duration: timing.duration,
            independent: timing.independent,
            media_bytes: mdat.payload_len(),
        }))
    }
}

// ---- Top-level boxes, read from the file.

/// A box header found in the file; the whole box lies within the indexed length.
#[derive(Debug, Clone, Copy)]
struct BoxHeader {
    kind: [u8; 4],
    offset: u64,
    header_len: u64,
    size: u64,
}

impl BoxHeader {
    fn end(&self) -> u64 {
        self.offset + self.size
    }

    fn payload_len(&self) -> u64 {
        self.size - self.header_len
    }
}

/// The box at `offset`, or `None` at the end of `len` or if the box is cut off by it.
fn read_header(
    r: &mut (impl Read + Seek),
    offset: u64,
    len: u64,
) -> Result<Option<BoxHeader>, Fmp4Error> {
    let available = len.saturating_sub(offset);
    if available < 8 {
        return Ok(None);
    }
    let mut bytes = [0u8; 16];
    r.seek(SeekFrom::Start(offset))?;
    r.read_exact(&mut bytes[..8])?;
    let kind = fourcc(&bytes[4..8]);
    let (size, header_len) = match be_u32(&bytes[..4]) {
        0 => (available, 8),
        1 if available < 16 => return Ok(None),
        1 => {
            r.read_exact(&mut bytes[8..16])?;
            (be_u64(&bytes[8..16]), 16)
        }
        size => (u64::from(size), 8),
    };
    if size < header_len {
        return Err(malformed_at(offset, "box smaller than its header"));
    }
    Ok((size <= available).then_some(BoxHeader {
        kind,
        offset,
        header_len,
        size,
    }))
}

/// The payload of a box that must be parsed (`moov`, `moof`), at most [`MAX_HEADER_BOX`].
fn read_payload(r: &mut (impl Read + Seek), header: &BoxHeader) -> Result<Vec<u8>, Fmp4Error> {
    if header.size > MAX_HEADER_BOX {
        return Err(Fmp4Error::BoxTooLarge {
            kind: header.kind.escape_ascii().to_string(),
            offset: header.offset,
            size: header.size,
        });
    }
    let mut payload = vec![0; header.payload_len() as usize];
    r.seek(SeekFrom::Start(header.offset + header.header_len))?;
    r.read_exact(&mut payload)?;
    Ok(payload)
}

fn malformed_at(offset: u64, what: &str) -> Fmp4Error {
    Fmp4Error::Malformed {
        offset,
        what: what.to_string(),
    }
}

// ---- Boxes inside moov / moof, parsed from memory.

/// A problem inside a top-level box, before its offset is attached.
#[derive(Debug)]
enum Problem {
    Malformed(String),
    Unsupported(String),
}

impl Problem {
    fn at(self, offset: u64) -> Fmp4Error {
        match self {
            Problem::Malformed(what) => Fmp4Error::Malformed { offset, what },
            Problem::Unsupported(what) => Fmp4Error::Unsupported(what),
        }
    }
}

type Parse<T> = Result<T, Problem>;

fn malformed<T>(what: &str) -> Parse<T> {
    Err(Problem::Malformed(what.to_string()))
}

fn unsupported<T>(what: &str, kind: &[u8]) -> Parse<T> {
    Err(Problem::Unsupported(format!(
        "{what} {}",
        kind.escape_ascii()
    )))
}

/// Big-endian fields of a box payload; reading past its end is an error, never a panic.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Parse<&'a [u8]> {
        if n > self.rest.len() {
            return malformed("field past the end of its box");
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Parse<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Parse<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn u32(&mut self) -> Parse<u32> {
        self.take(4).map(be_u32)
    }

    fn u64(&mut self) -> Parse<u64> {
        self.take(8).map(be_u64)
    }

    /// A 32-bit field in version 0 boxes, 64-bit in version 1.
    fn versioned(&mut self, version: u8) -> Parse<u64> {
        if version == 0 {
            self.u32().map(u64::from)
        } else {
            self.u64()
        }
    }

    fn remaining(&self) -> usize {
        self.rest.len()
    }
}

/// The version, flags and fields of a full box's payload.
fn full_box(payload: &[u8]) -> Parse<(u8, u32, Fields<'_>)> {
    let mut fields = Fields::new(payload);
    let version_and_flags = fields.u32()?;
    Ok((
        (version_and_flags >> 24) as u8,
        version_and_flags & 0x00ff_ffff,
        fields,
    ))
}

/// Child boxes of a payload: `(kind, payload)` each.
struct Children<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Children<'a> {
    type Item = Parse<([u8; 4], &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let child = split_child(self.rest);
        match &child {
            Ok((_, _, rest)) => self.rest = rest,
            Err(_) => self.rest = &[],
        }
        Some(child.map(|(kind, payload, _)| (kind, payload)))
    }
}

fn children(payload: &[u8]) -> Children<'_> {
    Children { rest: payload }
}

/// The first box in `bytes`: its kind, its payload and what follows it.
fn split_child(bytes: &[u8]) -> Parse<([u8; 4], &[u8], &[u8])> {
    let mut fields = Fields::new(bytes);
    let size = fields.u32()?;
    let kind = fourcc(fields.take(4)?);
    let (size, header_len) = match size {
        0 => (bytes.len() as u64, 8),
        1 => (fields.u64()?, 16),
        size => (u64::from(size), 8),
    };
    if size < header_len {
        return malformed("box smaller than its header");
    }
    let (header_len, size) = (
        header_len as usize,
        usize::try_from(size).unwrap_or(usize::MAX),
    );
    let (Some(payload), Some(rest)) = (bytes.get(header_len..size), bytes.get(size..)) else {
        return malformed("box larger than its parent");
    };
    Ok((kind, payload, rest))
}

/// The first child of `kind`, if any.
fn find_child<'a>(payload: &'a [u8], kind: &[u8; 4]) -> Parse<Option<&'a [u8]>> {
    for child in children(payload) {
        let (found, child_payload) = child?;
        if &found == kind {
            return Ok(Some(child_payload));
        }
    }
    Ok(None)
}

/// The first child of `kind`; missing is malformed.
fn child<'a>(payload: &'a [u8], kind: &[u8; 4]) -> Parse<&'a [u8]> {
    find_child(payload, kind)?
        .ok_or_else(|| Problem::Malformed(format!("no {} box", kind.escape_ascii())))
}

// ---- moov: the track.

/// The index of the init segment `0..init_len` whose `moov` payload is `moov`.
fn parse_moov(moov: &[u8], init_len: u64) -> Parse<Fmp4Index> {
    let trak = child(moov, b"trak")?;
    let track_id = parse_tkhd(child(trak, b"tkhd")?)?;
    let mdia = child(trak, b"mdia")?;
    let timescale = parse_mdhd(child(mdia, b"mdhd")?)?;
    let kind = parse_hdlr(child(mdia, b"hdlr")?)?;
    let stbl = child(child(mdia, b"minf")?, b"stbl")?;
    let (format, entry) = first_sample_entry(child(stbl, b"stsd")?)?;
    let (codec, size) = describe_sample_entry(kind, &format, entry)?;
    Ok(Fmp4Index {
        init: ByteRange {
            offset: 0,
            len: init_len,
        },
        track_id,
        kind,
        timescale,
        codec,
        width: size.map(|(width, _)| width),
        height: size.map(|(_, height)| height),
        defaults: trex_defaults(moov, track_id)?,
        fragments: Vec::new(),
    })
}

fn parse_tkhd(tkhd: &[u8]) -> Parse<u32> {
    let (version, _, mut fields) = full_box(tkhd)?;
    fields.versioned(version)?; // creation time
    fields.versioned(version)?; // modification time
    fields.u32()
}

fn parse_mdhd(mdhd: &[u8]) -> Parse<u32> {
    let (version, _, mut fields) = full_box(mdhd)?;
    fields.versioned(version)?; // creation time
    fields.versioned(version)?; // modification time
    match fields.u32()? {
        0 => malformed("mdhd timescale is 0"),
        timescale => Ok(timescale),
    }
}

fn parse_hdlr(hdlr: &[u8]) -> Parse<TrackKind> {
    let (_, _, mut fields) = full_box(hdlr)?;
    fields.u32()?; // pre_defined
    match fields.take(4)? {
        b"vide" => Ok(TrackKind::Video),
        b"soun" => Ok(TrackKind::Audio),
        other => unsupported("handler", other),
    }
}

fn first_sample_entry(stsd: &[u8]) -> Parse<([u8; 4], &[u8])> {
    let (_, _, mut fields) = full_box(stsd)?;
    fields.u32()?; // entry_count
    match children(fields.rest).next() {
        Some(entry) => entry,
        None => malformed("stsd without a sample entry"),
    }
}

/// Fixed fields of a VisualSampleEntry before its child boxes; width and height at 24..28.
const VISUAL_ENTRY_LEN: usize = 78;
/// Fixed fields of an AudioSampleEntry (version 0) before its child boxes.
const AUDIO_ENTRY_LEN: usize = 28;

/// The codec string and, for video, the width and height of a sample entry.
fn describe_sample_entry(
    kind: TrackKind,
    format: &[u8; 4],
    entry: &[u8],
) -> Parse<(String, Option<(u32, u32)>)> {
    let (fixed_len, size) = match kind {
        TrackKind::Video => (VISUAL_ENTRY_LEN, Some(visual_size(entry)?)),
        TrackKind::Audio => (AUDIO_ENTRY_LEN, None),
    };
    let Some(boxes) = entry.get(fixed_len..) else {
        return malformed("sample entry shorter than its fields");
    };
    Ok((codec_string(format, boxes)?, size))
}

fn visual_size(entry: &[u8]) -> Parse<(u32, u32)> {
    let mut fields = Fields::new(entry);
    fields.take(24)?; // SampleEntry and VisualSampleEntry fields before width
    Ok((u32::from(fields.u16()?), u32::from(fields.u16()?)))
}

/// RFC 6381 `codecs` value of a sample entry, from its configuration box.
fn codec_string(format: &[u8; 4], boxes: &[u8]) -> Parse<String> {
    match format {
        b"avc1" | b"avc3" => avc_codec(format, child(boxes, b"avcC")?),
        b"vp08" | b"vp09" => match find_child(boxes, b"vpcC")? {
            Some(vpcc) => vp_codec(format, vpcc),
            None => Ok(if format == b"vp08" { "vp8" } else { "vp9" }.to_string()),
        },
        b"Opus" => Ok("opus".to_string()),
        other => unsupported("sample entry", other),
    }
}

/// `avc1.PPCCLL`: profile, constraint flags and level from the `avcC` record.
fn avc_codec(format: &[u8; 4], avcc: &[u8]) -> Parse<String> {
    let mut fields = Fields::new(avcc);
    fields.u8()?; // configurationVersion
    let (profile, constraints, level) = (fields.u8()?, fields.u8()?, fields.u8()?);
    Ok(format!(
        "{}.{profile:02x}{constraints:02x}{level:02x}",
        format.escape_ascii()
    ))
}

/// `vp08.PP.LL.DD`: profile, level and bit depth from `vpcC` (both of its versions).
fn vp_codec(format: &[u8; 4], vpcc: &[u8]) -> Parse<String> {
    let (_, _, mut fields) = full_box(vpcc)?;
    let (profile, level, depth) = (fields.u8()?, fields.u8()?, fields.u8()? >> 4);
    Ok(format!(
        "{}.{profile:02}.{level:02}.{depth:02}",
        format.escape_ascii()
    ))
}

/// The `trex` of `track_id` in `moov/mvex`; all zero if there is none.
fn trex_defaults(moov: &[u8], track_id: u32) -> Parse<SampleDefaults> {
    let Some(mvex) = find_child(moov, b"mvex")? else {
        return Ok(SampleDefaults::default());
    };
    for entry in children(mvex) {
        let (kind, trex) = entry?;
        if &kind != b"trex" {
            continue;
        }
        let (_, _, mut fields) = full_box(trex)?;
        if fields.u32()? == track_id {
            fields.u32()?; // default_sample_description_index
            return Ok(SampleDefaults {
                duration: fields.u32()?,
                size: fields.u32()?,
                flags: fields.u32()?,
            });
        }
    }
    Ok(SampleDefaults::default())
}

// ---- moof: one fragment's timing.

const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
const TFHD_SAMPLE_DESCRIPTION_INDEX: u32 = 0x02;
const TFHD_DEFAULT_DURATION: u32 = 0x08;
const TFHD_DEFAULT_SIZE: u32 = 0x10;
const TFHD_DEFAULT_FLAGS: u32 = 0x20;
const TRUN_DATA_OFFSET: u32 = 0x01;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x04;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_FLAGS: u32 = 0x400;
const TRUN_COMPOSITION_OFFSET: u32 = 0x800;

struct FragmentTiming {
    start: Option<u64>,
    duration: u64,
    independent: bool,
    sample_bytes: u64,
}

/// The timing of `track_id` in a `moof`; a `moof` without a `traf` for it is malformed.
fn parse_moof(moof: &[u8], track_id: u32, trex: &SampleDefaults) -> Parse<FragmentTiming> {
    for entry in children(moof) {
        let (kind, traf) = entry?;
        if &kind != b"traf" {
            continue;
        }
        let (traf_track, defaults) = parse_tfhd(child(traf, b"tfhd")?, trex)?;
        if traf_track == track_id {
            return parse_traf(traf, &defaults);
        }
    }
    malformed("moof without a traf for the track")
}

/// The `tfhd`'s track and the defaults its samples use (`tfhd` values, else `trex`).
fn parse_tfhd(tfhd: &[u8], trex: &SampleDefaults) -> Parse<(u32, SampleDefaults)> {
    let (_, flags, mut fields) = full_box(tfhd)?;
    let track_id = fields.u32()?;
    if flags & TFHD_BASE_DATA_OFFSET != 0 {
        fields.u64()?;
    }
    if flags & TFHD_SAMPLE_DESCRIPTION_INDEX != 0 {
        fields.u32()?;
    }
    let mut field_or = |flag: u32, default: u32| {
        if flags & flag != 0 {
            fields.u32()
        } else {
            Ok(default)
        }
    };
    let defaults = SampleDefaults {
        duration: field_or(TFHD_DEFAULT_DURATION, trex.duration)?,
        size: field_or(TFHD_DEFAULT_SIZE, trex.size)?,
        flags: field_or(TFHD_DEFAULT_FLAGS, trex.flags)?,
    };
    Ok((track_id, defaults))
}

fn parse_traf(traf: &[u8], defaults: &SampleDefaults) -> Parse<FragmentTiming> {
    let start = match find_child(traf, b"tfdt")? {
        Some(tfdt) => {
            let (version, _, mut fields) = full_box(tfdt)?;
            Some(fields.versioned(version)?)
        }
        None => None,
    };
    let mut timing = FragmentTiming {
        start,
        duration: 0,
        independent: false,
        sample_bytes: 0,
    };
    let mut first_flags = None;
    for entry in children(traf) {
        let (kind, trun) = entry?;
        if &kind == b"trun" {
            let run = parse_trun(trun, defaults)?;
            timing.duration = timing.duration.saturating_add(run.duration);
            timing.sample_bytes = timing.sample_bytes.saturating_add(run.bytes);
            first_flags = first_flags.or(run.first_flags);
        }
    }
    timing.independent = first_flags.is_some_and(|f| f & SAMPLE_IS_NON_SYNC == 0);
    Ok(timing)
}

/// What one `trun` adds up to.
struct RunTotals {
    duration: u64,
    bytes: u64,
    /// Flags of the run's first sample; `None` for an empty run.
    first_flags: Option<u32>,
}

fn parse_trun(trun: &[u8], defaults: &SampleDefaults) -> Parse<RunTotals> {
    let (_, flags, mut fields) = full_box(trun)?;
    let count = fields.u32()?;
    if flags & TRUN_DATA_OFFSET != 0 {
        fields.u32()?;
    }
    let first_sample_flags = match flags & TRUN_FIRST_SAMPLE_FLAGS {
        0 => None,
        _ => Some(fields.u32()?),
    };
    let per_sample = [
        TRUN_DURATION,
        TRUN_SIZE,
        TRUN_FLAGS,
        TRUN_COMPOSITION_OFFSET,
    ];
    let entry_len = 4 * per_sample.iter().filter(|f| flags & **f != 0).count();
    if u64::from(count) * entry_len as u64 > fields.remaining() as u64 {
        return malformed("trun samples past the end of the box");
    }
    let mut totals = sum_samples(&mut fields, count, flags, defaults)?;
    if count > 0 {
        totals.first_flags = first_sample_flags.or(totals.first_flags);
    }
    Ok(totals)
}

/// Sums the samples of a `trun`; loops only over entries that are in the box.
fn sum_samples(
    fields: &mut Fields,
    count: u32,
    flags: u32,
    defaults: &SampleDefaults,
) -> Parse<RunTotals> {
    let has = |flag: u32| flags & flag != 0;
    if !(has(TRUN_DURATION) || has(TRUN_SIZE) || has(TRUN_FLAGS)) {
        return Ok(RunTotals {
            duration: u64::from(count) * u64::from(defaults.duration),
            bytes: u64::from(count) * u64::from(defaults.size),
            first_flags: (count > 0).then_some(defaults.flags),
        });
    }
    let mut totals = RunTotals {
        duration: 0,
        bytes: 0,
        first_flags: None,
    };
    for _ in 0..count {
        let mut field_or =
            |flag: u32, default: u32| if has(flag) { fields.u32() } else { Ok(default) };
        totals.duration += u64::from(field_or(TRUN_DURATION, defaults.duration)?);
        totals.bytes += u64::from(field_or(TRUN_SIZE, defaults.size)?);
        let sample_flags = field_or(TRUN_FLAGS, defaults.flags)?;
        field_or(TRUN_COMPOSITION_OFFSET, 0)?;
        totals.first_flags = totals.first_flags.or(Some(sample_flags));
    }
    Ok(totals)
}

// ---- Byte helpers (callers pass slices of the right length).

fn fourcc(bytes: &[u8]) -> [u8; 4] {
    let mut kind = [0; 4];
    for (k, b) in kind.iter_mut().zip(bytes) {
        *k = *b;
    }
    kind
}

fn be_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .fold(0, |v, b| (v << 8) | u32::from(*b))
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .fold(0, |v, b| (v << 8) | u64::from(*b))
}
