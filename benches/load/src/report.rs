//! The figures of a run, the comparison table, the knee and the summary line.
//!
//! Invariant: a subscriber's loss is 1 - (packets it received that the
//! publisher sent inside the window) / (packets sent inside the window), so a
//! subscriber that never authenticated a sample counts as 100 % loss.

use anyhow::{Result, bail};

use crate::recv::{Hist, SubStats};

pub struct Figures {
    pub target: String,
    pub n: usize,
    pub published: u64,
    pub forwarded: u64,
    pub loss_pct: f64,
    pub loss_max_pct: f64,
    pub lossy_subs: usize,
    pub connected: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cpu_s: f64,
    pub us_per_pkt: Option<f64>,
    pub client_cpu_s: f64,
    pub rss_per_sub_kib: f64,
    pub attach_s: f64,
    pub load: String,
    pub samples: (u64, u64),
    pub mismatch: u64,
}

impl Figures {
    #[allow(clippy::too_many_arguments)]
    pub fn new(target: &str, n: usize, published: u64, subs: &[SubStats], hist: &Hist, cpu_s: f64, client_cpu_s: f64, rss0: u64, rss1: u64, attach_s: f64, load: String) -> Figures {
        let losses: Vec<f64> = subs.iter().map(|s| loss(s.received, published)).collect();
        let forwarded = subs.iter().map(|s| s.received).sum::<u64>();
        let loss_pct = if n == 0 { 0.0 } else { (losses.iter().sum::<f64>() + (n.saturating_sub(subs.len())) as f64 * 100.0) / n as f64 };
        Figures {
            target: target.into(),
            n,
            published,
            forwarded,
            loss_pct,
            loss_max_pct: losses.iter().copied().fold(0.0, f64::max),
            lossy_subs: losses.iter().filter(|l| **l >= 0.5).count(),
            connected: subs.iter().filter(|s| s.connected).count(),
            p50_ms: hist.quantile_ms(0.5),
            p99_ms: hist.quantile_ms(0.99),
            cpu_s,
            us_per_pkt: (forwarded > 0).then(|| cpu_s * 1e6 / forwarded as f64),
            client_cpu_s,
            rss_per_sub_kib: if n == 0 { 0.0 } else { (rss1 as f64 - rss0 as f64) / n as f64 },
            attach_s,
            load,
            samples: (subs.iter().map(|s| s.samples_ok).sum(), subs.iter().map(|s| s.samples_fed).sum()),
            mismatch: subs.iter().map(|s| s.offset_mismatch).sum(),
        }
    }

    /// Meets the knee's bar: < 0.5 % loss and p99 < 50 ms.
    pub fn healthy(&self) -> bool {
        self.loss_pct < 0.5 && self.p99_ms.is_some_and(|p| p < 50.0)
    }

    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {:.3} | {:.2} | {} | {} | {} | {:.2} | {} | {:.2} | {:.0} | {}/{} | {}/{} ({}) | {:.1} | {} |",
            self.target,
            self.n,
            self.published,
            self.forwarded,
            self.loss_pct,
            self.loss_max_pct,
            self.lossy_subs,
            opt(self.p50_ms, 2),
            opt(self.p99_ms, 2),
            self.cpu_s,
            opt(self.us_per_pkt, 2),
            self.client_cpu_s,
            self.rss_per_sub_kib,
            self.connected,
            self.n,
            self.samples.0,
            self.samples.1,
            self.mismatch,
            self.attach_s,
            self.load,
        )
    }
}

pub fn header() -> String {
    "| server | N | published | forwarded | loss % (mean) | loss % (worst) | subs >= 0.5 % | p50 ms | p99 ms | server CPU s | server us/pkt | client CPU s | server RSS KiB/sub | connected | samples ok/fed (offset changes) | attach s | load avg |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|".into()
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_else(|| "na".into())
}

fn loss(received: u64, published: u64) -> f64 {
    if published == 0 { 100.0 } else { (100.0 * (1.0 - received as f64 / published as f64)).max(0.0) }
}

fn find<'a>(all: &'a [Figures], target: &str, n: usize) -> Option<&'a Figures> {
    all.iter().find(|f| f.target == target && f.n == n)
}

