#!/usr/bin/python3
"""Test RTSP server (gst-rtsp-server): serves a GStreamer test pattern + tone on
127.0.0.1 at rtsp://127.0.0.1:PORT/test, optionally behind user/password.

usage: rtsp_server.py PORT CODEC [USER:PASS]
CODEC: h264 (constrained baseline, keyframe every 30 frames and only then (no scene cuts), 640x360, 30 fps, AAC audio)
       h265 (same picture, H.265)
"""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib

VIDEO = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=800 option-string=scenecut=0 "
            "! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1",
    "h265": "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=800 option-string=scenecut=0 "
            "! rtph265pay name=pay0 pt=96 config-interval=-1",
}


def main():
    port, codec = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    launch = (
        "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1,format=I420 "
        f"! {VIDEO[codec]} "
        "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 "
        "! avenc_aac bitrate=96000 ! rtpmp4gpay name=pay1 pt=97 )"
    )
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    if len(sys.argv) > 3:
        user, password = sys.argv[3].split(":", 1)
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(Gst.Structure.new_from_string("user,media.factory.access=true,media.factory.construct=true"))
        factory.set_permissions(perms)
    server.get_mount_points().add_factory("/test", factory)
    server.attach(None)
    print(f"rtsp ready {port}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
