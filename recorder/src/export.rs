//! After class: renders a lesson's part files into one composite MP4 for operators to
//! download (`export.mp4` in the lesson folder, [`LessonDir::export_path`]).
//!
//! ```text
//! per video part: filesrc ! qtdemux ! h264parse ! avdec_h264 | vp8dec ! videoconvertscale
//!                   ! I420 bt709 of its place's size (letterboxed) ─┐
//! videotestsrc black 16x16, lesson-long ──────────────────────────────┴ compositor
//!   ! I420 1280x720 25/1 ! x264enc veryfast 1.8 Mbit/s GOP 2 s ! main ─────────┐
//! per mic part: filesrc ! qtdemux ! opusdec ! audioconvert ! audioresample ─┐   │
//! audiotestsrc silence, lesson-long ─────────────────────────────────────────┴ audiomixer
//!   ! 48 kHz stereo ! audioconvert ! avenc_aac (else voaacenc) 128 kbit/s ─────┤
//!   mp4mux faststart ! filesink .export.mp4.tmp, renamed export.mp4 once complete
//! ```
//!
//! Layout: `main/screen` (else `main/board`) fills the frame, letterboxed; `main/camera`
//! is a picture-in-picture a quarter of the width wide, bottom-right, 16 px from the
//! edges, or fills the frame without courseware. Black where no part has media. Every mic
//! (`main/mic` and every classroom's) is mixed in.
//!
//! Timeline, measured on isofmp4mux part files: qtdemux stamps samples with their
//! `tfdt`-based time, i.e. lesson time (a part started at 600 s has PTS 600 s), but starts
//! its TIME segment at the first sample (start = time = 600 s), so running time would be
//! zero-based and every part would land at 0. A probe on each demuxer pad rebases the
//! segment to start at 0: running time = PTS = lesson time, no offset to compute. Both
//! mixers start at 0; the black and silent sources last exactly the lesson and parts are
//! cut there (buffers with DTS past it are dropped before decoding), so the output lasts
//! the lesson (plus less than a frame).
//!
//! Priority, measured (`streaming_threads_run_at_nice_19` in `tests/export.rs` reads
//! `/proc/self/task/*/stat` while rendering): `setpriority(PRIO_PROCESS, tid, 19)` on the
//! rendering thread does *not* reach GStreamer's streaming threads. They come from GLib's
//! shared pool, whose threads GLib's "pool-spawner" creates with the scheduling settings
//! of the first thread that made a shared pool (nice 0 in the server), and which every
//! pipeline reuses: renicing them would leak nice 19 into the live recorders. So every
//! task of the export gets (on its `STREAM_STATUS` create message) a task pool of ours,
//! whose threads set nice 19 and end with their task; threads they start (libav's, x264's)
//! inherit it. compositor's conversions would run on GLib's pool too (its parallel convert
//! pads always use async tasks): inputs arrive already in the output's exact format and
//! their final size, so it converts nothing. Encoder, decoders, scalers: 1 thread each.
//!
//! Invariants:
//! - `export.mp4` appears only complete (temporary file, fsync, rename); on failure or
//!   cancel the temporary files are removed and no `export.mp4` is written.
//! - No panic on missing, empty or truncated part files: a part that cannot be read is
//!   left out (its mixer input ended) and named in [`ExportSummary::warnings`].
//! - Every thread this module starts runs at nice 19; the caller's thread is not reniced.
//! - An export that stops advancing for [`STALL_TIMEOUT`] fails; it never hangs.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::layout::{LessonDir, LessonMeta, PartFile, TrackMeta};
use crate::priority::{lower_thread_priority, use_low_priority_threads};

/// Output picture size and rate.
pub const WIDTH: i32 = 1280;
pub const HEIGHT: i32 = 720;
pub const FPS: i32 = 25;
/// The export fails if neither its output position nor its files grow for this long.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Niceness of every thread of the export.
pub const NICE: i32 = 19;
const VIDEO_KBITS: u32 = 1800;
const KEYFRAME_EVERY: u32 = 2 * FPS as u32;
const AUDIO_BITS: i32 = 128_000;
const AUDIO_RATE: i32 = 48_000;
const SILENCE_SAMPLES: i32 = AUDIO_RATE / 10;
const PIP_WIDTH: i32 = WIDTH / 4;
const PIP_MARGIN: i32 = 16;
const COURSEWARE: [&str; 2] = ["main/screen", "main/board"];
const CAMERA: &str = "main/camera";
/// Element names start with this; GStreamer names each streaming thread after its
/// element, so the export's threads are recognisable in `/proc/<pid>/task/*/comm`.
pub(crate) const PREFIX: &str = "ex_";
const POLL: Duration = Duration::from_millis(100);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
const MAX_WARNINGS: usize = 32;

