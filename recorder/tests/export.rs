//! The composite export of a lesson, from real part files recorded by `TrackRecorder` out
//! of GStreamer-made RTP: the output plays (H.264 1280x720 + AAC), lasts the lesson, puts
//! every part at its lesson time, survives missing and truncated parts, can be cancelled,
//! and renders on threads at nice 19 only.
//!
//! `streaming_threads_run_at_nice_19` renders in a child process (this test binary run
//! again, `export_child_for_nice`, a no-op unless asked through the environment) so that
//! every thread busy during the render belongs to the export, and samples
//! `/proc/self/task/*/stat` meanwhile.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use classcast_recorder::export::{ExportError, ExportSummary, render_export};
use classcast_recorder::layout::{LessonDir, LessonMeta, PartFile, PartMeta};
use classcast_recorder::{Codec, RtpPacketIn, TrackRecorder};
use common::*;
use gst_pbutils::prelude::*;

const TOLERANCE: Duration = Duration::from_secs(1);
const CHILD_ENV: &str = "CLASSCAST_EXPORT_NICE_DIR";

/// A lesson folder and its metadata, filled by [`Lesson::record`].
struct Lesson {
    root: std::path::PathBuf,
    dir: LessonDir,
    meta: LessonMeta,
}

fn new_lesson(name: &str) -> Lesson {
    let root = scratch(&format!("export-{name}"));
    let dir = LessonDir::new(&root, "c1".parse().unwrap(), "l1".parse().unwrap());
    dir.create().expect("lesson folder");
    let meta = LessonMeta::new(
        dir.class_id().clone(),
        dir.lesson_id().clone(),
        1_700_000_000_000,
    );
    Lesson { root, dir, meta }
}

impl Lesson {
    /// Records `packets`, shifted to lesson time `start`, as part `part` of `key`.
    fn record(
        &mut self,
        key: &str,
        part: u32,
        codec: Codec,
        start: Duration,
        packets: &[RtpPacketIn],
    ) {
        let path = self.part(key, part);
        let recorder = TrackRecorder::start(spec(path, codec), 1 << 14).expect("recorder starts");
        let sender = recorder.sender();
        for p in packets {
            let arrival = p.arrival + start;
            sender
                .try_push(RtpPacketIn {
                    arrival,
                    ..p.clone()
                })
                .expect("queue deep enough");
        }
        let summary = recorder.finish().expect("part finished");
        let track = self.meta.track_mut(&key.parse().unwrap(), codec.as_str());
        track.parts.push(PartMeta {
            part,
            start_ms: start.as_millis() as u64,
            duration_ms: Some(summary.duration.as_millis() as u64),
            bytes: Some(summary.bytes),
        });
    }

