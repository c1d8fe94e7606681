//! Replay of recorded lessons: who may open one, its manifest, its HLS playlists.
//!
//! Everything is read from the recordings as the recorder writes them (the layout
//! module of `classcast-recorder` names every file): playlists are byte ranges of the
//! part files, so nothing is copied or re-muxed, and a lesson still being recorded
//! is replayable from its start (time-shift) with a growing playlist.
//!
//! Invariants:
//! - Every file served is named by the layout module from validated ids; a request
//!   can never reach outside the recordings directory.
//! - Access: the admin key, a join or student token of the lesson's class, or a
//!   signed expiring URL for that lesson ([`access`]); anything else is refused.
//! - Part indexes are cached by path and extended as a file grows, so a live
//!   playlist request reads only the new fragments' headers.

pub mod access;
mod index;

use std::path::PathBuf;

use classcast_recorder::hls;
use classcast_recorder::layout::{ClassId, LayoutError, LessonDir, LessonId, LessonMeta, PartFile, TrackKey};
use serde::Serialize;

use crate::rooms::auth::{AuthError, Tokens};
use crate::store::{ExportStatus, LessonRow, LessonState, Store, StoreError};
pub use access::{AccessError, ReplaySigner};
use index::IndexCache;

/// How long the signed URLs of a manifest stay valid.
pub const URL_TTL_SECS: i64 = 6 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error("this token is for another class")]
    OtherClass,
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the recording cannot be read: {0}")]
    Unreadable(String),
}

impl From<LayoutError> for ReplayError {
    fn from(e: LayoutError) -> Self {
        ReplayError::NotFound(e.to_string())
    }
}

/// What a request presents to open a lesson.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    pub bearer: Option<&'a str>,
    pub exp: Option<&'a str>,
    pub sig: Option<&'a str>,
}

/// The replay service (cheap to clone).
#[derive(Clone)]
pub struct Replay {
    root: PathBuf,
    store: Store,
    tokens: Tokens,
    signer: ReplaySigner,
    admin_key: String,
    indexes: IndexCache,
}

/// The replay page's view of one lesson (see docs/replay.md).
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub lesson: LessonSummary,
    pub live: bool,
    pub expires_at: i64,
    pub tracks: Vec<TrackEntry>,
    pub export: ExportEntry,
}

#[derive(Debug, Serialize)]
pub struct LessonSummary {
    pub id: String,
    pub class_id: String,
    pub title: String,
    pub teacher: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub state: LessonState,
    pub duration_ms: i64,
    pub faults: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct TrackEntry {
    pub key: String,
    pub owner: String,
    pub source: String,
    pub kind: &'static str,
    pub codec: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub playlist: String,
    pub master: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ExportEntry {
    #[serde(flatten)]
    pub status: ExportStatus,
    pub url: Option<String>,
}

/// One file of a lesson a request may fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayFile {
    MediaPlaylist(TrackKey),
    MasterPlaylist(TrackKey),
    Part(PartFile),
    Export,
}

impl ReplayFile {
    /// Parses the last path segment of `/replay/<class>/<lesson>/<file>`.
    pub fn parse(name: &str) -> Option<ReplayFile> {
        if name == EXPORT_FILE {
            return Some(ReplayFile::Export);
        }
        if let Some(stem) = name.strip_suffix(".master.m3u8") {
            return key_of_stem(stem).map(ReplayFile::MasterPlaylist);
        }
        if let Some(stem) = name.strip_suffix(".m3u8") {
            return key_of_stem(stem).map(ReplayFile::MediaPlaylist);
        }
        PartFile::parse(name).ok().map(ReplayFile::Part)
    }
}

/// The URL name of a lesson's composite export.
pub const EXPORT_FILE: &str = "export.mp4";

fn key_of_stem(stem: &str) -> Option<TrackKey> {
    let (owner, source) = stem.split_once('.')?;
    format!("{owner}/{source}").parse().ok()
}

impl Replay {
    pub fn new(root: PathBuf, store: Store, tokens: Tokens, token_secret: &str, admin_key: String) -> Replay {
        Replay { root, store, tokens, signer: ReplaySigner::new(token_secret), admin_key, indexes: IndexCache::default() }
    }