/// What [`render_export`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// `export.mp4` in the lesson folder.
    pub path: PathBuf,
    pub bytes: u64,
    /// Length of the rendered media.
    pub media_duration: Duration,
    /// Time the rendering took.
    pub wall_time: Duration,
    /// `media_duration / wall_time`: how many times faster than real time.
    pub speed: f64,
    /// Parts left out (missing, empty, unreadable) and other non-fatal problems.
    pub warnings: Vec<String>,
}

/// Why no export was produced.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("nothing to export: no part file of a camera, screen, board or mic track")]
    NoTracks,
    #[error("the lesson duration is zero")]
    EmptyLesson,
    #[error("GStreamer element missing: {0} (see recorder/README.md for the packages)")]
    MissingElement(String),
    #[error("pipeline error in {element}: {message}")]
    Pipeline { element: String, message: String },
    #[error("export I/O: {0}")]
    Io(#[from] io::Error),
    #[error("export cancelled")]
    Cancelled,
}

fn pipeline_error(element: &str, message: impl ToString) -> ExportError {
    let (element, message) = (element.to_string(), message.to_string());
    ExportError::Pipeline { element, message }
}

/// Renders `export.mp4` for the lesson in `dir`, `lesson_duration` long (blocking).
/// `progress` is called on the caller's thread with 0.0 at the start, the output position
/// as a fraction about once a second, and 1.0 on success. Setting `cancel` ends the
/// rendering within ~100 ms with [`ExportError::Cancelled`]. The rendering runs on a
/// thread of its own at nice 19 (see the module documentation).
pub fn render_export(
    dir: &LessonDir,
    meta: &LessonMeta,
    lesson_duration: Duration,
    progress: &mut dyn FnMut(f32),
    cancel: &AtomicBool,
) -> Result<ExportSummary, ExportError> {
    let started = Instant::now();
    if lesson_duration.is_zero() {
        return Err(ExportError::EmptyLesson);
    }
    let plan = Plan::new(dir, meta);
    if plan.video.is_empty() && plan.audio.is_empty() {
        return Err(ExportError::NoTracks);
    }
    crate::init().map_err(|e| pipeline_error("gstreamer", e))?;
    let end = lesson_duration;
    let job = Job {
        dir,
        plan,
        end,
        cancel,
        started,
    };
    progress(0.0);
    let summary = run_on_low_priority_thread(&job, progress)?;
    progress(1.0);
    Ok(summary)
}

/// Everything the rendering thread needs.
struct Job<'a> {
    dir: &'a LessonDir,
    plan: Plan,
    end: Duration,
    cancel: &'a AtomicBool,
    started: Instant,
}

fn run_on_low_priority_thread(
    job: &Job,
    progress: &mut dyn FnMut(f32),
) -> Result<ExportSummary, ExportError> {
    let (tx, rx) = mpsc::channel::<f32>();
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name(format!("{PREFIX}render"))
            .spawn_scoped(scope, move || render(job, &tx))?;
        // Ends when the worker drops `tx`, i.e. when it is done.
        rx.iter().for_each(&mut *progress);
        let panicked = || Err(pipeline_error("export", "rendering thread panicked"));
        worker.join().unwrap_or_else(|_| panicked())
    })
}

fn render(job: &Job, progress: &mpsc::Sender<f32>) -> Result<ExportSummary, ExportError> {
    let mut warnings = job.plan.warnings.clone();
    if let Err(e) = lower_thread_priority() {
        warnings.push(format!("cannot lower the rendering priority: {e}"));
    }
    let rendered = Graph::build(job).and_then(|mut graph| {
        let media_duration = graph.run(job, progress, &mut warnings);
        let _ = graph.pipeline.set_state(gst::State::Null); // Joins every streaming thread.
        media_duration
    });
    let summary = rendered.and_then(|media| publish(job, media, warnings));
    if summary.is_err() {
        for path in [job.dir.export_temp_path(), job.dir.export_scratch_path()] {
            let _ = fs::remove_file(path);
        }
    }
    summary
}

