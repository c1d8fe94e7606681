#!/usr/bin/env bash
# Install what classcast needs on a Debian 12 machine, and nothing that is already there.
#
#   scripts/install-deps.sh serve   # build tools + GStreamer (the recorder links it; rusqlite is bundled)
#   scripts/install-deps.sh test    # + Chromium, namespaces, GStreamer, Node and Python test deps
#   scripts/install-deps.sh bench   # serve + what the load benchmarks need (make bench, make bench-compare)
#
# Idempotent: apt packages are checked with `dpkg -s` (and `apt-get update` runs once, only
# if something is missing); `npm ci` and the Python venv are redone only when their lock or
# requirements file changed. Runs as root (no sudo) or with sudo available.
set -euo pipefail

mode="${1:-serve}"
root="$(cd "$(dirname "$0")/.." && pwd)"

# The recorder (recorder/) builds against GStreamer and uses rtpjitterbuffer, the RTP
# depayloaders (good), h264parse, h264timestamper and opusparse (bad) at run time; the
# lesson export decodes (libav: avdec_h264; base: opusdec) and encodes (ugly: x264enc;
# libav: avenc_aac).
serve_pkgs=(
  build-essential pkg-config
  libglib2.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
)
test_pkgs=(
  chromium iproute2 util-linux
  gstreamer1.0-tools gstreamer1.0-nice
  gstreamer1.0-plugins-base-apps libgstreamer-plugins-bad1.0-dev
)
# Bridges (src/bridges, media-pipelines/): rtspsrc and the depayloaders are in good,
# srtsrc/srtsink, rtmp2sink and h264/h265 parsers in bad, x264enc in ugly, avdec_h265 and
# avdec_aac in libav (all already in serve_pkgs). The e2e test's RTSP camera is a
# gst-rtsp-server script (tests/e2e/tools/rtsp_server.py) run with Debian's python3-gi,
# and its H.265 source uses x265enc (bad).
test_pkgs+=(python3-gi gir1.2-gst-rtsp-server-1.0)

# Load benchmarks (benches/load, docs/PERFORMANCE.md): gst-launch makes the teacher clip,
# Janus VideoRoom is the server compared against, iproute2 makes the veth namespace it
# needs (scripts/bench-netns.sh). `make test` runs their smoke mode, so test needs them too.
bench_pkgs=(gstreamer1.0-tools janus iproute2 util-linux)

case "$mode" in
  serve) pkgs=("${serve_pkgs[@]}") ;;
  test) pkgs=("${serve_pkgs[@]}" "${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  bench) pkgs=("${serve_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 [serve|test|bench]" >&2; exit 2 ;;
esac

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# python3 -m venv needs Debian's python3-venv only when python3 is Debian's own.
if [ "$mode" = test ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  pkgs+=(python3-venv)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: apt packages for '$mode' already installed"
fi

[ "$mode" = test ] || exit 0

# Node test deps: playwright-core never downloads a browser (we use /usr/bin/chromium).
e2e="$root/tests/e2e"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ -f "$e2e/package-lock.json" ]; then
  stamp="$e2e/node_modules/.classcast-lock.sha256"
  want="$(sha256sum "$e2e/package-lock.json" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$e2e" && npm ci --no-audit --no-fund)
    echo "$want" >"$stamp"
  else
    echo "install-deps: tests/e2e/node_modules up to date"
  fi
else
  (cd "$e2e" && npm install --no-audit --no-fund)
fi

# Python peers (aiortc) in their own venv.
peers="$root/tests/peers"
venv="$peers/.venv"
stamp="$venv/.classcast-req.sha256"
want="$(sha256sum "$peers/requirements.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$peers/requirements.txt"
  echo "$want" >"$stamp"
else
  echo "install-deps: tests/peers/.venv up to date"
fi
