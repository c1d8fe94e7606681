//! THE on-disk layout of recordings, shared by the recorder, the replay server and
//! retention cleanup. Nothing else may build a recording path by hand.
//!
//! ```text
//! <root>/<class_id>/<lesson_id>/lesson.json
//! <root>/<class_id>/<lesson_id>/export.mp4                             the composite export
//! <root>/<class_id>/<lesson_id>/<owner>.<source>.part<N>.mp4     e.g. main.camera.part1.mp4
//! <root>/<class_id>/<lesson_id>/export.mp4                        composite (crate::export)
//! ```
//!
//! Invariants:
//! - Every path component comes from a validated value: [`ClassId`] and [`LessonId`] are
//!   `[a-z0-9]{1,64}`, [`TrackKey`] is `[a-z0-9]{1,64}/(camera|board|screen|mic)`, part
//!   numbers are `>= 1`. None can contain `/`, `.`, `..` or a NUL, so no path built here can
//!   leave `<root>`. Values deserialized from `lesson.json` are validated the same way.
//! - A part file name maps back to exactly one (key, part): the key's `/` becomes `.`, and
//!   neither owner nor source may contain `.`.
//! - `export.mp4` only ever appears complete: it is rendered into `.export.mp4.tmp` (with
//!   mp4mux's faststart scratch data in `.export.mp4.mdat.tmp`) and renamed on success.
//!   None of these names parses as a part file.
//! - `lesson.json` is only ever replaced whole: written to a temporary file in the same
//!   folder, fsynced, renamed over the old one, then the folder is fsynced. A reader sees
//!   the old or the new metadata, never a mix, even after a crash.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// File name of a lesson's metadata.
pub const METADATA_FILE: &str = "lesson.json";
/// Version written in `lesson.json`; readers reject other versions.
pub const METADATA_VERSION: u32 = 1;
/// The track sources a key may name (the server's `Source`).
pub const SOURCES: [&str; 4] = ["camera", "board", "screen", "mic"];
const MAX_ID_LEN: usize = 64;
/// File name of a lesson's composite rendering ([`crate::export`]).
pub const EXPORT_FILE: &str = "export.mp4";
const EXPORT_TEMP_FILE: &str = ".export.mp4.tmp";
const EXPORT_SCRATCH_FILE: &str = ".export.mp4.mdat.tmp";
const PART_EXT: &str = ".mp4";
const PART_INFIX: &str = ".part";