/// Moves the complete temporary file into place and describes it.
fn publish(
    job: &Job,
    media: Duration,
    warnings: Vec<String>,
) -> Result<ExportSummary, ExportError> {
    let (temp, path) = (job.dir.export_temp_path(), job.dir.export_path());
    File::open(&temp)?.sync_all()?;
    fs::rename(&temp, &path)?;
    File::open(job.dir.path())?.sync_all()?;
    let bytes = fs::metadata(&path)?.len();
    let wall_time = job.started.elapsed();
    Ok(ExportSummary {
        path,
        bytes,
        media_duration: media,
        wall_time,
        speed: media.as_secs_f64() / wall_time.as_secs_f64().max(1e-6),
        warnings,
    })
}

// ---------------------------------------------------------------------------------------
// What to render.

/// Where a part goes in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The whole frame, letterboxed (courseware, or the camera when there is none).
    Full,
    /// The picture-in-picture, bottom-right.
    Pip,
    /// The audio mix.
    Mix,
}

/// The part files to render, each with its place.
struct Plan {
    video: Vec<(PathBuf, Place)>,
    audio: Vec<PathBuf>,
    warnings: Vec<String>,
}

impl Plan {
    fn new(dir: &LessonDir, meta: &LessonMeta) -> Plan {
        let mut warnings = Vec::new();
        let mut files = |track: &TrackMeta| present_parts(dir, track, &mut warnings);
        let track = |key: &str| meta.tracks.iter().find(|t| t.key.as_str() == key);
        let mut recorded = COURSEWARE
            .iter()
            .filter_map(|key| track(key).map(&mut files));
        let courseware = recorded.find(|parts| !parts.is_empty()).unwrap_or_default();
        let camera = track(CAMERA).map(&mut files).unwrap_or_default();
        let camera_place = if courseware.is_empty() {
            Place::Full
        } else {
            Place::Pip
        };
        let video = (courseware.into_iter().map(|p| (p, Place::Full)))
            .chain(camera.into_iter().map(|p| (p, camera_place)))
            .collect();
        let mics = meta.tracks.iter().filter(|t| t.key.is_audio());
        let audio = mics.flat_map(&mut files).collect();
        Plan {
            video,
            audio,
            warnings,
        }
    }
}

/// The part files of `track` that exist and are not empty; the others become warnings.
fn present_parts(dir: &LessonDir, track: &TrackMeta, warnings: &mut Vec<String>) -> Vec<PathBuf> {
    let mut present = Vec::new();
    for part in &track.parts {
        let Some(file) = PartFile::new(track.key.clone(), part.part) else {
            continue;
        };
        let path = dir.part_path(&file);
        match fs::metadata(&path) {
            Ok(m) if m.len() > 0 => present.push(path),
            Ok(_) => warnings.push(format!("skipped {}: empty file", file.file_name())),
            Err(e) => warnings.push(format!("skipped {}: {e}", file.file_name())),
        }
    }
    present
}

// ---------------------------------------------------------------------------------------
// The pipeline.

/// One part file's branch: `filesrc ! qtdemux`, then (once the demuxer exposes its
/// stream) the decoder chain into `mixer_pad`, requested up front so that the mixer waits
/// for this part from the start. Its elements are named `<prefix>…`.
#[derive(Clone)]
struct Branch {
    pipeline: glib::WeakRef<gst::Pipeline>,
    prefix: String,
    file: PathBuf,
    place: Place,
    mixer_pad: gst::Pad,
    end: gst::ClockTime,
}

struct Graph {
    pipeline: gst::Pipeline,
    branches: Vec<Branch>,
    /// Prefixes of the branches left out after an error.
    retired: Vec<String>,
}