    fn part(&self, key: &str, part: u32) -> std::path::PathBuf {
        self.dir
            .part_path(&PartFile::new(key.parse().unwrap(), part).unwrap())
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// 8 s: camera (ball) 0-8 s, white screen 3-8 s, main mic 0-8 s, classroom mic 2-6 s.
fn full_lesson(name: &str) -> Lesson {
    let mut lesson = new_lesson(name);
    let screen = rtp_packets_of_pattern(Codec::H264, 5, 30, "white");
    lesson.record(
        "main/camera",
        1,
        Codec::H264,
        secs(0),
        &rtp_packets(Codec::H264, 8, 30),
    );
    lesson.record("main/screen", 1, Codec::H264, secs(3), &screen);
    lesson.record(
        "main/mic",
        1,
        Codec::Opus,
        secs(0),
        &rtp_packets(Codec::Opus, 8, 0),
    );
    lesson.record(
        "r1/mic",
        1,
        Codec::Opus,
        secs(2),
        &rtp_packets(Codec::Opus, 4, 0),
    );
    lesson
}

fn export(lesson: &Lesson, duration: Duration) -> ExportSummary {
    let (cancel, mut reports) = (AtomicBool::new(false), Vec::new());
    let summary = render_export(
        &lesson.dir,
        &lesson.meta,
        duration,
        &mut |p| reports.push(p),
        &cancel,
    )
    .expect("export renders");
    eprintln!(
        "render: {:?} of media in {:?} = {:.1}x real time, {} bytes, progress {reports:?}, warnings {:?}",
        summary.media_duration, summary.wall_time, summary.speed, summary.bytes, summary.warnings
    );
    assert_eq!(reports.first(), Some(&0.0), "progress starts at 0");
    assert_eq!(reports.last(), Some(&1.0), "progress ends at 1");
    assert!(
        reports.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back"
    );
    assert!(reports.iter().all(|p| (0.0..=1.0).contains(p)));
    assert_eq!(summary.path, lesson.dir.export_path());
    assert_eq!(
        summary.bytes,
        std::fs::metadata(&summary.path).unwrap().len()
    );
    assert_no_temporaries(&lesson.dir);
    summary
}

fn assert_no_temporaries(dir: &LessonDir) {
    assert!(!dir.export_temp_path().exists(), "temporary file removed");
    assert!(
        !dir.export_scratch_path().exists(),
        "faststart scratch file removed"
    );
}

/// Streams (caps) and duration of a file, as a player sees them.
fn probe(path: &Path) -> (Vec<gst::Caps>, Duration) {
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(15)).unwrap();
    let uri = gst::glib::filename_to_uri(path, None).unwrap();
    let info = discoverer
        .discover_uri(&uri)
        .expect("export is discoverable");
    let caps = info.stream_list().iter().filter_map(|s| s.caps()).collect();
    (
        caps,
        Duration::from_nanos(info.duration().expect("a duration").nseconds()),
    )
}

/// The export plays: H.264 1280x720 and AAC, as long as the lesson (± 1 s).
fn assert_plays(path: &Path, lesson_duration: Duration) {
    let (caps, duration) = probe(path);
    let names: Vec<String> = caps.iter().map(caps_name).collect();
    assert_eq!(names, ["video/x-h264", "audio/mpeg"], "streams {caps:?}");
    let video = caps[0].structure(0).unwrap();
    assert_eq!(
        (video.get::<i32>("width"), video.get::<i32>("height")),
        (Ok(1280), Ok(720))
    );
    assert_eq!(
        caps[1].structure(0).unwrap().get::<i32>("mpegversion"),
        Ok(4),
        "AAC"
    );
    assert!(
        duration.abs_diff(lesson_duration) <= TOLERANCE,
        "export lasts {duration:?}, lesson {lesson_duration:?}"
    );
}

/// Mean luma of a region `(x, y, w, h)` in the decoded frame shown at `at`.
fn luma_at(path: &Path, at: Duration, (x, y, w, h): (usize, usize, usize, usize)) -> f64 {
    let desc = format!(
        "filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=GRAY8 ! appsink name=out sync=false",
        path.display()
    );
    let mut mean = None;
    let error = run_to_end(&desc, |b| {
        let (Some(pts), Some(d)) = (b.pts(), b.duration()) else {
            return;
        };
        let at = gst::ClockTime::from_nseconds(at.as_nanos() as u64);
        if mean.is_none() && pts <= at && at < pts + d {
            let map = b.map_readable().unwrap();
            let sum: u64 = (y..y + h)
                .flat_map(|row| &map[row * 1280 + x..row * 1280 + x + w])
                .map(|&v| u64::from(v))
                .sum();
            mean = Some(sum as f64 / (w * h) as f64);
        }
    });
    assert_eq!(error, None);
    mean.expect("a frame at that time")
}

#[test]
fn lesson_is_composited_at_lesson_time() {
    let lesson = full_lesson("full");
    let summary = export(&lesson, secs(8));
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    assert!(summary.media_duration.abs_diff(secs(8)) <= TOLERANCE);
    assert_plays(&summary.path, secs(8));
    let center = (440, 160, 400, 400);
    let pip = (970, 490, 120, 200);
    let before_screen = luma_at(&summary.path, Duration::from_millis(1500), center);
    let with_screen = luma_at(&summary.path, secs(6), center);
    let pip_over_screen = luma_at(&summary.path, secs(6), pip);
    eprintln!(
        "luma: centre at 1.5 s {before_screen:.0}, at 6 s {with_screen:.0}, PiP at 6 s {pip_over_screen:.0}"
    );
    assert!(
        before_screen < 40.0,
        "black before the screen starts at 3 s"
    );
    assert!(
        with_screen > 200.0,
        "the white screen fills the frame once started"
    );
    assert!(
        pip_over_screen < 100.0,
        "the camera (black ball pattern) is drawn over the screen"
    );
}

#[test]
fn camera_and_mic_only() {
    let mut lesson = new_lesson("camera-only");
    lesson.record(
        "main/camera",
        1,
        Codec::Vp8,
        secs(0),
        &rtp_packets(Codec::Vp8, 6, 30),
    );
    lesson.record(
        "main/mic",
        1,
        Codec::Opus,
        secs(0),
        &rtp_packets(Codec::Opus, 6, 0),
    );
    let summary = export(&lesson, secs(6));
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    assert_plays(&summary.path, secs(6));
}

#[test]
fn truncated_and_missing_parts_are_skipped() {
    let mut lesson = new_lesson("truncated");
    let (camera, mic) = (
        rtp_packets(Codec::H264, 4, 30),
        rtp_packets(Codec::Opus, 8, 0),
    );
    lesson.record("main/camera", 1, Codec::H264, secs(0), &camera);
    lesson.record("main/camera", 2, Codec::H264, secs(4), &camera);
    lesson.record("main/mic", 1, Codec::Opus, secs(0), &mic);
    lesson.record("r1/mic", 1, Codec::Opus, secs(0), &mic);
    // A crash mid-fragment: the last part ends inside its media.
    truncate(&lesson.part("main/camera", 2), 0.6);
    // Cut inside the header: unreadable.
    truncate(&lesson.part("main/mic", 1), 0.01);
    truncate(&lesson.part("r1/mic", 1), 0.02);
    // Listed in lesson.json, never written.
    let missing = PartMeta {
        part: 3,
        start_ms: 7000,
        duration_ms: None,
        bytes: None,
    };
    lesson.meta.tracks[0].parts.push(missing);
    let summary = export(&lesson, secs(8));
    let warnings = summary.warnings.join("\n");
    for skipped in [
        "main.camera.part3.mp4",
        "main.mic.part1.mp4",
        "r1.mic.part1.mp4",
    ] {
        assert!(warnings.contains(skipped), "{skipped} named: {warnings}");
    }
    assert!(
        !warnings.contains("main.camera.part2.mp4"),
        "truncated part kept: {warnings}"
    );
    assert_plays(&summary.path, secs(8));
}

fn truncate(path: &Path, keep: f64) {
    let len = std::fs::metadata(path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len((len as f64 * keep) as u64).unwrap();
}

#[test]
fn cancel_stops_and_leaves_nothing() {
    let lesson = full_lesson("cancel");
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let result = render_export(
        &lesson.dir,
        &lesson.meta,
        secs(8),
        &mut |_| cancel.store(true, Ordering::Relaxed),
        &cancel,
    );
    assert!(matches!(result, Err(ExportError::Cancelled)), "{result:?}");
    assert!(
        started.elapsed() < secs(5),
        "cancelled promptly: {:?}",
        started.elapsed()
    );
    assert!(!lesson.dir.export_path().exists());
    assert_no_temporaries(&lesson.dir);
}

#[test]
fn a_lesson_without_media_is_refused() {
    let lesson = new_lesson("empty");
    let cancel = AtomicBool::new(false);
    let result = render_export(&lesson.dir, &lesson.meta, secs(8), &mut |_| {}, &cancel);
    assert!(matches!(result, Err(ExportError::NoTracks)), "{result:?}");
    let lesson = full_lesson("zero");
    let result = render_export(
        &lesson.dir,
        &lesson.meta,
        Duration::ZERO,
        &mut |_| {},
        &cancel,
    );
    assert!(
        matches!(result, Err(ExportError::EmptyLesson)),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Niceness, in a child process.

/// One line of `/proc/self/task/<tid>/stat`: name, nice, CPU ticks (user + system).
#[derive(Debug, Clone, PartialEq)]
struct TaskStat {
    comm: String,
    nice: i64,
    ticks: u64,
}

fn task_stats() -> HashMap<u32, TaskStat> {
    let mut stats = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "tid (comm) state ppid …": comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head
            .split_once(" (")
            .map(|(_, c)| c.to_string())
            .unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields after comm, 0-based: utime 11, stime 12, nice 16.
        let num = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<i64>().ok())
                .unwrap_or(-99)
        };
        stats.insert(
            tid,
            TaskStat {
                comm,
                nice: num(16),
                ticks: (num(11) + num(12)) as u64,
            },
        );
    }
    stats
}

fn this_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_string_lossy().parse().unwrap()
}

fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Samples every thread of the process until `done`; the latest sample of each thread.
fn sample_tasks(done: &AtomicBool, seen: &Mutex<HashMap<u32, TaskStat>>) {
    while !done.load(Ordering::Relaxed) {
        let now = task_stats();
        seen.lock().unwrap().extend(now);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child side of `streaming_threads_run_at_nice_19`; a no-op in a normal run.
#[test]
fn export_child_for_nice() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    // As in the server, where recorders ran first: GLib's shared pool (GStreamer's default
    // for streaming threads) is created by a thread at nice 0 and keeps its settings.
    assert_eq!(
        run_to_end("videotestsrc num-buffers=1 ! appsink name=out", |_| {}),
        None
    );
    let dir = LessonDir::new(root, "c1".parse().unwrap(), "l1".parse().unwrap());
    let meta = dir
        .read_metadata()
        .expect("lesson.json written by the parent");
    let (done, seen, cancel) = (
        AtomicBool::new(false),
        Mutex::new(HashMap::new()),
        AtomicBool::new(false),
    );
    let before = task_stats();
    let (cpu_before, caller) = (process_cpu(), this_tid());
    let summary = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            sample_tasks(&done, &seen);
            this_tid()
        });
        let summary = render_export(&dir, &meta, secs(8), &mut |_| {}, &cancel);
        done.store(true, Ordering::Relaxed);
        (summary, sampler.join().unwrap())
    });
    let ((summary, sampler), cpu) = (summary, process_cpu() - cpu_before);
    let summary = summary.expect("export renders");
    println!(
        "render: {:?} of media in {:?} = {:.1}x real time; process CPU {cpu:?} = {:.0}% of one core while rendering",
        summary.media_duration,
        summary.wall_time,
        summary.speed,
        100.0 * cpu.as_secs_f64() / summary.wall_time.as_secs_f64()
    );
    let mut busy: Vec<(u32, TaskStat)> = seen
        .into_inner()
        .unwrap()
        .into_iter()
        .filter(|(tid, t)| {
            *tid != caller && *tid != sampler && before.get(tid).is_none_or(|b| b.ticks < t.ticks)
        })
        .collect();
    busy.sort_by_key(|(_, t)| std::cmp::Reverse(t.ticks));
    for (tid, t) in &busy {
        println!(
            "thread {tid:>7} {:<16} nice {:>3} cpu {:>4} ticks",
            t.comm, t.nice, t.ticks
        );
    }
    assert!(busy.len() >= 5, "the export's threads were seen: {busy:?}");
    let not_nice: Vec<_> = busy.iter().filter(|(_, t)| t.nice != 19).collect();
    assert!(
        not_nice.is_empty(),
        "threads busy during the export not at nice 19: {not_nice:?}"
    );
}

#[test]
fn streaming_threads_run_at_nice_19() {
    let lesson = full_lesson("nice");
    lesson.dir.write_metadata(&lesson.meta).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "export_child_for_nice",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &lesson.root)
        .output()
        .expect("child test process runs");
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the child's checks pass");
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
}
