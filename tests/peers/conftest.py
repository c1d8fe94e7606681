"""pytest fixtures for the aiortc peer tests: a classcast server on 127.0.0.1 with free
ports, a temp data dir and random secrets (binary: target/release/classcast, or env
CLASSCAST_BIN), its log in tests/peers/out/<module>.log; and admin-API helpers."""

import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("CLASSCAST_BIN", str(REPO / "target/release/classcast"))
OUT = Path(__file__).resolve().parent / "out"


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str):
        self.http_port = _free_port(socket.SOCK_STREAM)
        self.media_port = _free_port(socket.SOCK_DGRAM)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.admin_key = secrets.token_hex(18)
        self.token_secret = secrets.token_hex(32)
        self.data_dir = tempfile.mkdtemp(prefix=f"classcast-{name}-")
        OUT.mkdir(exist_ok=True)
        self.log_path = OUT / f"{name}.log"
        args = [BIN, "serve", "--http", f"127.0.0.1:{self.http_port}", "--media-port", str(self.media_port),
                "--advertise", "127.0.0.1", "--data-dir", self.data_dir,
                "--admin-key", self.admin_key, "--token-secret", self.token_secret]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={"RUST_LOG": "info", **os.environ})
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout} s; see {self.log_path}")

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        req.add_header("Authorization", f"Bearer {self.admin_key}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path} → {e.code}: {e.read().decode()}") from None

    def new_class(self) -> dict:
        """A class with main and observer tokens: {id, main, observer}."""
        cls = self.admin("POST", "/api/classes", {"title": "Peers test", "teacher": "aiortc"})
        link = lambda role: self.admin("POST", f"/api/classes/{cls['id']}/links", {"role": role})["token"]
        return {"id": cls["id"], "main": link("main"), "observer": link("observer")}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(request):
    if not Path(BIN).exists():
        pytest.fail(f"server binary not found: {BIN} (cargo build --release, or set CLASSCAST_BIN)")
    s = Server(request.module.__name__.rsplit(".", 1)[-1])
    yield s
    s.stop()