impl Graph {
    fn build(job: &Job) -> Result<Graph, ExportError> {
        let end = clock_time(job.end);
        let pipeline = output_pipeline(job.dir, end)?;
        use_low_priority_threads(&pipeline);
        let compositor = element(&pipeline, "compositor")?;
        let audiomixer = element(&pipeline, "audiomixer")?;
        let audio = job.plan.audio.iter().map(|f| (f, Place::Mix));
        let parts = job
            .plan
            .video
            .iter()
            .map(|(f, place)| (f, *place))
            .chain(audio);
        let mut branches = Vec::new();
        for (n, (file, place)) in parts.enumerate() {
            let mixer = if place == Place::Mix {
                &audiomixer
            } else {
                &compositor
            };
            let branch = Branch {
                pipeline: pipeline.downgrade(),
                prefix: format!("{PREFIX}p{n}_"),
                file: file.clone(),
                place,
                mixer_pad: mixer_pad(mixer, place, if place == Place::Pip { 2 } else { 1 })?,
                end,
            };
            branch.add_source(&pipeline)?;
            branches.push(branch);
        }
        Ok(Graph {
            pipeline,
            branches,
            retired: Vec::new(),
        })
    }

    /// Plays the pipeline to its end, reporting progress; returns the media duration.
    /// Fails on cancel, a stall, or an error outside the part branches.
    fn run(
        &mut self,
        job: &Job,
        progress: &mpsc::Sender<f32>,
        warnings: &mut Vec<String>,
    ) -> Result<Duration, ExportError> {
        let bus = (self.pipeline.bus()).ok_or_else(|| pipeline_error("export", "no bus"))?;
        // A failed start posts its error, handled below like any other.
        let _ = self.pipeline.set_state(gst::State::Playing);
        let types = [
            gst::MessageType::Eos,
            gst::MessageType::Error,
            gst::MessageType::Warning,
        ];
        let mut watch = Watch::new(job.end);
        while !job.cancel.load(Ordering::Relaxed) {
            let msg = bus.timed_pop_filtered(clock_time(POLL), &types);
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Eos(_)) => return Ok(watch.best.max(self.position())),
                Some(gst::MessageView::Error(e)) => self.on_error(e, warnings)?,
                Some(gst::MessageView::Warning(w)) => warn(warnings, w.src(), w.error()),
                _ => {}
            }
            watch.tick(self.position(), bytes_on_disk(job.dir), progress)?;
        }
        Err(ExportError::Cancelled)
    }

    /// Output position: the pipeline's position query, which the muxer answers.
    fn position(&self) -> Duration {
        let position = self.pipeline.query_position::<gst::ClockTime>();
        Duration::from_nanos(position.map_or(0, |p| p.nseconds()))
    }

    /// An error in a part's branch leaves that part out; any other error is fatal.
    fn on_error(
        &mut self,
        e: &gst::message::Error,
        warnings: &mut Vec<String>,
    ) -> Result<(), ExportError> {
        let name = e.src().map(|s| s.name().to_string()).unwrap_or_default();
        let Some(branch) = self.branches.iter().find(|b| name.starts_with(&b.prefix)) else {
            let element = e.src().map(|s| s.path_string().to_string()).unwrap_or(name);
            return Err(pipeline_error(
                &element,
                format!("{} ({:?})", e.error(), e.debug()),
            ));
        };
        if !self.retired.contains(&branch.prefix) {
            // Ends the branch's mixer input: the mixer stops waiting for it.
            let _ = branch.mixer_pad.send_event(gst::event::Eos::new());
            self.retired.push(branch.prefix.clone());
            let file = branch
                .file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            warnings.push(format!("skipped {file}: {}", e.error()));
        }
        // An error while starting fails the pipeline's state change (measured: it stays at
        // READY, pending PLAYING, and its sink never leaves preroll). Ask again; should it
        // still not play, the stall timeout ends the export.
        let _ = self.pipeline.set_state(gst::State::Playing);
        Ok(())
    }
}

/// Progress reports (about once a second) from the output position, and stall
/// detection: the export advances while its position or its files on disk grow (at the
/// end, mp4mux copies the media data behind the header it writes first).
struct Watch {
    end: Duration,
    best: Duration,
    bytes: u64,
    advanced_at: Instant,
    reported_at: Instant,
}

impl Watch {
    fn new(end: Duration) -> Watch {
        let (best, bytes, now) = (Duration::ZERO, 0, Instant::now());
        Watch {
            end,
            best,
            bytes,
            advanced_at: now,
            reported_at: now,
        }
    }

