//! The real `classcast` binary for the integration tests: free ports on 127.0.0.1, a
//! fresh data directory, the admin key given; killed and its directory removed on drop.
//! Each test crate uses the part it needs.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    pub child: Child,
    pub http_port: u16,
    pub media_port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub dir: PathBuf,
    pub http: reqwest::Client,
    args: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Start `classcast serve` with the admin key `key` and the `extra` flags; returns once healthy.
    pub async fn start(name: &str, key: &str, extra: &[&str]) -> Server {
        let http_port = TcpListener::bind("127.0.0.1:0").expect("a free TCP port").local_addr().expect("bound").port();
        let media_port = UdpSocket::bind("127.0.0.1:0").expect("a free UDP port").local_addr().expect("bound").port();
        let dir = std::env::temp_dir().join(format!("classcast-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut args: Vec<String> = ["--advertise", "127.0.0.1", "--workers", "1", "--auto-export", "false", "--admin-key", key].map(String::from).into();
        args.extend(extra.iter().map(|a| a.to_string()));
        let child = spawn(http_port, media_port, &dir, &args);
        let server = Server { child, http_port, media_port, base: format!("http://127.0.0.1:{http_port}"), dir, http: reqwest::Client::new(), args };
        server.wait_healthy().await;
        server
    }

    /// Kill the server (no graceful shutdown) and start it again on the same data and ports.
    pub async fn restart(&mut self) {
        self.child.kill().expect("the server runs");
        self.child.wait().expect("it exits");
        self.child = spawn(self.http_port, self.media_port, &self.dir, &self.args);
        self.wait_healthy().await;
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.http.get(format!("{}/healthz", self.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not become healthy within 30 s");
    }
}

fn spawn(http_port: u16, media_port: u16, dir: &PathBuf, args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_classcast"))
        .args(["serve", "--http", &format!("127.0.0.1:{http_port}"), "--media-port", &media_port.to_string()])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the classcast binary starts")
}
