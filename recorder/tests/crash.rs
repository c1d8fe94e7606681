//! Crash safety: what is in the file survives the process dying at any moment.
//!
//! `kill_9_keeps_everything_up_to_the_last_complete_chunk` runs this test binary again as a child
//! (`recording_child_for_kill_9`, which does nothing unless asked to through the
//! environment), lets it record, waits until the child reports how much media is on disk,
//! SIGKILLs it mid-recording, and decodes what is left.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use classcast_recorder::{Codec, TrackRecorder};
use common::*;

const CHILD_ENV: &str = "CLASSCAST_RECORDER_KILL9_FILE";
const READY: &str = "RECORDED-UNTIL-MS";
/// Media pushed before the crash; the part after the last complete chunk is lost.
const PUSHED_SECONDS: u32 = 10;
/// The bar of the brief: at least this much must be readable after the crash.
const MUST_SURVIVE: Duration = Duration::from_secs(4);
const FRAME: Duration = Duration::from_millis(34);
/// What the recorder must report as on disk (`written_until`) before the crash. With 10 s
/// pushed the muxer hands over chunks up to 8 s (it holds the last chunk until it sees
/// what follows); `written_until` counts a chunk only once its write has returned, so it
/// may report 7 s while 7 to 8 s is still in write().
const COMMITTED: Duration = Duration::from_secs(6);

/// Records `PUSHED_SECONDS` of H.264 into `path` and waits until `on_disk` is in the file.
fn record_without_finishing(path: &Path, gop: u32, on_disk: Duration) -> TrackRecorder {
    let packets = rtp_packets(Codec::H264, PUSHED_SECONDS, gop);
    let recorder =
        TrackRecorder::start(spec(path.to_path_buf(), Codec::H264), 8192).expect("recorder starts");
    let sender = recorder.sender();
    for p in packets {
        sender.try_push(p).expect("queue deep enough");
    }
    let written = recorder.wait_written(on_disk, Duration::from_secs(30));
    assert!(
        written,
        "{on_disk:?} written before the crash: {:?} {:?}",
        recorder.stats(),
        recorder.poll_fault()
    );
    recorder
}

/// The child side of `kill_9_keeps_everything_up_to_the_last_complete_chunk`; a no-op in a normal run.
#[test]
fn recording_child_for_kill_9() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let recorder = record_without_finishing(Path::new(&path), 30, COMMITTED);
    let until = recorder.stats().written_until.unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY} {}", until.as_millis()).expect("parent reads stdout");
    out.flush().expect("parent reads stdout");
    // Keep recording state alive until the parent kills this process.
    loop {
        std::thread::park();
    }
}

fn spawn_child(path: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "recording_child_for_kill_9",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("child test process starts")
}

/// Waits (at most a minute) for the child to report how much media is on disk. libtest
/// may print the report in the middle of its own "test … " line.
fn wait_ready(child: &mut std::process::Child) -> Option<Duration> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let report = line
                .split(READY)
                .nth(1)
                .and_then(|r| r.split_whitespace().next()?.parse().ok());
            if let Some(ms) = report {
                let _ = tx.send(Duration::from_millis(ms));
                return;
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).ok()
}

/// Everything `written_until` reported before the crash is decodable (the last complete
/// chunk), and that is at least `MUST_SURVIVE`.
fn assert_survives(path: &Path, written: Duration) {
    let decoded = decode(path, Codec::H264);
    eprintln!("after the crash: {written:?} were on disk, decoded {decoded:?}");
    let readable = decoded.last_end.unwrap_or_default();
    assert!(
        readable + FRAME >= written,
        "{written:?} reported on disk, only {readable:?} readable"
    );
    assert!(
        readable >= MUST_SURVIVE,
        "only {readable:?} readable: {decoded:?}"
    );
}

#[test]
fn kill_9_keeps_everything_up_to_the_last_complete_chunk() {
    let path: PathBuf = scratch("kill9").join("main.camera.part1.mp4");
    let mut child = spawn_child(&path);
    let written = wait_ready(&mut child);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("child reaped");
    let written = written.expect("the child reported media on disk within a minute");
    assert!(!status.success(), "the child was killed, not finished");
    assert_survives(&path, written);
}

#[test]
fn dropping_without_finish_keeps_complete_fragments() {
    let path = scratch("drop").join("main.camera.part1.mp4");
    let recorder = record_without_finishing(&path, 30, COMMITTED);
    let written = recorder.stats().written_until.expect("media on disk");
    drop(recorder);
    assert_survives(&path, written);
}

#[test]
fn fragments_are_written_without_keyframes() {
    // One keyframe at the start, none after: WebRTC publishers key only on request.
    let path = scratch("long-gop").join("main.camera.part1.mp4");
    let recorder = record_without_finishing(&path, 10_000, COMMITTED);
    let written = recorder.stats().written_until.expect("media on disk");
    drop(recorder);
    assert_survives(&path, written);
}

#[test]
fn a_part_whose_pipeline_fails_reports_what_it_kept() {
    // A failing element (isofmp4mux panicking, a disk error) posts an error: the same path.
    let path = scratch("fails").join("main.camera.part1.mp4");
    let recorder = record_without_finishing(&path, 30, COMMITTED);
    recorder.inject_fault("the muxer failed (test)");
    let failure = recorder.finish().expect_err("the part failed");
    eprintln!("finish: {failure}");
    assert!(failure.to_string().contains("the muxer failed (test)"), "the reason: {failure}");
    let kept = failure.kept;
    assert!(kept.duration >= COMMITTED, "kept {kept:?}");
    assert_eq!(kept.bytes, std::fs::metadata(&path).expect("the part file").len());
    assert_eq!(Some(kept.duration), kept.stats.written_until, "the part starts at lesson time 0");
    assert_survives(&path, kept.duration);
}
