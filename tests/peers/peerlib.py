"""aiortc peers for classcast: a WHIP publisher and a WHEP viewer, on loopback only.

- `loopback_only()` makes aioice gather 127.0.0.1 (it drops loopback by default).
- `BarsVideoTrack` / `SineAudioTrack`: synthetic camera and microphone (no files, no ffmpeg).
- `whip_publish()` offers sendonly H.264 (or VP8) + Opus to `POST /whip/{class}`;
  `WhipSession.delete()` ends the publication.
- `whep_view()` offers recvonly video + audio to `POST /whep/{class}` and counts decoded
  frames per kind in a `WhepViewer`.
HTTP goes through urllib in a thread: no extra dependency beyond aiortc.
"""

import asyncio
import math
import struct
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import VideoFrame


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
                       sources: str | None = None, audio: bool = True) -> WhipSession:
    """Publish synthetic video (+ Opus audio) to `server`/whip/`class_id`."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = pc.addTransceiver(BarsVideoTrack(), direction="sendonly")
    _prefer(video, {"h264": "video/H264", "vp8": "video/VP8"}[codec])
    if audio:
        _prefer(pc.addTransceiver(SineAudioTrack(), direction="sendonly"), "audio/opus")
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
