"""aiortc peers for classcast: a WHIP publisher and a WHEP viewer, on loopback only.

- `loopback_only()` makes aioice gather 127.0.0.1 (it drops loopback by default).
- `BarsVideoTrack` / `SineAudioTrack`: synthetic camera and microphone (no files, no ffmpeg).
- `SyncSignals` + `FlashVideoTrack` / `BeepAudioTrack`: flashes and beeps on one clock (A/V
  sync tests); `CaptureTimeSenderReports` makes aiortc's sender reports map RTP time to
  capture time (aiortc's own map it to send time).
- `whip_publish()` offers sendonly H.264 (or VP8) + Opus to `POST /whip/{class}`;
  `WhipSession.delete()` ends the publication.
- `whep_view()` offers recvonly video + audio to `POST /whep/{class}` and counts decoded
  frames per kind in a `WhepViewer`.
HTTP goes through urllib in a thread: no extra dependency beyond aiortc.
"""

import asyncio
import fractions
import math
import struct
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aioice.ice
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from aiortc.rtp import RtcpSrPacket
from av import AudioFrame, VideoFrame


def loopback_only() -> None:
    """Gather host candidates on 127.0.0.1 only (aioice skips loopback otherwise)."""
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: ["127.0.0.1"]


loopback_only()


class BarsVideoTrack(VideoStreamTrack):
    """320x240 grey frames with a white bar moving left to right, 30 fps."""

    WIDTH, HEIGHT, BAR = 320, 240, 32

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.WIDTH, height=self.HEIGHT, format="yuv420p")
        luma, cb, cr = frame.planes
        pos = (pts // 3000 * 4) % (self.WIDTH - self.BAR)  # 4 px per frame at 90 kHz / 30 fps
        row = bytearray(b"\x40" * luma.line_size)
        row[pos : pos + self.BAR] = b"\xeb" * self.BAR
        luma.update(bytes(row) * self.HEIGHT)
        cb.update(b"\x80" * cb.buffer_size)
        cr.update(b"\x80" * cr.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class SineAudioTrack(AudioStreamTrack):
    """A 400 Hz tone (aiortc's silent 8 kHz mono frames, filled with a sine)."""

    # 8 kHz / 400 Hz = 20 samples a period; a 20 ms frame is 160 samples = 8 periods.
    _PCM = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * i / 20))) for i in range(160))

    async def recv(self):
        frame = await super().recv()
        frame.planes[0].update(self._PCM[: frame.planes[0].buffer_size])
        return frame


class SyncSignals:
    """One clock for synchronized test signals, like a capture device's: sample/frame pts
    count from `t0` (unix time), and at every whole second since `t0` video flashes white
    and audio beeps (1 kHz) for 100 ms. `lit(pts, rate)` says whether pts (in 1/rate s)
    falls in a flash."""

    PERIOD_S = 1
    ON_FRACTION = 10  # on for 1/10 of each period: 100 ms

    def __init__(self, t0: float | None = None):
        self.t0 = time.time() if t0 is None else t0

    def lit(self, pts: int, rate: int) -> bool:
        period = rate * self.PERIOD_S
        return pts >= 0 and pts % period < period // self.ON_FRACTION


