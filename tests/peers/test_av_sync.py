"""A/V sync of recordings.

An aiortc main classroom publishes camera + board (H.264) and mic (Opus) over WHIP, all
three made from one clock (`SyncSignals`): every second both videos flash white for
100 ms and the mic beeps 1 kHz for 100 ms, at the same instant. After ~20 s the WHIP
session is deleted, which ends the lesson; the part files are found through the catalog
and `lesson.json`, decoded with PyAV, and the flash and beep onsets compared on the
files' own timeline (lesson time: `tfdt`, which PyAV/ffmpeg report as pts;
`test_part_files_are_on_lesson_time` checks that against the boxes).

Two lessons:
- `no-device-latency`: every track reaches the sender as soon as it is captured (the mic
  once its 20 ms frame is complete), so arrival order alone would already look in sync;
- `device-latency`: camera 30 ms, board 150 ms, mic 60 ms from capture to the sender,
  like real devices (a board camera behind a capture card, audio driver buffers). Only
  the sender reports can tell the server when each frame was captured, so this one
  checks that the recorder really aligns tracks by SR, not by arrival.

Thresholds: mic vs camera within 40 ms (|median| and max), board vs camera within 80 ms,
at least 12 matched events each; the lesson must finish cleanly (one part per track, no
fault). Figures are printed and written to `out/av_sync.json` (per lesson: offsets, each
track's recorded-minus-captured time per event, when each sender's SRs went out).

aiortc's own sender reports map RTP time to *send* time, not capture time; they are
fixed here (`CaptureTimeSenderReports`) so that the server is measured, not aiortc.
`AVSYNC_AIORTC_SR=raw` keeps aiortc's reports, for diagnosis.
"""

import asyncio
import bisect
import json
import math
import os
import statistics
import struct
import time
from array import array
from pathlib import Path

import av
import pytest

from peerlib import BeepAudioTrack, CaptureTimeSenderReports, FlashVideoTrack, SyncSignals, whip_publish

PUBLISH_S = 21  # after the connection is up: ~20 flash/beep events
MIN_EVENTS = 12
AV_LIMIT_S = 0.040  # mic vs camera
VV_LIMIT_S = 0.080  # board vs camera
PAIR_WINDOW_S = 0.5
RAW_SR = os.environ.get("AVSYNC_AIORTC_SR", "") == "raw"
OUT = Path(__file__).resolve().parent / "out"
SOURCES = ("camera", "board", "mic")
# Capture-to-sender latency of each track, per lesson.
SCENARIOS = {
    "no-device-latency": {"camera": 0.0, "board": 0.0, "mic": 0.0},
    "device-latency": {"camera": 0.030, "board": 0.150, "mic": 0.060},
}


# ---------------------------------------------------------------- publishing

async def publish_lesson(server, cls, latency: dict) -> dict:
    signals = SyncSignals()
    tracks = {"camera": FlashVideoTrack(signals, latency_s=latency["camera"]),
              "board": FlashVideoTrack(signals, latency_s=latency["board"]),
              "mic": BeepAudioTrack(signals, latency_s=latency["mic"])}
    reports: dict[str, CaptureTimeSenderReports] = {}

    def prepare(pc):
        by_track = {id(t): name for name, t in tracks.items()}
        for tr in pc.getTransceivers():
            track = tr.sender.track
            reports[by_track[id(track)]] = CaptureTimeSenderReports(tr.sender, track, signals, track.RATE, rewrite=not RAW_SR)

    pub = await whip_publish(server.url, cls["id"], cls["main"], codec="h264", sources=",".join(SOURCES),
                             tracks=list(tracks.values()), prepare=prepare)
    try:
        await pub.wait_connected(10)
        await asyncio.sleep(PUBLISH_S)
    finally:
        status = await pub.delete()
    assert status == 204, f"WHIP DELETE: {status}"
    for name, r in reports.items():
        assert len(r.sent_at) >= 5, f"{name}: only {len(r.sent_at)} sender reports went out"
    return {"signals": signals, "tracks": tracks, "reports": reports}


def wait_ended(server, class_id: str, timeout: float = 30) -> dict:
    """The class's lesson once it is no longer `recording` (finished or interrupted)."""
    deadline = time.monotonic() + timeout
    while True:
        lessons = server.admin("GET", f"/api/lessons?class={class_id}")["lessons"]
        if lessons and lessons[0]["state"] != "recording":
            return lessons[0]
        assert time.monotonic() < deadline, f"lesson still recording {timeout} s after the class ended: {lessons}"
        time.sleep(0.3)