/// Why a name, a path or a metadata file was refused.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("invalid id {0:?}: ids are 1 to 64 characters of [a-z0-9]")]
    InvalidId(String),
    #[error("invalid track key {0:?}: keys are <[a-z0-9]+>/(camera|board|screen|mic)")]
    InvalidKey(String),
    #[error("not a part file name: {0:?}")]
    InvalidPartName(String),
    #[error("lesson.json: {0}")]
    Metadata(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn is_id(s: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = LayoutError;
            fn try_from(s: String) -> Result<Self, LayoutError> {
                if is_id(&s) { Ok($name(s)) } else { Err(LayoutError::InvalidId(s)) }
            }
        }

        impl FromStr for $name {
            type Err = LayoutError;
            fn from_str(s: &str) -> Result<Self, LayoutError> {
                Self::try_from(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A class id (`[a-z0-9]{1,64}`), the first folder under the root.
    ClassId
);
id_type!(
    /// A lesson id (`[a-z0-9]{1,64}`), the folder of one lesson inside its class.
    LessonId
);

/// A recorded track: `<owner>/<source>`, e.g. `main/camera`, `r1234/mic`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrackKey(String);

impl TrackKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owner part (`main` in `main/camera`).
    pub fn owner(&self) -> &str {
        self.split().0
    }

    /// The source part (`camera` in `main/camera`).
    pub fn source(&self) -> &str {
        self.split().1
    }

    /// True for `mic` (the only audio source).
    pub fn is_audio(&self) -> bool {
        self.source() == "mic"
    }

    fn split(&self) -> (&str, &str) {
        // Validated at construction: exactly one '/' is present.
        self.0.split_once('/').unwrap_or((&self.0, ""))
    }

    /// The key as it appears in file names (`main.camera`).
    pub fn file_stem(&self) -> String {
        self.0.replace('/', ".")
    }
}

impl TryFrom<String> for TrackKey {
    type Error = LayoutError;
    fn try_from(s: String) -> Result<Self, LayoutError> {
        let valid = s
            .split_once('/')
            .is_some_and(|(owner, source)| is_id(owner) && SOURCES.contains(&source));
        if valid {
            Ok(TrackKey(s))
        } else {
            Err(LayoutError::InvalidKey(s))
        }
    }
}

impl FromStr for TrackKey {
    type Err = LayoutError;
    fn from_str(s: &str) -> Result<Self, LayoutError> {
        Self::try_from(s.to_string())
    }
}

impl From<TrackKey> for String {
    fn from(v: TrackKey) -> String {
        v.0
    }
}

impl fmt::Display for TrackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One media file of a lesson: a track and its part number (1, 2, … after restarts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartFile {
    pub key: TrackKey,
    pub part: u32,
}

impl PartFile {
    /// `None` for part 0: parts count from 1.
    pub fn new(key: TrackKey, part: u32) -> Option<PartFile> {
        (part >= 1).then_some(PartFile { key, part })
    }

    /// `main.camera.part1.mp4`.
    pub fn file_name(&self) -> String {
        format!(
            "{}{PART_INFIX}{}{PART_EXT}",
            self.key.file_stem(),
            self.part
        )
    }

    /// The inverse of [`PartFile::file_name`]; anything else is refused.
    pub fn parse(name: &str) -> Result<PartFile, LayoutError> {
        let bad = || LayoutError::InvalidPartName(name.to_string());
        let stem = name.strip_suffix(PART_EXT).ok_or_else(bad)?;
        let (key, part) = stem.rsplit_once(PART_INFIX).ok_or_else(bad)?;
        let (owner, source) = key.split_once('.').ok_or_else(bad)?;
        let key = TrackKey::try_from(format!("{owner}/{source}")).map_err(|_| bad())?;
        let canonical = !part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit());
        let part = part
            .parse::<u32>()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(bad)?;
        PartFile::new(key, part).ok_or_else(bad)
    }
}

/// Recording state of a lesson as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LessonState {
    /// Being recorded now (or the recorder crashed: see [`LessonState::Interrupted`]).
    Recording,
    /// Every track finished cleanly.
    Finished,
    /// Found in `Recording` after a restart, or ended by a fault; parts are readable up to
    /// their last complete fragment.
    Interrupted,
}

/// One part of a track as the metadata knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartMeta {
    /// Part number, `>= 1`; the file is [`PartFile::file_name`].
    pub part: u32,
    /// Lesson time of the part's start (ms since `started_at_ms`).
    pub start_ms: u64,
    /// Media duration once the part is finished; `None` while recording or after a crash.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// File size once the part is finished.
    #[serde(default)]
    pub bytes: Option<u64>,
}

/// One recorded track of a lesson.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackMeta {
    pub key: TrackKey,
    /// `h264`, `vp8` or `opus` ([`crate::Codec::as_str`]).
    pub codec: String,
    pub parts: Vec<PartMeta>,
}

/// Something that went wrong during the recording (a pipeline error, a restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Lesson time (ms since `started_at_ms`).
    pub at_ms: u64,
    #[serde(default)]
    pub track: Option<TrackKey>,
    pub message: String,
}

/// The content of `lesson.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LessonMeta {
    pub version: u32,
    pub lesson_id: LessonId,
    pub class_id: ClassId,
    /// Wall clock of the lesson start, unix milliseconds. Lesson time 0.
    pub started_at_ms: u64,
    pub state: LessonState,
    pub tracks: Vec<TrackMeta>,
    #[serde(default)]
    pub faults: Vec<Fault>,
}

impl LessonMeta {
    /// A new lesson in state `recording` with no tracks yet.
    pub fn new(class_id: ClassId, lesson_id: LessonId, started_at_ms: u64) -> LessonMeta {
        LessonMeta {
            version: METADATA_VERSION,
            lesson_id,
            class_id,
            started_at_ms,
            state: LessonState::Recording,
            tracks: Vec::new(),
            faults: Vec::new(),
        }
    }

    /// The track with this key, added (with `codec`) if absent.
    pub fn track_mut(&mut self, key: &TrackKey, codec: &str) -> &mut TrackMeta {
        let i = match self.tracks.iter().position(|t| &t.key == key) {
            Some(i) => i,
            None => {
                let codec = codec.to_string();
                self.tracks.push(TrackMeta {
                    key: key.clone(),
                    codec,
                    parts: Vec::new(),
                });
                self.tracks.len() - 1
            }
        };
        &mut self.tracks[i]
    }
}

/// The folder of one lesson: `<root>/<class_id>/<lesson_id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonDir {
    root: PathBuf,
    class_id: ClassId,
    lesson_id: LessonId,
}

impl LessonDir {
    pub fn new(root: impl Into<PathBuf>, class_id: ClassId, lesson_id: LessonId) -> LessonDir {
        LessonDir {
            root: root.into(),
            class_id,
            lesson_id,
        }
    }

