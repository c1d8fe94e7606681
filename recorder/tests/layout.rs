//! The on-disk layout: names that could escape the root are refused, part names round
//! trip, `lesson.json` round trips and is replaced atomically.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use classcast_recorder::layout::*;
use common::scratch;

fn lesson(root: &Path) -> LessonDir {
    LessonDir::new(root, "c0123abcd".parse().unwrap(), "l42".parse().unwrap())
}

fn meta(tracks: usize) -> LessonMeta {
    let mut m = LessonMeta::new(
        "c0123abcd".parse().unwrap(),
        "l42".parse().unwrap(),
        1_700_000_000_000,
    );
    for i in 0..tracks {
        let key: TrackKey = format!("r{i}/camera").parse().unwrap();
        let t = m.track_mut(&key, "h264");
        t.parts.push(PartMeta {
            part: 1,
            start_ms: 0,
            duration_ms: Some(1000 * i as u64),
            bytes: Some(7),
        });
    }
    m
}

#[test]
fn ids_refuse_anything_but_lowercase_alphanumerics() {
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a\\b",
        "A",
        "a.b",
        "a b",
        "%2e%2e",
        "a\0",
        "é",
        &"a".repeat(65),
    ] {
        assert!(bad.parse::<ClassId>().is_err(), "class id {bad:?}");
        assert!(bad.parse::<LessonId>().is_err(), "lesson id {bad:?}");
    }
    assert!("c0123abcd".parse::<ClassId>().is_ok());
    assert!("a".repeat(64).parse::<LessonId>().is_ok());
}

#[test]
fn track_keys_refuse_traversal_and_unknown_sources() {
    for bad in [
        "",
        "main",
        "main/",
        "/camera",
        "../camera",
        "main/../camera",
        "main/camera/..",
        "main/camera/x",
        "main.camera",
        "main/video",
        "Main/camera",
        "..//camera",
        "main/mic\0",
    ] {
        assert!(bad.parse::<TrackKey>().is_err(), "key {bad:?}");
    }
    let key: TrackKey = "r1234/mic".parse().unwrap();
    assert_eq!(
        (key.owner(), key.source(), key.is_audio()),
        ("r1234", "mic", true)
    );
    assert_eq!(key.file_stem(), "r1234.mic");
}

#[test]
fn part_file_names_round_trip_and_refuse_lookalikes() {
    let part = PartFile::new("main/camera".parse().unwrap(), 3).unwrap();
    assert_eq!(part.file_name(), "main.camera.part3.mp4");
    assert_eq!(PartFile::parse("main.camera.part3.mp4").unwrap(), part);
    assert!(
        PartFile::new("main/camera".parse().unwrap(), 0).is_none(),
        "parts count from 1"
    );
    for bad in [
        "main.camera.part0.mp4",
        "main.camera.part03.mp4",
        "main.camera.part.mp4",
        "main.camera.part1.mp4.tmp",
        "main.camera.part-1.mp4",
        "a.b.camera.part1.mp4",
        "...part1.mp4",
        "main.video.part1.mp4",
        "main.camera.part1.mkv",
        "lesson.json",
        "main.camera.part99999999999.mp4",
    ] {
        assert!(PartFile::parse(bad).is_err(), "part name {bad:?}");
    }
}

#[test]
fn paths_stay_under_the_root() {
    let dir = lesson(Path::new("/rec"));
    assert_eq!(dir.path(), Path::new("/rec/c0123abcd/l42"));
    let part = PartFile::new("r7/screen".parse().unwrap(), 2).unwrap();
    assert_eq!(
        dir.part_path(&part),
        Path::new("/rec/c0123abcd/l42/r7.screen.part2.mp4")
    );
    assert_eq!(
        dir.metadata_path(),
        Path::new("/rec/c0123abcd/l42/lesson.json")
    );
}

#[test]
fn metadata_round_trips() {
    let root = scratch("layout-roundtrip");
    let dir = lesson(&root);
    dir.create().unwrap();
    let mut m = meta(2);
    m.state = LessonState::Interrupted;
    m.faults.push(Fault {
        at_ms: 1500,
        track: Some("r0/camera".parse().unwrap()),
        message: "boom".into(),
    });
    dir.write_metadata(&m).unwrap();
    assert_eq!(dir.read_metadata().unwrap(), m);
    let json = std::fs::read_to_string(dir.metadata_path()).unwrap();
    assert!(
        json.contains("\"state\": \"interrupted\"") && json.contains("\"key\": \"r0/camera\""),
        "{json}"
    );
}

#[test]
fn tampered_metadata_is_refused() {
    let root = scratch("layout-tampered");
    let dir = lesson(&root);
    dir.create().unwrap();
    let good = serde_json::to_value(meta(1)).unwrap();
    let cases: [(&str, serde_json::Value); 5] = [
        ("key", serde_json::json!("../../etc/camera")),
        ("lesson_id", serde_json::json!("l43")),
        ("class_id", serde_json::json!("..")),
        ("version", serde_json::json!(2)),
        ("state", serde_json::json!("paused")),
    ];
    for (field, value) in cases {
        let mut v = good.clone();
        if field == "key" {
            v["tracks"][0]["key"] = value;
        } else {
            v[field] = value;
        }
        std::fs::write(dir.metadata_path(), serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(dir.read_metadata().is_err(), "{field} tampered");
    }
}

#[test]
fn metadata_is_replaced_atomically() {
    let root = scratch("layout-atomic");
    let dir = Arc::new(lesson(&root));
    dir.create().unwrap();
    let (small, large) = (meta(1), meta(200));
    dir.write_metadata(&small).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (dir, done, small, large) = (
            Arc::clone(&dir),
            Arc::clone(&done),
            small.clone(),
            large.clone(),
        );
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let m = dir.read_metadata().expect("always a whole, valid file");
                assert!(m == small || m == large, "a mix of two versions");
                reads += 1;
            }
            reads
        })
    };
    for i in 0..200 {
        dir.write_metadata(if i % 2 == 0 { &large } else { &small })
            .unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().expect("reader saw only whole files") > 0);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers,
        ["lesson.json"],
        "no temporary file is left behind"
    );
}

#[test]
fn listings_skip_foreign_names() {
    let root = scratch("layout-list");
    let dir = lesson(&root);
    dir.create().unwrap();
    for name in [
        "main.camera.part2.mp4",
        "main.camera.part1.mp4",
        "r1.mic.part1.mp4",
        "notes.txt",
        "x.part1.mp4",
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    std::fs::create_dir_all(root.join("Not-An-Id")).unwrap();
    std::fs::create_dir_all(root.join("c0123abcd").join("l7")).unwrap();
    let parts: Vec<String> = dir
        .list_parts()
        .unwrap()
        .iter()
        .map(PartFile::file_name)
        .collect();
    assert_eq!(
        parts,
        [
            "main.camera.part1.mp4",
            "main.camera.part2.mp4",
            "r1.mic.part1.mp4"
        ]
    );
    assert_eq!(
        list_classes(&root).unwrap(),
        ["c0123abcd".parse::<ClassId>().unwrap()]
    );
    let lessons: Vec<String> = list_lessons(&root, dir.class_id())
        .unwrap()
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert_eq!(lessons, ["l42", "l7"]);
    assert!(
        list_lessons(&root, &"nothere".parse().unwrap())
            .unwrap()
            .is_empty()
    );
}