    fn tick(
        &mut self,
        position: Duration,
        bytes: u64,
        progress: &mpsc::Sender<f32>,
    ) -> Result<(), ExportError> {
        if position > self.best || bytes > self.bytes {
            self.advanced_at = Instant::now();
        }
        (self.best, self.bytes) = (self.best.max(position), self.bytes.max(bytes));
        if self.advanced_at.elapsed() > STALL_TIMEOUT {
            let why = format!("no progress for {STALL_TIMEOUT:?} at {:?}", self.best);
            return Err(pipeline_error("export", why));
        }
        if self.reported_at.elapsed() >= PROGRESS_EVERY {
            self.reported_at = Instant::now();
            let _ =
                progress.send((self.best.as_secs_f64() / self.end.as_secs_f64()).min(1.0) as f32);
        }
        Ok(())
    }
}

fn warn(warnings: &mut Vec<String>, src: Option<&gst::Object>, error: glib::Error) {
    let element = src.map(|s| s.name().to_string()).unwrap_or_default();
    let warning = format!("{element}: {error}");
    if warnings.len() < MAX_WARNINGS && !warnings.contains(&warning) {
        warnings.push(warning);
    }
}

/// Size of the export's temporary files so far.
fn bytes_on_disk(dir: &LessonDir) -> u64 {
    let size = |path: PathBuf| fs::metadata(path).map_or(0, |m| m.len());
    size(dir.export_temp_path()) + size(dir.export_scratch_path())
}

fn clock_time(d: Duration) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(d.as_nanos().min(u128::from(u64::MAX)) as u64)
}

fn make(factory: &'static str, name: &str) -> Result<gst::Element, ExportError> {
    gst::ElementFactory::make(factory)
        .name(format!("{PREFIX}{name}"))
        .build()
        .map_err(|_| ExportError::MissingElement(factory.to_string()))
}

fn capsfilter(name: &str, caps: gst::Caps) -> Result<gst::Element, ExportError> {
    let filter = make("capsfilter", name)?;
    filter.set_property("caps", caps);
    Ok(filter)
}

/// Adds `chain` to the pipeline and links it in order.
fn add_chain(pipeline: &gst::Pipeline, chain: &[gst::Element]) -> Result<(), ExportError> {
    pipeline
        .add_many(chain)
        .map_err(|e| pipeline_error("export", e))?;
    gst::Element::link_many(chain).map_err(|e| pipeline_error("export", e))
}

fn path_str(path: &Path) -> Result<&str, ExportError> {
    path.to_str().ok_or_else(|| {
        let msg = format!("path is not UTF-8: {}", path.display());
        ExportError::Io(io::Error::new(io::ErrorKind::InvalidInput, msg))
    })
}

/// Raw video as the compositor outputs it and as every input arrives, scaled and
/// converted beforehand: same format, colorimetry, chroma siting and pixel aspect, so the
/// compositor converts nothing (see the module documentation). Size and rate are added.
const RAW_VIDEO: &str = "video/x-raw,format=I420,colorimetry=bt709,chroma-site=mpeg2,\
                         pixel-aspect-ratio=1/1";

/// The fixed part of the pipeline (see the module documentation), the black and silent
/// backgrounds lasting `end`; part branches join `ex_compositor` and `ex_audiomixer`.
fn output_description(end: gst::ClockTime) -> String {
    let frames = end.nseconds().div_ceil(1_000_000_000 / FPS as u64);
    let chunks = end
        .nseconds()
        .div_ceil(SILENCE_SAMPLES as u64 * 1_000_000_000 / AUDIO_RATE as u64);
    let raw_audio = format!("audio/x-raw,rate={AUDIO_RATE},channels=2");
    // FFmpeg's AAC encoder, else VisualOn's.
    let aac = ["avenc_aac", "voaacenc"]
        .into_iter()
        .find(|f| gst::ElementFactory::find(f).is_some());
    format!(
        "compositor name={PREFIX}compositor background=black max-threads=1 \
           ! {RAW_VIDEO},width={WIDTH},height={HEIGHT},framerate={FPS}/1 \
           ! x264enc name={PREFIX}x264enc speed-preset=veryfast bitrate={VIDEO_KBITS} \
             key-int-max={KEYFRAME_EVERY} threads=1 ! video/x-h264,profile=main \
           ! mp4mux name={PREFIX}mux faststart=true ! filesink name={PREFIX}sink sync=false \
         videotestsrc name={PREFIX}black pattern=black num-buffers={frames} \
           ! {RAW_VIDEO},width=16,height=16,framerate={FPS}/1 ! {PREFIX}compositor. \
         audiomixer name={PREFIX}audiomixer ! {raw_audio} ! audioconvert \
           ! {} bitrate={AUDIO_BITS} ! {PREFIX}mux. \
         audiotestsrc name={PREFIX}silence wave=silence samplesperbuffer={SILENCE_SAMPLES} \
           num-buffers={chunks} ! {raw_audio} ! {PREFIX}audiomixer.",
        aac.unwrap_or("avenc_aac")
    )
}