    /// The catalog row of a lesson, if the credentials open it.
    pub fn authorize(&self, lesson_id: &str, creds: Credentials) -> Result<LessonRow, ReplayError> {
        let row = self.store.lesson(lesson_id)?.map(|(row, _)| row);
        let row = row.ok_or_else(|| ReplayError::NotFound(format!("lesson {lesson_id} does not exist")))?;
        if creds.bearer.is_some() {
            self.authorize_class(&row.class_id, creds.bearer)?;
        } else {
            let now = crate::store::unix_now();
            self.signer.verify(&scope(&row.class_id, &row.id), creds.exp, creds.sig, now)?;
        }
        Ok(row)
    }

    /// Whether a bearer (the admin key, or any token of this class) opens its lessons.
    pub fn authorize_class(&self, class_id: &str, bearer: Option<&str>) -> Result<(), ReplayError> {
        let given = bearer.ok_or(AccessError::Missing)?;
        if crate::rooms::auth::same_secret(given, &self.admin_key) {
            return Ok(());
        }
        let claims = self.tokens.verify(given)?;
        if claims.cls != class_id {
            return Err(ReplayError::OtherClass);
        }
        Ok(())
    }

    /// The manifest of an authorized lesson, its URLs signed for [`URL_TTL_SECS`].
    pub fn manifest(&self, row: LessonRow) -> Result<Manifest, ReplayError> {
        let dir = self.dir(&row.class_id, &row.id)?;
        let meta = dir.read_metadata().map_err(|e| ReplayError::Unreadable(e.to_string()))?;
        let expires_at = crate::store::unix_now() + URL_TTL_SECS;
        let query = self.signed_until(&row, expires_at);
        let base = format!("/replay/{}/{}", row.class_id, row.id);
        let tracks = self.track_entries(&dir, &meta, &base, &query);
        let export_url = (row.export.state == crate::store::ExportState::Done).then(|| format!("{base}/{EXPORT_FILE}?{query}"));
        Ok(Manifest {
            live: row.state == LessonState::Recording,
            expires_at,
            export: ExportEntry { status: row.export.clone(), url: export_url },
            lesson: LessonSummary::from(row),
            tracks,
        })
    }

    fn track_entries(&self, dir: &LessonDir, meta: &LessonMeta, base: &str, query: &str) -> Vec<TrackEntry> {
        let mics: Vec<&str> = meta.tracks.iter().filter(|t| t.key.is_audio()).map(|t| t.key.owner()).collect();
        let mut out = Vec::new();
        for t in &meta.tracks {
            let Some((start, end)) = self.indexes.span(dir, &t.key, t.parts.iter().map(|p| p.part)) else { continue };
            let stem = t.key.file_stem();
            let master = (!t.key.is_audio() && mics.contains(&t.key.owner())).then(|| format!("{base}/{stem}.master.m3u8?{query}"));
            out.push(TrackEntry {
                key: t.key.to_string(),
                owner: t.key.owner().into(),
                source: t.key.source().into(),
                kind: if t.key.is_audio() { "audio" } else { "video" },
                codec: t.codec.clone(),
                start_ms: start,
                end_ms: end,
                playlist: format!("{base}/{stem}.m3u8?{query}"),
                master,
            });
        }
        out
    }

    /// The HLS media playlist of one track; URIs carry `query` (the request's signature).
    pub fn media_playlist(&self, row: &LessonRow, key: &TrackKey, query: &str) -> Result<String, ReplayError> {
        let dir = self.dir(&row.class_id, &row.id)?;
        let meta = dir.read_metadata().map_err(|e| ReplayError::Unreadable(e.to_string()))?;
        let track = meta.tracks.iter().find(|t| &t.key == key).ok_or_else(|| ReplayError::NotFound(format!("no track {key}")))?;
        let parts = self.indexes.parts(&dir, key, track.parts.iter().map(|p| p.part));
        if parts.is_empty() {
            return Err(ReplayError::NotFound(format!("track {key} has no media yet")));
        }
        let opts = hls::PlaylistOptions {
            ended: row.state != LessonState::Recording,
            query: with_question_mark(query),
            lesson_started_at_ms: meta.started_at_ms,
            ..hls::PlaylistOptions::default()
        };
        Ok(hls::media_playlist(&parts, &opts))
    }