def part_files(server, class_id: str, lesson_id: str) -> tuple[dict, dict[str, list[Path]]]:
    """lesson.json and the part files of each source, in part order (see recorder/src/layout.rs)."""
    folder = Path(server.data_dir) / "recordings" / class_id / lesson_id
    meta = json.loads((folder / "lesson.json").read_text())
    files = {}
    for t in meta["tracks"]:
        owner, source = t["key"].split("/")
        files[source] = [folder / f"{owner}.{source}.part{p['part']}.mp4" for p in sorted(t["parts"], key=lambda p: p["part"])]
    return meta, files


def media_files(paths: list[Path]) -> list[Path]:
    """Part files with something in them (a part that failed at once stays empty)."""
    return [p for p in paths if p.exists() and p.stat().st_size > 0]


# ---------------------------------------------------------------- analysis

def video_onsets(paths: list[Path]) -> list[float]:
    """pts (s) of each frame that is white after a dark one (luma mean over 128)."""
    onsets = []
    for path in paths:
        with av.open(str(path)) as c:
            lit_before = True  # an onset needs a dark frame first
            for f in c.decode(c.streams.video[0]):
                y = bytes(f.planes[0])[::5]
                lit = sum(y) > 128 * len(y)
                if lit and not lit_before:
                    onsets.append(f.time)
                lit_before = lit
    return onsets


def audio_onsets(paths: list[Path], window_s: float = 0.005, quiet_s: float = 0.2) -> list[float]:
    """Beep onsets (s): the first 5 ms window with RMS over 0.1 after `quiet_s` of windows
    under 0.02 (full scale 1.0), refined to the first sample over 0.15 from one window before."""
    onsets = []
    for path in paths:
        samples, seg_idx, seg_time = array("f"), [], []
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            rate = stream.rate
            for f in c.decode(stream):
                assert f.format.name in ("flt", "fltp"), f"unexpected sample format {f.format.name}"
                seg_idx.append(len(samples))
                seg_time.append(f.time)
                samples.frombytes(bytes(f.planes[0])[: 4 * f.samples])  # first channel

        def time_of(i: int) -> float:
            seg = bisect.bisect_right(seg_idx, i) - 1
            return seg_time[seg] + (i - seg_idx[seg]) / rate

        win = int(rate * window_s)
        quiet_needed, quiet = int(quiet_s / window_s), 0
        for w in range(0, len(samples) - win, win):
            rms = math.sqrt(sum(x * x for x in samples[w : w + win]) / win)
            if rms > 0.1 and quiet >= quiet_needed:
                first = next((i for i in range(max(0, w - win), w + win) if abs(samples[i]) > 0.15), w)
                onsets.append(time_of(first))
            quiet = quiet + 1 if rms < 0.02 else 0
    return onsets


def pair(ref: list[float], other: list[float]) -> list[tuple[float, float]]:
    """(ref onset, other - ref) for each `other` onset with a `ref` onset within the window."""
    out = []
    for t in other:
        near = min(ref, key=lambda r: abs(r - t), default=None)
        if near is not None and abs(t - near) <= PAIR_WINDOW_S:
            out.append((near, t - near))
    return out


def summary(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "median_ms": round(1000 * statistics.median(values), 1),
            "max_abs_ms": round(1000 * max(abs(o) for o in values), 1),
            "min_ms": round(1000 * min(values), 1), "max_ms": round(1000 * max(values), 1)}


def per_event(onsets: dict[str, list[float]], signals: SyncSignals, started_s: float) -> list[dict]:
    """For each flash/beep (whole second k of the signal clock): its capture time in lesson
    time (`started_at_ms` is lesson time 0, ms precision) and, per track, recorded minus
    captured in ms (a common part is the server's delay; differences are sync errors)."""
    table: dict[int, dict] = {}
    for source, times in onsets.items():
        for t in times:
            k = round(t + started_s - signals.t0)
            captured = signals.t0 + k - started_s
            row = table.setdefault(k, {"captured_s": round(captured, 3)})
            row[f"{source}_ms"] = round(1000 * (t - captured), 1)
    return [table[k] for k in sorted(table)]


# ---------------------------------------------------------------- boxes