class FlashVideoTrack(VideoStreamTrack):
    """Black 320x240 frames, white during each flash of `SyncSignals`; frame n has pts
    n/fps s after t0 (its capture time) and is delivered `latency_s` later (a camera's
    capture-to-delivery delay), starting at the first frame due when `recv()` is first
    called."""

    RATE = 90_000

    def __init__(self, signals: SyncSignals, fps: int = 30, width: int = 320, height: int = 240,
                 latency_s: float = 0.0):
        super().__init__()
        assert self.RATE % fps == 0
        self.signals, self.fps, self.width, self.height = signals, fps, width, height
        self.latency_s = latency_s
        self.n: int | None = None
        self.first_pts_s: float | None = None  # capture time (s since t0) of the first frame sent
        chroma = width * height // 4
        self._planes = {lit: (bytes([235 if lit else 16]) * (width * height), b"\x80" * chroma, b"\x80" * chroma)
                        for lit in (False, True)}

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.n is None:
            self.n = math.ceil((time.time() - self.latency_s - self.signals.t0) * self.fps)
            self.first_pts_s = self.n / self.fps
        else:
            self.n += 1
        delay = self.signals.t0 + self.n / self.fps + self.latency_s - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pts = self.n * (self.RATE // self.fps)
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        for plane, data in zip(frame.planes, self._planes[self.signals.lit(pts, self.RATE)]):
            plane.update(data)
        frame.pts, frame.time_base = pts, fractions.Fraction(1, self.RATE)
        return frame


class BeepAudioTrack(AudioStreamTrack):
    """48 kHz mono, silent except a 1 kHz beep during each flash of `SyncSignals`; 20 ms
    frames whose pts count samples since t0, each delivered `latency_s` after its last
    sample is captured (like a microphone and its driver's buffering), starting with the
    frame due at the first `recv()`."""

    RATE = 48_000
    SAMPLES = 960  # 20 ms

    def __init__(self, signals: SyncSignals, amplitude: int = 16000, latency_s: float = 0.0):
        super().__init__()
        self.signals, self.latency_s = signals, latency_s
        self.m: int | None = None
        self.first_pts_s: float | None = None
        self._amplitude = amplitude

    def _pcm(self, start: int) -> bytes:
        samples = (
            int(self._amplitude * math.sin(2 * math.pi * 1000 * s / self.RATE)) if self.signals.lit(s, self.RATE) else 0
            for s in range(start, start + self.SAMPLES)
        )
        return struct.pack(f"<{self.SAMPLES}h", *samples)

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        ptime = self.SAMPLES / self.RATE
        if self.m is None:
            self.m = math.ceil((time.time() - self.latency_s - self.signals.t0) / ptime)
            self.first_pts_s = self.m * ptime
        else:
            self.m += 1
        delay = self.signals.t0 + (self.m + 1) * ptime + self.latency_s - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        pts = self.m * self.SAMPLES
        frame.planes[0].update(self._pcm(pts))
        frame.pts, frame.sample_rate, frame.time_base = pts, self.RATE, fractions.Fraction(1, self.RATE)
        return frame


NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 to 1970


def _ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / 2**32


def _unix_to_ntp(t: float) -> int:
    secs = t + NTP_UNIX_OFFSET
    return (int(secs) << 32) | int((secs % 1) * 2**32)


class CaptureTimeSenderReports:
    """Makes one aiortc sender's RTCP sender reports map RTP time to *capture* time.

    aiortc 1.16 (`RTCRtpSender._run_rtp`/`_run_rtcp`) puts in each SR the RTP timestamp of
    the last packet it sent and the wall clock just after sending it: that maps RTP time to
    *send* time, i.e. capture + frame delivery + encoding + packetization + event-loop
    delay, which differs per track (a 20 ms audio frame is only delivered once captured,
    H.264 encoding takes a few ms in a thread, ...). Real senders (libwebrtc) pair the NTP
    time of the report with the RTP time the media clock shows at that instant.

    This does the latter: it learns the RTP timestamp R0 of the sender's first packet
    (which carries the track's first frame, captured `track.first_pts_s` after t0), and
    rewrites each SR as (now, R0 + (now - capture of R0) * rate). `rewrite=False` leaves
    aiortc's SRs alone (diagnosis) but still measures their error: `errors_s` holds, for
    each SR, aiortc's NTP time minus the true capture time of its RTP timestamp.
    aiortc also sends SRs before the sender's first RTP packet (NTP and RTP time 0, when
    the track's first frame comes later than the first RTCP timer); those are held back
    (unless `rewrite=False`). `sent_at` lists when each SR went out (unix time).

    Uses aiortc internals (pinned to 1.16: the name-mangled RTP history dict, `_send_rtcp`),
    checked here so an upgrade fails loudly instead of measuring nonsense."""

    def __init__(self, sender: RTCRtpSender, track, signals: SyncSignals, rate: int, rewrite: bool = True):
        self.sender, self.track, self.signals, self.rate, self.rewrite = sender, track, signals, rate, rewrite
        self.r0: int | None = None
        self.errors_s: list[float] = []
        self.sent_at: list[float] = []
        history_attr = "_RTCRtpSender__rtp_history"
        assert isinstance(getattr(sender, history_attr, None), dict), "aiortc internals changed (RTP history)"
        assert hasattr(sender, "_send_rtcp") and hasattr(sender, "_RTCRtpSender__lsr"), "aiortc internals changed (RTCP)"
        owner = self

        class FirstPacket(dict):
            def __setitem__(self, key, packet):
                if owner.r0 is None:
                    owner.r0 = packet.timestamp
                super().__setitem__(key, packet)

        setattr(sender, history_attr, FirstPacket())
        self._send_rtcp = sender._send_rtcp
        sender._send_rtcp = self._send_rtcp_fixed

    def capture_time(self, rtp: int) -> float:
        """Unix time at which media with RTP timestamp `rtp` was captured."""
        return self.signals.t0 + self.track.first_pts_s + ((rtp - self.r0) % 2**32) / self.rate

    async def _send_rtcp_fixed(self, packets) -> None:
        srs = [p for p in packets if isinstance(p, RtcpSrPacket) and p.ssrc == self.sender._ssrc]
        if srs and self.r0 is None and self.rewrite:
            return  # nothing sent yet: no time mapping to report
        for p in srs if self.r0 is not None else []:
            info = p.sender_info
            self.errors_s.append(_ntp_to_unix(info.ntp_timestamp) - self.capture_time(info.rtp_timestamp))
            now = time.time()
            self.sent_at.append(now)
            if self.rewrite:
                info.ntp_timestamp = _unix_to_ntp(now)
                info.rtp_timestamp = (self.r0 + round((now - self.capture_time(self.r0)) * self.rate)) % 2**32
                # aiortc computes RTT from the LSR its peer echoes: keep it matching.
                self.sender._RTCRtpSender__lsr = (info.ntp_timestamp >> 16) & 0xFFFFFFFF
        await self._send_rtcp(packets)


async def http(method: str, url: str, body: str | None = None, headers: dict | None = None):
    """One HTTP request; returns (status, lower-cased headers, body text). Never raises on 4xx/5xx."""

    def call():
        req = urllib.request.Request(url, data=body.encode() if body is not None else None, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=15) as res:
                return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()

    return await asyncio.to_thread(call)


class SignalingError(Exception):
    def __init__(self, what: str, status: int, body: str):
        super().__init__(f"{what}: HTTP {status}: {body}")
        self.status, self.body = status, body


def _prefer(transceiver, mime: str) -> None:
    codecs = [c for c in RTCRtpSender.getCapabilities(transceiver.kind).codecs if c.mimeType.lower() == mime.lower()]
    if not codecs:
        raise ValueError(f"aiortc has no {mime}")
    transceiver.setCodecPreferences(codecs)


async def _wait_connected(pc: RTCPeerConnection, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed") or time.monotonic() > deadline:
            raise TimeoutError(f"peer connection {pc.connectionState} after {timeout} s")
        await asyncio.sleep(0.05)


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class WhipSession:
    pc: RTCPeerConnection
    location: str
    token: str

    async def wait_connected(self, timeout: float = 10) -> None:
        await _wait_connected(self.pc, timeout)

    async def delete(self) -> int:
        """DELETE the session (ends the publication), close the peer; returns the HTTP status."""
        status, _, _ = await http("DELETE", self.location, headers=_auth(self.token))
        await self.pc.close()
        return status


async def whip_publish(server: str, class_id: str, token: str, codec: str = "h264",
                       sources: str | None = None, audio: bool = True,
                       tracks: list | None = None, prepare=None) -> WhipSession:
    """Publish synthetic video (+ Opus audio) to `server`/whip/`class_id`.

    `tracks`: the tracks to send instead, one sendonly m-line each, in order (video in
    `codec`, audio in Opus); `prepare(pc)` runs once the transceivers exist, before any
    media flows (e.g. `CaptureTimeSenderReports`)."""
    # One ICE transport per m-line in the offer (BUNDLE then keeps the first): with aiortc's
    # default "balanced" policy two video m-lines share a transport, and aiortc 1.16 takes
    # that transport's remote candidates from the *last* m-line using it; a BUNDLE answer
    # (str0m's) lists candidates in the first m-line only, so ICE would never start.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_COMPAT))
    if tracks is None:
        tracks = [BarsVideoTrack()] + ([SineAudioTrack()] if audio else [])
    for track in tracks:
        t = pc.addTransceiver(track, direction="sendonly")
        _prefer(t, "audio/opus" if track.kind == "audio" else {"h264": "video/H264", "vp8": "video/VP8"}[codec])
    if prepare is not None:
        prepare(pc)
    await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers fully here (no trickle)
    url = f"{server}/whip/{class_id}" + (f"?sources={sources}" if sources else "")
    status, headers, body = await http(
        "POST", url, pc.localDescription.sdp, {"Content-Type": "application/sdp", **_auth(token)}
    )
    if status != 201:
        await pc.close()
        raise SignalingError("WHIP POST", status, body)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return WhipSession(pc, urljoin(url, headers["location"]), token)


@dataclass
class WhepViewer:
    pc: RTCPeerConnection
    location: str
    token: str
    frames: dict = field(default_factory=lambda: {"video": 0, "audio": 0})
    ended: dict = field(default_factory=dict)
    tasks: list = field(default_factory=list)

    def consume(self, track) -> None:
        async def run():
            try:
                while True:
                    await track.recv()  # decoded frame
                    self.frames[track.kind] += 1
            except MediaStreamError:
                self.ended[track.kind] = True

        self.tasks.append(asyncio.ensure_future(run()))

    async def wait_connected(self, timeout: float = 10) -> None:
        await _wait_connected(self.pc, timeout)

    async def close(self) -> int:
        status, _, _ = await http("DELETE", self.location, headers=_auth(self.token))
        await self.pc.close()
        for t in self.tasks:
            t.cancel()
        return status


async def whep_view(server: str, class_id: str, token: str) -> WhepViewer:
    """Watch `server`/whep/`class_id`: one recvonly video and one recvonly audio m-line."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    viewer = WhepViewer(pc, "", token)
    pc.on("track", viewer.consume)
    await pc.setLocalDescription(await pc.createOffer())
    url = f"{server}/whep/{class_id}"
    status, headers, body = await http(
        "POST", url, pc.localDescription.sdp, {"Content-Type": "application/sdp", **_auth(token)}
    )
    if status != 201:
        await pc.close()
        raise SignalingError("WHEP POST", status, body)
    viewer.location = urljoin(url, headers["location"])
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return viewer