/// The pipeline with its fixed part, writing to the lesson's temporary files.
fn output_pipeline(dir: &LessonDir, end: gst::ClockTime) -> Result<gst::Pipeline, ExportError> {
    let parsed = gst::parse::launch(&output_description(end)).map_err(|e| match e.kind() {
        Some(gst::ParseError::NoSuchElement) => ExportError::MissingElement(e.to_string()),
        _ => pipeline_error("export", e),
    })?;
    let pipeline = parsed
        .downcast::<gst::Pipeline>()
        .map_err(|_| pipeline_error("export", "not a pipeline"))?;
    let (mux, sink) = (element(&pipeline, "mux")?, element(&pipeline, "sink")?);
    mux.set_property("faststart-file", path_str(&dir.export_scratch_path())?);
    sink.set_property("location", path_str(&dir.export_temp_path())?);
    Ok(pipeline)
}

/// The element named `ex_<name>` of `pipeline`.
fn element(pipeline: &gst::Pipeline, name: &str) -> Result<gst::Element, ExportError> {
    let found = pipeline.by_name(&format!("{PREFIX}{name}"));
    found.ok_or_else(|| pipeline_error(name, "missing from the pipeline"))
}

/// What a decoded part is scaled to (letterboxed): the frame, or the PiP's width with the
/// height of the camera's aspect (at most half the frame).
fn place_caps(place: Place) -> Result<gst::Caps, ExportError> {
    let size = match place {
        Place::Pip => format!("width={PIP_WIDTH},height=[1,{}]", HEIGHT / 2),
        _ => format!("width={WIDTH},height={HEIGHT}"),
    };
    let caps = format!("{RAW_VIDEO},{size}").parse();
    caps.map_err(|e| pipeline_error("capsfilter", e))
}

/// A new sink pad of `mixer`; on the compositor, at `zorder` and placed for `place`.
fn mixer_pad(mixer: &gst::Element, place: Place, zorder: u32) -> Result<gst::Pad, ExportError> {
    let pad = mixer.request_pad_simple("sink_%u");
    let pad = pad.ok_or_else(|| pipeline_error(&mixer.name(), "no sink pad"))?;
    if place != Place::Mix {
        pad.set_property("zorder", zorder);
        // The PiP's height is set once the camera's caps are known (`follow_pip_height`).
        let (x, y) = if place == Place::Pip {
            pip_position(PIP_WIDTH * 9 / 16)
        } else {
            (0, 0)
        };
        pad.set_property("xpos", x);
        pad.set_property("ypos", y);
    }
    Ok(pad)
}

/// Top-left corner of a PiP picture of height `height`: bottom-right, inside the margin.
fn pip_position(height: i32) -> (i32, i32) {
    (WIDTH - PIP_WIDTH - PIP_MARGIN, HEIGHT - height - PIP_MARGIN)
}

/// Moves the PiP picture whenever the camera's scaled caps (so its height) change.
fn follow_pip_height(scaled: &gst::Pad, mixer_pad: &gst::Pad) {
    let mixer_pad = mixer_pad.clone();
    scaled.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view())
            && let Some(height) = c.caps().structure(0).and_then(|s| s.get("height").ok())
        {
            mixer_pad.set_property("ypos", pip_position(height).1);
        }
        gst::PadProbeReturn::Ok
    });
}

// ---------------------------------------------------------------------------------------
// Part branches.

impl Branch {
    fn add_source(&self, pipeline: &gst::Pipeline) -> Result<(), ExportError> {
        let part = self.prefix.trim_start_matches(PREFIX);
        let src = make("filesrc", &format!("{part}src"))?;
        src.set_property("location", path_str(&self.file)?);
        let demux = make("qtdemux", &format!("{part}demux"))?;
        add_chain(pipeline, &[src, demux.clone()])?;
        let branch = self.clone();
        demux.connect_pad_added(move |_, pad| branch.link_stream(pad));
        Ok(())
    }