    pub fn class_id(&self) -> &ClassId {
        &self.class_id
    }

    pub fn lesson_id(&self) -> &LessonId {
        &self.lesson_id
    }

    /// `<root>/<class_id>/<lesson_id>`.
    pub fn path(&self) -> PathBuf {
        self.root
            .join(self.class_id.as_str())
            .join(self.lesson_id.as_str())
    }

    /// Deletes the lesson's folder and everything in it (retention); fine if it is gone.
    /// Only ever this one folder: its path is built from validated ids.
    pub fn remove(&self) -> Result<(), LayoutError> {
        match fs::remove_dir_all(self.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Creates the folder (and its parents); fine if it exists.
    pub fn create(&self) -> Result<(), LayoutError> {
        fs::create_dir_all(self.path())?;
        Ok(())
    }

    /// Path of a part's media file.
    pub fn part_path(&self, part: &PartFile) -> PathBuf {
        self.path().join(part.file_name())
    }

    /// Path of `lesson.json`.
    pub fn metadata_path(&self) -> PathBuf {
        self.path().join(METADATA_FILE)
    }

    /// Path of the composite rendering, `export.mp4` (present only once complete).
    pub fn export_path(&self) -> PathBuf {
        self.path().join(EXPORT_FILE)
    }

    /// Where the export is rendered before it is renamed to [`LessonDir::export_path`].
    pub fn export_temp_path(&self) -> PathBuf {
        self.path().join(EXPORT_TEMP_FILE)
    }

    /// mp4mux's faststart scratch file (the media data until the header is written first).
    pub fn export_scratch_path(&self) -> PathBuf {
        self.path().join(EXPORT_SCRATCH_FILE)
    }

    /// Replaces `lesson.json` atomically (temp file + fsync + rename + fsync of the folder).
    pub fn write_metadata(&self, meta: &LessonMeta) -> Result<(), LayoutError> {
        let json =
            serde_json::to_vec_pretty(meta).map_err(|e| LayoutError::Metadata(e.to_string()))?;
        write_atomic(&self.path(), METADATA_FILE, &json)
    }

    /// Reads and validates `lesson.json`; it must describe this very lesson.
    pub fn read_metadata(&self) -> Result<LessonMeta, LayoutError> {
        let bytes = fs::read(self.metadata_path())?;
        let meta: LessonMeta =
            serde_json::from_slice(&bytes).map_err(|e| LayoutError::Metadata(e.to_string()))?;
        self.check_metadata(&meta)?;
        Ok(meta)
    }

    fn check_metadata(&self, meta: &LessonMeta) -> Result<(), LayoutError> {
        let fail = |m: &str| Err(LayoutError::Metadata(m.to_string()));
        if meta.version != METADATA_VERSION {
            return fail("unsupported version");
        }
        if meta.class_id != self.class_id || meta.lesson_id != self.lesson_id {
            return fail("ids do not match the folder");
        }
        if meta
            .tracks
            .iter()
            .flat_map(|t| &t.parts)
            .any(|p| p.part == 0)
        {
            return fail("part numbers start at 1");
        }
        Ok(())
    }

    /// The part files present in the folder, sorted by key then part. Other files
    /// (`lesson.json`, temporaries) are skipped.
    pub fn list_parts(&self) -> Result<Vec<PartFile>, LayoutError> {
        let mut parts: Vec<PartFile> = list_names(&self.path(), false)?
            .iter()
            .filter_map(|n| PartFile::parse(n).ok())
            .collect();
        parts.sort();
        Ok(parts)
    }
}

/// The class folders under `root` (sorted; names that are not valid ids are skipped).
pub fn list_classes(root: &Path) -> Result<Vec<ClassId>, LayoutError> {
    list_ids(root)
}

/// The lesson folders of a class (sorted; names that are not valid ids are skipped).
pub fn list_lessons(root: &Path, class_id: &ClassId) -> Result<Vec<LessonId>, LayoutError> {
    list_ids(&root.join(class_id.as_str()))
}

fn list_ids<T: FromStr + Ord>(dir: &Path) -> Result<Vec<T>, LayoutError> {
    let mut ids: Vec<T> = list_names(dir, true)?
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Names of the folders (`dirs`) or files in `dir`; a missing `dir` lists nothing.
fn list_names(dir: &Path, dirs: bool) -> Result<Vec<String>, LayoutError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() == dirs {
            names.extend(entry.file_name().into_string().ok());
        }
    }
    Ok(names)
}

/// Writes `dir/name` so that readers see the old or the new content, never a mix.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), LayoutError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = write_synced(&tmp, data).and_then(|()| fs::rename(&tmp, dir.join(name)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}
