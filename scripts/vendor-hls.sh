#!/usr/bin/env bash
# Vendor hls.js into web-client/vendor/hls/ (the replay page loads it from the same origin;
# the web client has no build step and makes no external requests).
#
#   scripts/vendor-hls.sh          # the newest 1.6.x
#   scripts/vendor-hls.sh 1.6.19   # an exact version
#
# Fetches the npm tarball with `npm pack` (the registry, nothing else), copies dist/hls.min.js
# and LICENSE, and rewrites web-client/vendor/hls/README.md with the version and the
# tarball's integrity. Review and commit the result.
set -euo pipefail

spec="${1:-1.6}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/web-client/vendor/hls"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent --json "hls.js@$spec" >pack.json
tarball="$(node -e 'const p=require("./pack.json")[0]; console.log(p.filename)')"
integrity="$(node -e 'const p=require("./pack.json")[0]; console.log(p.integrity)')"
tar xzf "$tarball"
version="$(node -e 'console.log(require("./package/package.json").version)')"

mkdir -p "$dest"
# Drop the source-map comment: the map is not vendored, and browsers would ask for it.
sed '/^\/\/# sourceMappingURL=/d' package/dist/hls.min.js >"$dest/hls.min.js"
cp package/LICENSE "$dest/LICENSE"
cat >"$dest/README.md" <<README
# hls.js $version

\`hls.min.js\` and \`LICENSE\` (Apache-2.0) from the npm package hls.js@$version
($integrity), unmodified except for the dropped \`//# sourceMappingURL\` line.
Used by \`replay.html\` (\`js/replay.js\` imports it for its side effect: it sets \`globalThis.Hls\`).

Refresh: \`scripts/vendor-hls.sh [version]\` (default: newest 1.6.x), then reload \`replay.html\`.
README
echo "vendored hls.js $version into ${dest#"$root/"}"
