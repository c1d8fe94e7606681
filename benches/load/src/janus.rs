//! Janus VideoRoom (Debian's janus) as the server under test, through its
//! HTTP API: one session, one handle per peer, a room with H.264 (42e01f) and
//! Opus; the teacher joins as publisher with our offer, each subscriber joins
//! with `streams: [{feed}]`, answers Janus's offer and sends `start`.
//!
//! Janus runs with `event_loops = 2` (the tuned setting measured in
//! ../shared/notes/str0m-sfu.md), only the VideoRoom plugin and the HTTP
//! transport, from a generated config folder. libnice skips loopback
//! interfaces, so Janus gathers on `ip` (a veth address, see
//! scripts/bench-netns.sh); the clients use 127.0.0.3, the veth's other end.
//! Invariant: the child and its config folder go away when this is dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use str0m::Rtc;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, Mid};

use crate::http;
use crate::procs::{self, Child};

const ROOM: u64 = 1234;
const PUBLISHER: u64 = 1;
const LIB: &str = "/usr/lib/x86_64-linux-gnu/janus";

pub struct Janus {
    child: Child,
    base: String,
    session: u64,
    pending: Vec<Value>,
    tx: u64,
    dir: PathBuf,
}

impl Drop for Janus {
    fn drop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Janus {
    pub fn start(ip: &str, nice: i32) -> Result<Janus> {
        let port = procs::free_tcp_port()?;
        let dir = std::env::temp_dir().join(format!("janus-load-{}", std::process::id()));
        write_config(&dir, ip, port)?;
        let mut cmd = Command::new("janus");
        cmd.arg("-F").arg(&dir).arg("-C").arg(dir.join("janus.jcfg")).arg("-o");
        cmd.stderr(std::process::Stdio::null());
        let child = Child::spawn(cmd, nice).context("janus (apt-get install janus)")?;
        let base = format!("http://127.0.0.1:{port}/janus");
        let mut j = Janus { child, base, session: 0, pending: Vec::new(), tx: 0, dir };
        j.wait_ready()?;
        j.session = j.post("", json!({"janus": "create"}))?["data"]["id"].as_u64().context("session id")?;
        let h = j.attach()?;
        let body = json!({"request": "create", "room": ROOM, "publishers": 1, "videocodec": "h264", "audiocodec": "opus", "h264_profile": "42e01f", "bitrate": 0, "notify_joining": false});
        let r = j.post(&format!("/{}/{h}", j.session), json!({"janus": "message", "body": body}))?;
        if r["plugindata"]["data"]["videoroom"] != "created" {
            bail!("janus did not create the room: {r}");
        }
        Ok(j)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !self.child.alive() {
                bail!("janus exited during start-up");
            }
            if http::request("GET", &format!("{}/info", self.base), &[], None, Duration::from_secs(2)).is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("janus did not answer within 30 s")
    }

    fn post(&mut self, path: &str, mut body: Value) -> Result<Value> {
        self.tx += 1;
        body["transaction"] = json!(format!("t{}", self.tx));
        let r = http::post_json(&format!("{}{path}", self.base), None, &body)?;
        if r["janus"] == "error" {
            bail!("janus: {r}");
        }
        Ok(r)
    }

    fn attach(&mut self) -> Result<u64> {
        let r = self.post(&format!("/{}", self.session), json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}))?;
        r["data"]["id"].as_u64().context("handle id")
    }

    fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> Result<()> {
        let mut m = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.post(&format!("/{}/{handle}", self.session), m)?;
        Ok(())
    }

    /// The next event for `handle` that carries a JSEP, long-polling the session.
    fn jsep_event(&mut self, handle: u64) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = self.pending.iter().position(|e| e["sender"].as_u64() == Some(handle) && e.get("jsep").is_some()) {
                return Ok(self.pending.remove(i));
            }
            if let Some(e) = self.pending.iter().find(|e| e["sender"].as_u64() == Some(handle) && e["plugindata"]["data"]["error"].is_string()) {
                bail!("janus refused: {e}");
            }
            if Instant::now() > deadline {
                bail!("no answer from janus for handle {handle} within 30 s");
            }
            let url = format!("{}/{}?maxev=50", self.base, self.session);
            let r = http::request("GET", &url, &[], None, Duration::from_secs(40))?.json()?;
            match r {
                Value::Array(v) => self.pending.extend(v),
                v => self.pending.push(v),
            }
            self.pending.retain(|e| e["janus"] != "keepalive");
        }
    }

    pub fn publish(&mut self, rtc: &mut Rtc) -> Result<[Mid; 2]> {
        let handle = self.attach()?;
        let mut api = rtc.sdp_api();
        let v = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let a = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().context("an offer")?;
        let body = json!({"request": "joinandconfigure", "room": ROOM, "ptype": "publisher", "id": PUBLISHER, "display": "teacher"});
        self.message(handle, body, Some(json!({"type": "offer", "sdp": offer.to_sdp_string()})))?;
        let e = self.jsep_event(handle)?;
        let sdp = e["jsep"]["sdp"].as_str().context("answer sdp")?;
        rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(sdp)?)?;
        Ok([v, a])
    }

    pub fn subscribe(&mut self, rtc: &mut Rtc) -> Result<()> {
        let handle = self.attach()?;
        self.message(handle, json!({"request": "join", "room": ROOM, "ptype": "subscriber", "streams": [{"feed": PUBLISHER}]}), None)?;
        let e = self.jsep_event(handle)?;
        let sdp = e["jsep"]["sdp"].as_str().context("offer sdp")?;
        let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(sdp)?)?;
        self.message(handle, json!({"request": "start", "room": ROOM}), Some(json!({"type": "answer", "sdp": answer.to_sdp_string()})))?;
        Ok(())
    }
}

fn write_config(dir: &Path, ip: &str, port: u16) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    for sub in ["plugins", "transports", "none"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::os::unix::fs::symlink(format!("{LIB}/plugins/libjanus_videoroom.so"), dir.join("plugins/libjanus_videoroom.so"))?;
    std::os::unix::fs::symlink(format!("{LIB}/transports/libjanus_http.so"), dir.join("transports/libjanus_http.so"))?;
    let d = dir.display();
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            "general: {{\n configs_folder = \"{d}\"\n plugins_folder = \"{d}/plugins\"\n transports_folder = \"{d}/transports\"\n events_folder = \"{d}/none\"\n loggers_folder = \"{d}/none\"\n debug_level = 2\n session_timeout = 0\n event_loops = 2\n}}\nmedia: {{\n rtp_port_range = \"20000-60000\"\n}}\nnat: {{\n nice_debug = false\n ignore_mdns = true\n ice_enforce_list = \"{ip}\"\n}}\n"
        ),
    )?;
    std::fs::write(
        dir.join("janus.transport.http.jcfg"),
        format!("general: {{\n json = \"plain\"\n base_path = \"/janus\"\n http = true\n port = {port}\n ip = \"127.0.0.1\"\n https = false\n}}\nadmin: {{\n admin_http = false\n}}\n"),
    )?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")?;
    Ok(())
}
