//! Cached fragment indexes of part files.
//!
//! Invariants:
//! - An entry is reused while the file's length is unchanged and extended (never
//!   rebuilt) when the file grew, so a live playlist costs the new fragments only.
//! - The cache is bounded ([`MAX_ENTRIES`]); when full it is emptied (entries are cheap
//!   to rebuild from the file's box headers).
//! - A part that cannot be read (missing, not yet holding an init segment) is left
//!   out of playlists rather than failing the request.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use classcast_recorder::fmp4::{self, Fmp4Index};
use classcast_recorder::hls::IndexedPart;
use classcast_recorder::layout::{LessonDir, PartFile, TrackKey};
use dashmap::DashMap;

/// Part files whose indexes are kept.
const MAX_ENTRIES: usize = 1024;

/// A file's index and the length it was built from; `None` until first read.
type Entry = Arc<Mutex<Option<(u64, Fmp4Index)>>>;

#[derive(Clone, Default)]
pub struct IndexCache {
    entries: Arc<DashMap<PathBuf, Entry>>,
}

impl IndexCache {
    /// The index of one file, current as of now.
    pub fn load(&self, path: &Path) -> Option<Fmp4Index> {
        let len = std::fs::metadata(path).ok()?.len();
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(path) {
            self.entries.clear();
        }
        let entry = self.entries.entry(path.to_path_buf()).or_default().clone();
        let mut slot = entry.lock().ok()?;
        match slot.as_mut() {
            Some((seen, index)) if *seen == len => Some(index.clone()),
            Some((seen, index)) => {
                let mut r = BufReader::new(File::open(path).ok()?);
                index.extend(&mut r, len).ok()?;
                *seen = len;
                Some(index.clone())
            }
            None => {
                let mut r = BufReader::new(File::open(path).ok()?);
                let index = fmp4::index(&mut r, len).ok()?;
                *slot = Some((len, index.clone()));
                Some(index)
            }
        }
    }

    /// The indexed parts of a track that hold media, in part order.
    pub fn parts(&self, dir: &LessonDir, key: &TrackKey, parts: impl Iterator<Item = u32>) -> Vec<IndexedPart> {
        parts
            .filter_map(|n| PartFile::new(key.clone(), n))
            .filter_map(|file| {
                let index = self.load(&dir.part_path(&file))?;
                (!index.fragments.is_empty()).then(|| IndexedPart { file_name: file.file_name(), index })
            })
            .collect()
    }

    /// Lesson time (ms) of a track's first and last media.
    pub fn span(&self, dir: &LessonDir, key: &TrackKey, parts: impl Iterator<Item = u32>) -> Option<(u64, u64)> {
        let parts = self.parts(dir, key, parts);
        let first = &parts.first()?.index;
        let last = &parts.last()?.index;
        let start = first.fragments.first()?.start;
        let end = last.fragments.last()?.media_end();
        Some((ticks_to_ms(start, first.timescale), ticks_to_ms(end, last.timescale)))
    }

}

fn ticks_to_ms(ticks: u64, timescale: u32) -> u64 {
    (fmp4::ticks_to_secs(ticks, timescale) * 1000.0).round() as u64
}