/// The largest N measured with < 0.5 % loss and p99 < 50 ms.
pub fn knee(all: &[Figures], target: &str) -> Option<usize> {
    all.iter().filter(|f| f.target == target && f.healthy()).map(|f| f.n).max()
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "na".into(),
    }
}

pub fn print(all: &[Figures], ns: &[usize]) {
    println!("{}", header());
    for f in all {
        println!("{}", f.row());
    }
    println!();
    println!("| N | classcast us/pkt | janus us/pkt | floor us/pkt | janus/classcast | classcast/floor | classcast loss % / p99 ms | janus loss % / p99 ms |");
    println!("|---|---|---|---|---|---|---|---|");
    let us = |t: &str, n: usize| find(all, t, n).and_then(|f| f.us_per_pkt);
    let lp = |t: &str, n: usize| find(all, t, n).map(|f| format!("{:.3} / {}", f.loss_pct, opt(f.p99_ms, 2))).unwrap_or_else(|| "na".into());
    for &n in ns {
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} |",
            opt(us("classcast", n), 2),
            opt(us("janus", n), 2),
            opt(us("floor", n), 2),
            ratio(us("janus", n), us("classcast", n)),
            ratio(us("classcast", n), us("floor", n)),
            lp("classcast", n),
            lp("janus", n)
        );
    }
    let k = |t: &str| knee(all, t).map(|k| k.to_string()).unwrap_or_else(|| "none".into());
    println!();
    println!("knee (largest N measured with < 0.5 % loss and p99 < 50 ms): classcast {} | janus {} | floor {}", k("classcast"), k("janus"), k("floor"));
    let n = if ns.contains(&200) { 200 } else { ns.iter().copied().max().unwrap_or(0) };
    let c = find(all, "classcast", n);
    println!(
        "summary n={n} janus_over_classcast={} classcast_over_floor={} p99_ms={} loss_pct={}",
        ratio(us("janus", n), us("classcast", n)),
        ratio(us("classcast", n), us("floor", n)),
        opt(c.and_then(|f| f.p99_ms), 2),
        c.map(|f| format!("{:.3}", f.loss_pct)).unwrap_or_else(|| "na".into())
    );
}

/// The smoke check: every subscriber connected and every run delivered media.
pub fn check(all: &[Figures]) -> Result<()> {
    for f in all {
        if f.connected < f.n || f.published == 0 || f.forwarded == 0 || f.loss_max_pct >= 100.0 || f.us_per_pkt.is_none() {
            bail!("{} at n={} did not deliver media to every subscriber: {}", f.target, f.n, f.row());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(target: &str, n: usize, loss_pct: f64, p99: f64, us: f64) -> Figures {
        Figures::new(target, n, 100, &[], &Hist::new(), 0.0, 0.0, 0, 0, 0.0, String::new()).with(loss_pct, p99, us)
    }

    impl Figures {
        fn with(mut self, loss_pct: f64, p99: f64, us: f64) -> Figures {
            self.loss_pct = loss_pct;
            self.p99_ms = Some(p99);
            self.us_per_pkt = Some(us);
            self
        }
    }

    #[test]
    fn knee_is_the_largest_healthy_n() {
        let all = vec![fig("classcast", 50, 0.0, 3.0, 10.0), fig("classcast", 100, 0.4, 49.0, 10.0), fig("classcast", 200, 0.6, 5.0, 10.0)];
        assert_eq!(knee(&all, "classcast"), Some(100));
        assert_eq!(knee(&all, "janus"), None);
    }

    #[test]
    fn a_subscriber_that_got_nothing_is_total_loss() {
        let subs = vec![SubStats { received: 100, connected: true, ..Default::default() }, SubStats::default()];
        let f = Figures::new("floor", 2, 100, &subs, &Hist::new(), 1.0, 0.0, 0, 0, 0.0, String::new());
        assert_eq!((f.loss_pct, f.loss_max_pct, f.lossy_subs, f.connected), (50.0, 100.0, 1, 1));
        assert!(check(&[f]).is_err());
    }
}