    /// A video track with its owner's mic as the alternate audio (lip-synced by the player).
    pub fn master_playlist(&self, row: &LessonRow, key: &TrackKey, query: &str) -> Result<String, ReplayError> {
        let dir = self.dir(&row.class_id, &row.id)?;
        let meta = dir.read_metadata().map_err(|e| ReplayError::Unreadable(e.to_string()))?;
        let mic = meta.tracks.iter().find(|t| t.key.is_audio() && t.key.owner() == key.owner());
        let (Some(video), Some(mic)) = (meta.tracks.iter().find(|t| &t.key == key && !key.is_audio()), mic) else {
            return Err(ReplayError::NotFound(format!("no video with audio for {key}")));
        };
        let q = with_question_mark(query);
        let video_parts = self.indexes.parts(&dir, &video.key, video.parts.iter().map(|p| p.part));
        let mic_parts = self.indexes.parts(&dir, &mic.key, mic.parts.iter().map(|p| p.part));
        let (Some(first_video), Some(first_mic)) = (video_parts.first(), mic_parts.first()) else {
            return Err(ReplayError::NotFound(format!("track {key} has no media yet")));
        };
        let ((video_bytes, video_time), (mic_bytes, mic_time)) = (hls::media_totals(&video_parts), hls::media_totals(&mic_parts));
        let variant = hls::VariantInfo {
            uri: format!("{}.m3u8{q}", video.key.file_stem()),
            codec: first_video.index.codec.clone(),
            width: first_video.index.width,
            height: first_video.index.height,
            bytes: video_bytes,
            duration: video_time,
        };
        let audio = hls::AudioRendition {
            uri: format!("{}.m3u8{q}", mic.key.file_stem()),
            name: mic.key.to_string(),
            codec: first_mic.index.codec.clone(),
            bytes: mic_bytes,
            duration: mic_time,
        };
        Ok(hls::master_playlist(&variant, Some(&audio)))
    }

    /// Path of a part file or the export of an authorized lesson.
    pub fn file_path(&self, row: &LessonRow, file: &ReplayFile) -> Result<PathBuf, ReplayError> {
        let dir = self.dir(&row.class_id, &row.id)?;
        match file {
            ReplayFile::Part(part) => Ok(dir.part_path(part)),
            ReplayFile::Export => Ok(dir.export_path()),
            _ => Err(ReplayError::NotFound("not a media file".into())),
        }
    }

    /// `exp=..&sig=..` opening this lesson for [`URL_TTL_SECS`].
    pub fn signed_query(&self, row: &LessonRow) -> String {
        self.signed_until(row, crate::store::unix_now() + URL_TTL_SECS)
    }

    /// `exp=..&sig=..` opening this lesson until `exp` (unix seconds).
    fn signed_until(&self, row: &LessonRow, exp: i64) -> String {
        self.signer.sign(&scope(&row.class_id, &row.id), exp).query()
    }

    /// A signed link to the replay page of one lesson, valid for `ttl_secs`.
    pub fn signed_page_link(&self, row: &LessonRow, ttl_secs: i64) -> (String, i64) {
        let exp = crate::store::unix_now() + ttl_secs;
        (format!("replay.html?lesson={}&{}", row.id, self.signed_until(row, exp)), exp)
    }

    fn dir(&self, class_id: &str, lesson_id: &str) -> Result<LessonDir, ReplayError> {
        let (class, lesson): (ClassId, LessonId) = (class_id.parse()?, lesson_id.parse()?);
        Ok(LessonDir::new(&self.root, class, lesson))
    }
}

fn scope(class_id: &str, lesson_id: &str) -> String {
    format!("{class_id}/{lesson_id}")
}

fn with_question_mark(query: &str) -> String {
    if query.is_empty() { String::new() } else { format!("?{query}") }
}

impl From<LessonRow> for LessonSummary {
    /// The catalog row as the replay page reads it (duration so far while live).
    fn from(row: LessonRow) -> LessonSummary {
        let end = row.ended_at_ms.unwrap_or_else(crate::store::unix_now_ms);
        LessonSummary {
            duration_ms: (end - row.started_at_ms).max(0),
            faults: row.faults.lines().map(String::from).collect(),
            id: row.id,
            class_id: row.class_id,
            title: row.title,
            teacher: row.teacher,
            started_at_ms: row.started_at_ms,
            ended_at_ms: row.ended_at_ms,
            state: row.state,
        }
    }
}
