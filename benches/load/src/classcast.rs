//! classcast as the server under test: `classcast serve` on free loopback
//! ports with a fresh data directory, one class (not recorded), the teacher
//! publishing by WHIP and every subscriber attached by WHEP.
//!
//! Invariant: the child and its data directory go away when this is dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use str0m::Rtc;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid};

use crate::http;
use crate::procs::{self, Child};

const KEY: &str = "bench-admin-key";

pub struct Classcast {
    child: Child,
    base: String,
    class: String,
    teacher: String,
    viewer: String,
    dir: PathBuf,
}

impl Drop for Classcast {
    fn drop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Classcast {
    pub fn start(bin: &str, workers: usize, nice: i32) -> Result<Classcast> {
        let http_port = procs::free_tcp_port()?;
        let media_port = procs::free_udp_port()?;
        let dir = std::env::temp_dir().join(format!("classcast-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--http", &format!("127.0.0.1:{http_port}"), "--media-port", &media_port.to_string()])
            .args(["--advertise", "127.0.0.1", "--workers", &workers.to_string(), "--auto-export", "false", "--admin-key", KEY])
            .arg("--data-dir")
            .arg(&dir)
            .env("RUST_LOG", "warn");
        let child = Child::spawn(cmd, nice)?;
        let base = format!("http://127.0.0.1:{http_port}");
        let mut c = Classcast { child, base, class: String::new(), teacher: String::new(), viewer: String::new(), dir };
        c.wait_healthy()?;
        c.make_class()?;
        Ok(c)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    fn wait_healthy(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if !self.child.alive() {
                bail!("classcast exited during start-up");
            }
            if http::request("GET", &format!("{}/healthz", self.base), &[], None, Duration::from_secs(2)).is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("classcast did not become healthy within 30 s")
    }

    fn make_class(&mut self) -> Result<()> {
        let class = http::post_json(&format!("{}/api/classes", self.base), Some(KEY), &json!({"title": "load", "teacher": "bench", "record": false}))?;
        self.class = class["id"].as_str().context("class id")?.to_string();
        let links = format!("{}/api/classes/{}/links", self.base, self.class);
        self.teacher = http::post_json(&links, Some(KEY), &json!({"role": "main"}))?["token"].as_str().context("token")?.to_string();
        self.viewer = http::post_json(&links, Some(KEY), &json!({"role": "observer", "name": "load"}))?["token"].as_str().context("token")?.to_string();
        Ok(())
    }

    /// WHIP: camera then mic. Returns the mids (video, audio).
    pub fn publish(&mut self, rtc: &mut Rtc) -> Result<[Mid; 2]> {
        let mut api = rtc.sdp_api();
        let v = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let a = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().context("an offer")?;
        let url = format!("{}/whip/{}?sources=camera,mic", self.base, self.class);
        let answer = self.exchange(&url, &self.teacher.clone(), &offer.to_sdp_string())?;
        rtc.sdp_api().accept_answer(pending, answer)?;
        Ok([v, a])
    }

    /// WHEP: a recvonly video and audio offer.
    pub fn subscribe(&mut self, rtc: &mut Rtc) -> Result<()> {
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().context("an offer")?;
        let url = format!("{}/whep/{}", self.base, self.class);
        let answer = self.exchange(&url, &self.viewer.clone(), &offer.to_sdp_string())?;
        rtc.sdp_api().accept_answer(pending, answer)?;
        Ok(())
    }

    fn exchange(&self, url: &str, token: &str, offer: &str) -> Result<SdpAnswer> {
        let auth = format!("Bearer {token}");
        let h = [("Content-Type", "application/sdp"), ("Authorization", auth.as_str())];
        let r = http::request("POST", url, &h, Some(offer), Duration::from_secs(30))?;
        if r.status != 201 {
            bail!("POST {url}: {} {}", r.status, r.body);
        }
        Ok(SdpAnswer::from_sdp_string(&r.body)?)
    }
}