def boxes(data: bytes, start: int = 0, end: int | None = None):
    end = len(data) if end is None else end
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header:
            return
        yield kind.decode("latin-1"), start + header, start + size
        start += size


def find(data: bytes, path: list[str], start: int = 0, end: int | None = None):
    """Every box at `path` (e.g. ['moov', 'trak', 'mdia', 'mdhd']) as (body start, end)."""
    for kind, s, e in boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                yield s, e
            else:
                yield from find(data, path[1:], s, e)


def box_timing(path: Path) -> dict:
    """Timescale, edit list and the first fragment's tfdt (+ composition offset) of a part file."""
    data = path.read_bytes()
    s, _ = next(find(data, ["moov", "trak", "mdia", "mdhd"]))
    version = data[s]
    timescale = struct.unpack_from(">I", data, s + (20 if version == 1 else 12))[0]
    edits = []
    for s, _ in find(data, ["moov", "trak", "edts", "elst"]):
        version, count = data[s], struct.unpack_from(">I", data, s + 4)[0]
        fmt, size = (">QqHH", 20) if version == 1 else (">IiHH", 12)
        edits = [struct.unpack_from(fmt, data, s + 8 + i * size)[:2] for i in range(count)]
    s, _ = next(find(data, ["moof", "traf", "tfdt"]))
    tfdt = struct.unpack_from(">Q" if data[s] == 1 else ">I", data, s + 4)[0]
    # The first sample's composition offset, if the trun has one.
    cts = 0
    s, _ = next(find(data, ["moof", "traf", "trun"]))
    flags = int.from_bytes(data[s + 1 : s + 4], "big")
    o = s + 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
    if flags & 0x800:
        o += 4 * sum(bool(flags & f) for f in (0x100, 0x200, 0x400))
        cts = struct.unpack_from(">i", data, o)[0]
    return {"timescale": timescale, "edits": edits, "tfdt": tfdt, "first_cts": cts,
            "first_pts_s": (tfdt + cts) / timescale}


def first_packet_pts(path: Path) -> float:
    with av.open(str(path)) as c:
        stream = c.streams[0]
        for p in c.demux(stream):
            if p.pts is not None:
                return float(p.pts * stream.time_base)
    raise AssertionError(f"{path}: no packet")


def save(scenario: str, result: dict) -> Path:
    """Merge one lesson's figures into out/av_sync.json."""
    OUT.mkdir(exist_ok=True)
    path = OUT / "av_sync.json"
    try:
        all_results = json.loads(path.read_text())
    except (OSError, ValueError):
        all_results = {}
    all_results[scenario] = result
    path.write_text(json.dumps(all_results, indent=2) + "\n")
    return path


# ---------------------------------------------------------------- the tests

@pytest.fixture(scope="module", params=list(SCENARIOS))
def recorded(server, request):
    scenario = request.param
    cls = server.new_class()
    sent = asyncio.run(publish_lesson(server, cls, SCENARIOS[scenario]))
    lesson = wait_ended(server, cls["id"])
    meta, files = part_files(server, cls["id"], lesson["id"])
    return {"scenario": scenario, "class": cls, "lesson": lesson, "meta": meta, "files": files, **sent}


