//! Prometheus metrics: request counts and latencies per route pattern,
//! upload and publish counters. Rendered in the text exposition format.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// (method, route pattern, status) -> (count, seconds in total).
type RequestCounts = BTreeMap<(String, String, u16), (u64, f64)>;

/// Counters shared by every worker.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<RequestCounts>,
    uploads: AtomicU64,
    upload_bytes: AtomicU64,
    publishes: AtomicU64,
    /// Microseconds.
    publish_time: AtomicU64,
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            let e = m
                .entry((method.to_string(), route.to_string(), status))
                .or_default();
            e.0 += 1;
            e.1 += took.as_secs_f64();
        }
    }

    pub fn upload(&self, bytes: u64) {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        self.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn publish(&self, took: Duration) {
        self.publishes.fetch_add(1, Ordering::Relaxed);
        self.publish_time
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn render(&self, jobs: &[(&str, usize)]) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP repokit_http_requests_total HTTP requests by method, route and status.\n# TYPE repokit_http_requests_total counter"
        );
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        for ((method, route, status), (n, _)) in &requests {
            let _ = writeln!(
                out,
                "repokit_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP repokit_http_request_seconds_total Time spent answering, by method, route and status.\n# TYPE repokit_http_request_seconds_total counter"
        );
        for ((method, route, status), (_, secs)) in &requests {
            let _ = writeln!(
                out,
                "repokit_http_request_seconds_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {secs:.6}",
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP repokit_uploads_total Package files uploaded.\n# TYPE repokit_uploads_total counter\nrepokit_uploads_total {}",
            self.uploads.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP repokit_upload_bytes_total Bytes of package files uploaded.\n# TYPE repokit_upload_bytes_total counter\nrepokit_upload_bytes_total {}",
            self.upload_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP repokit_publishes_total Publish requests answered.\n# TYPE repokit_publishes_total counter\nrepokit_publishes_total {}",
            self.publishes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP repokit_publish_seconds_total Time spent publishing.\n# TYPE repokit_publish_seconds_total counter\nrepokit_publish_seconds_total {:.6}",
            self.publish_time.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP repokit_jobs Background jobs by state.\n# TYPE repokit_jobs gauge"
        );
        for (state, n) in jobs {
            let _ = writeln!(out, "repokit_jobs{{state=\"{state}\"}} {n}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_route() {
        let m = Metrics::default();
        m.request(
            "GET",
            "/repos/{name}/{path:.*}",
            200,
            Duration::from_millis(2),
        );
        m.request(
            "GET",
            "/repos/{name}/{path:.*}",
            200,
            Duration::from_millis(3),
        );
        m.upload(10);
        let text = m.render(&[("running", 1)]);
        assert!(text.contains(
            "repokit_http_requests_total{method=\"GET\",route=\"/repos/{name}/{path:.*}\",status=\"200\"} 2"
        ));
        assert!(text.contains("repokit_upload_bytes_total 10"));
        assert!(text.contains("repokit_jobs{state=\"running\"} 1"));
    }
}
