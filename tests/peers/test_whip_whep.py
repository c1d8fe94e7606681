"""WHIP → WHEP with real WebRTC stacks on both ends (aiortc): a publisher sends synthetic
video + Opus as the main classroom, a viewer decodes them over WHEP; deleting the WHIP
session ends the stream and the viewer's session. Once with H.264 and once with VP8 (both are documented codecs)."""

import asyncio
import time

import pytest

from peerlib import whep_view, whip_publish


async def wait_until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out after {timeout} s: {what}"
        await asyncio.sleep(0.1)


async def whip_to_whep(server, cls, codec: str) -> None:
    pub = await whip_publish(server.url, cls["id"], cls["main"], codec=codec)
    await pub.wait_connected(10)
    viewer = await whep_view(server.url, cls["id"], cls["observer"])
    try:
        await viewer.wait_connected(10)
        f = viewer.frames
        await wait_until(lambda: f["video"] >= 30 and f["audio"] >= 25, 15,
                         f"viewer decodes ≥ 30 video and ≥ 25 audio frames (has {f})")
        v0, a0 = f["video"], f["audio"]
        await asyncio.sleep(1)
        assert f["video"] > v0 and f["audio"] > a0, f"frames keep coming: {v0},{a0} → {f}"

        assert await pub.delete() == 204, "WHIP DELETE"
        # The stream ends: the track ends, or decoded frames stop.
        stopped_at = None
        deadline = time.monotonic() + 10
        while not viewer.ended.get("video") and time.monotonic() < deadline:
            before = f["video"]
            await asyncio.sleep(1.5)
            if f["video"] == before:
                stopped_at = before
                break
        assert viewer.ended.get("video") or stopped_at is not None, f"video still flowing 10 s after DELETE: {f}"
    finally:
        status = await viewer.close()
        await pub.pc.close()  # no-op after a successful delete()
    # The server ends a WHEP session once everything it showed has ended, so the
    # viewer's own DELETE finds it gone.
    assert status == 404, f"WHEP DELETE after the publication ended: {status}"


@pytest.mark.parametrize("codec", ["h264", "vp8"])
def test_whip_publish_is_played_over_whep(server, codec):
    asyncio.run(whip_to_whep(server, server.new_class(), codec))
    assert server.alive()