def test_recorded_tracks_are_in_sync(recorded, capsys):
    scenario, files, signals, meta = recorded["scenario"], recorded["files"], recorded["signals"], recorded["meta"]
    assert sorted(files) == sorted(SOURCES), f"tracks recorded: {sorted(files)}"
    onsets = {s: video_onsets(media_files(files[s])) for s in ("camera", "board")}
    onsets["mic"] = audio_onsets(media_files(files["mic"]))

    av_pairs = pair(onsets["camera"], onsets["mic"])
    vv_pairs = pair(onsets["camera"], onsets["board"])
    av_off, vv_off = [o for _, o in av_pairs], [o for _, o in vv_pairs]
    t0 = signals.t0
    result = {
        "sender_reports": "aiortc's own (send time)" if RAW_SR else "capture time",
        "device_latency_ms": {s: round(1000 * v) for s, v in SCENARIOS[scenario].items()},
        "mic_minus_camera": summary(av_off),
        "board_minus_camera": summary(vv_off),
        "lesson": {k: recorded["lesson"][k] for k in ("id", "state", "faults")},
        "parts": {s: [p.name for p in paths] for s, paths in files.items()},
        "onsets": {s: len(v) for s, v in onsets.items()},
        # Recorded lesson time minus capture time, per track (the common part is the
        # server's delay and does not matter; differences between tracks do).
        "recorded_minus_captured": {s: summary([e[f"{s}_ms"] / 1000 for e in per_event(onsets, signals, meta["started_at_ms"] / 1000) if f"{s}_ms" in e]) for s in SOURCES},
        "events": per_event(onsets, signals, meta["started_at_ms"] / 1000),
        # When each sender's SRs went out (s since the signal clock's t0; lesson start at
        # `lesson_start_s`), and how far aiortc's own SR mapping was from capture time.
        "lesson_start_s": round(meta["started_at_ms"] / 1000 - t0, 3),
        "sr_sent_s": {s: [round(t - t0, 3) for t in r.sent_at[:4]] for s, r in recorded["reports"].items()},
        "aiortc_sr_minus_capture": {s: summary(r.errors_s) for s, r in recorded["reports"].items()},
    }
    path = save(scenario, result)
    with capsys.disabled():
        print(f"\nA/V sync, {scenario} (device latency ms {result['device_latency_ms']}, SRs on {result['sender_reports']}):")
        for k in ("mic_minus_camera", "board_minus_camera"):
            print(f"  {k}: {result[k]}")
        print(f"  lesson {result['lesson']['state']}; parts {result['parts']}")
        for s in SOURCES:
            print(f"  {s}: recorded - captured {result['recorded_minus_captured'][s]}; first SRs at {result['sr_sent_s'][s]} s")
        print("  per event, recorded - captured (ms)\n    at s:   " + " ".join(f"{e['captured_s']:6.1f}" for e in result["events"]))
        for s in SOURCES:
            print(f"    {s:6}: " + " ".join(f"{e.get(f'{s}_ms', '-'):>6}" for e in result["events"]))
        print(f"  written to {path}")

    assert len(av_off) >= MIN_EVENTS, f"only {len(av_off)} beeps matched a flash (onsets {result['onsets']})"
    assert len(vv_off) >= MIN_EVENTS, f"only {len(vv_off)} board flashes matched a camera flash (onsets {result['onsets']})"
    av_s, vv_s = result["mic_minus_camera"], result["board_minus_camera"]
    assert abs(av_s["median_ms"]) <= 1000 * AV_LIMIT_S and av_s["max_abs_ms"] <= 1000 * AV_LIMIT_S, \
        f"mic vs camera out of sync: {av_s} (per event: out/av_sync.json)"
    assert abs(vv_s["median_ms"]) <= 1000 * VV_LIMIT_S and vv_s["max_abs_ms"] <= 1000 * VV_LIMIT_S, \
        f"board vs camera out of sync: {vv_s} (per event: out/av_sync.json)"


def test_lesson_finished_cleanly(recorded):
    lesson, meta = recorded["lesson"], recorded["meta"]
    assert lesson["state"] == "finished" and not meta["faults"], \
        f"lesson {lesson['state']}: {meta['faults'] or lesson['faults']}"
    for t in meta["tracks"]:
        assert len(t["parts"]) == 1, f"{t['key']}: {len(t['parts'])} parts: {t['parts']}"
    for source, paths in recorded["files"].items():
        assert media_files(paths) == paths, f"{source}: missing or empty part files {paths}"


def test_part_files_are_on_lesson_time(recorded, capsys):
    """What PyAV reports as a part's first pts is the first fragment's tfdt (+ the first
    sample's composition offset, - an edit list's media time, if any): lesson time."""
    lines = []
    for source, paths in recorded["files"].items():
        for p in media_files(paths):
            b = box_timing(p)
            shift = sum(m for _, m in b["edits"] if m >= 0) / b["timescale"]
            expect = b["first_pts_s"] - shift
            got = first_packet_pts(p)
            lines.append(f"  {p.name}: tfdt {b['tfdt']}/{b['timescale']} cts {b['first_cts']} elst {b['edits']} -> "
                         f"{expect:.4f} s, PyAV first pts {got:.4f} s")
            assert abs(got - expect) < 0.002, f"{p.name}: PyAV pts {got} vs boxes {expect} ({b})"
    with capsys.disabled():
        print(f"\npart files of {recorded['scenario']} (boxes vs PyAV):\n" + "\n".join(lines))