    /// Decodes the demuxer's stream into the mixer pad. A stream that cannot be linked
    /// stays unlinked: the demuxer then fails (not-linked) and the part is left out.
    fn link_stream(&self, demux_pad: &gst::Pad) {
        let Some(pipeline) = self.pipeline.upgrade() else {
            return;
        };
        // One stream per part file; a second one is ignored.
        let caps = demux_pad
            .current_caps()
            .filter(|_| !self.mixer_pad.is_linked());
        let media = caps.and_then(|c| Some(c.structure(0)?.name().to_string()));
        let Some(chain) = media.and_then(|m| self.decoder_chain(&m).ok()) else {
            return;
        };
        let input = chain.first().and_then(|e| e.static_pad("sink"));
        let (Some(input), Some(output)) = (input, chain.last().and_then(|e| e.static_pad("src")))
        else {
            return;
        };
        if add_chain(&pipeline, &chain).is_err() {
            return;
        }
        keep_lesson_time(demux_pad, self.end);
        if self.place == Place::Pip {
            follow_pip_height(&output, &self.mixer_pad);
        }
        if output.link(&self.mixer_pad).is_ok() && demux_pad.link(&input).is_ok() {
            for element in &chain {
                let _ = element.sync_state_with_parent();
            }
        }
    }

    /// Decoder and converters for a stream of type `media` (never empty), one thread
    /// each; video leaves scaled, letterboxed and converted to [`place_caps`].
    fn decoder_chain(&self, media: &str) -> Result<Vec<gst::Element>, ExportError> {
        let part = self.prefix.trim_start_matches(PREFIX);
        let named = |factory: &'static str| make(factory, &format!("{part}{factory}"));
        let (mut chain, threads) = match media {
            "video/x-h264" => (
                vec![named("h264parse")?, named("avdec_h264")?],
                "max-threads",
            ),
            "video/x-vp8" => (vec![named("vp8dec")?], "threads"),
            "audio/x-opus" => {
                return Ok(vec![
                    named("opusdec")?,
                    named("audioconvert")?,
                    named("audioresample")?,
                ]);
            }
            other => {
                return Err(pipeline_error(
                    &self.prefix,
                    format!("unexpected stream {other}"),
                ));
            }
        };
        chain.iter().for_each(|e| {
            if e.has_property(threads) {
                e.set_property_from_str(threads, "1")
            }
        });
        let scaler = named("videoconvertscale")?;
        scaler.set_property("add-borders", true);
        scaler.set_property("n-threads", 1u32);
        chain.push(scaler);
        chain.push(capsfilter(&format!("{part}caps"), place_caps(self.place)?)?);
        Ok(chain)
    }
}

/// Puts the demuxed samples at their lesson time and cuts them at `end` (see the module
/// documentation): the TIME segment is rebased to start at 0, and buffers decoded at or
/// after `end` are dropped (by DTS, so the decoder never misses a reference).
fn keep_lesson_time(demux_pad: &gst::Pad, end: gst::ClockTime) {
    let types = gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM;
    demux_pad.add_probe(types, move |_, info| {
        if info
            .buffer()
            .and_then(|b| b.dts_or_pts())
            .is_some_and(|t| t >= end)
        {
            return gst::PadProbeReturn::Drop;
        }
        if let Some(rebased) = info.event().and_then(rebase_segment) {
            info.data = Some(gst::PadProbeData::Event(rebased));
        }
        gst::PadProbeReturn::Ok
    });
}

/// A TIME segment event starting at 0 with stream time = PTS; `None` for other events.
fn rebase_segment(event: &gst::Event) -> Option<gst::Event> {
    let gst::EventView::Segment(s) = event.view() else {
        return None;
    };
    let segment = s.segment().downcast_ref::<gst::ClockTime>()?;
    let start = segment.start().unwrap_or_default();
    let mut rebased = segment.clone();
    rebased.set_start(gst::ClockTime::ZERO);
    rebased.set_time(segment.time().map(|t| t.saturating_sub(start)));
    rebased.set_position(gst::ClockTime::ZERO);
    Some(
        gst::event::Segment::builder(&rebased)
            .seqnum(event.seqnum())
            .build(),
    )
}
