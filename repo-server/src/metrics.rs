//! Prometheus metrics: request counts and time per route of the route
//! table and status, upload and publish counters. Lock-free counters,
//! rendered in the text exposition format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The statuses counted one by one; any other is counted as `other`.
const STATUSES: [u16; 17] = [
    200, 201, 202, 206, 304, 400, 401, 403, 404, 405, 409, 413, 416, 422, 500, 503, 0,
];

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len() - 1)
}

/// Counters shared by every worker.
pub struct Metrics {
    /// The router's routes as (method, path template), in its order: a
    /// request is counted by its route's index here.
    routes: Vec<(String, &'static str)>,
    /// Per route (the last slot: no route matched) and status: count and
    /// microseconds spent.
    requests: Vec<[(AtomicU64, AtomicU64); STATUSES.len()]>,
    uploads: AtomicU64,
    upload_bytes: AtomicU64,
    publishes: AtomicU64,
    /// Microseconds.
    publish_time: AtomicU64,
}

impl Metrics {
    /// Counters for the router's routes, (method, path template) each.
    pub fn new(routes: impl IntoIterator<Item = (String, &'static str)>) -> Self {
        let routes: Vec<_> = routes.into_iter().collect();
        Metrics {
            requests: (0..=routes.len())
                .map(|_| std::array::from_fn(|_| (AtomicU64::new(0), AtomicU64::new(0))))
                .collect(),
            uploads: AtomicU64::new(0),
            upload_bytes: AtomicU64::new(0),
            publishes: AtomicU64::new(0),
            publish_time: AtomicU64::new(0),
            routes,
        }
    }

    /// Counts a request answered by route `route` (an index into the
    /// routes it was made with; `None` when no route matched).
    pub fn request(&self, route: Option<usize>, status: u16, took: Duration) {
        let last = self.requests.len() - 1;
        let r = route.filter(|&i| i < last).unwrap_or(last);
        let (n, t) = &self.requests[r][status_slot(status)];
        n.fetch_add(1, Ordering::Relaxed);
        t.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
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

    /// The exposition text; `ref_retries` is the store's count of ref
    /// updates written again after another writer got in first.
    pub fn render(&self, jobs: &[(&str, usize)], ref_retries: u64) -> String {
        use std::fmt::Write;
        let mut counts = String::new();
        let mut times = String::new();
        for (r, per_status) in self.requests.iter().enumerate() {
            let (method, route) = self
                .routes
                .get(r)
                .map(|(m, p)| (m.to_uppercase(), *p))
                .unwrap_or_else(|| ("-".into(), "unmatched"));
            for (slot, (n, t)) in per_status.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = match STATUSES[slot] {
                    0 => "other".to_string(),
                    s => s.to_string(),
                };
                let labels = format!(
                    "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                    escape(route)
                );
                let _ = writeln!(counts, "repokit_http_requests_total{{{labels}}} {n}");
                let secs = t.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(
                    times,
                    "repokit_http_request_seconds_total{{{labels}}} {secs:.6}"
                );
            }
        }
        let mut out = String::new();
        let _ = write!(
            out,
            "# HELP repokit_http_requests_total HTTP requests by method, route and status.\n# TYPE repokit_http_requests_total counter\n{counts}"
        );
        let _ = write!(
            out,
            "# HELP repokit_http_request_seconds_total Time spent answering, by method, route and status.\n# TYPE repokit_http_request_seconds_total counter\n{times}"
        );
        let counters = [
            (
                "repokit_uploads_total",
                "Package files uploaded.",
                self.uploads.load(Ordering::Relaxed) as f64,
            ),
            (
                "repokit_upload_bytes_total",
                "Bytes of package files uploaded.",
                self.upload_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "repokit_publishes_total",
                "Publish requests answered.",
                self.publishes.load(Ordering::Relaxed) as f64,
            ),
            (
                "repokit_publish_seconds_total",
                "Time spent publishing.",
                self.publish_time.load(Ordering::Relaxed) as f64 / 1e6,
            ),
            (
                "repokit_ref_update_retries_total",
                "Repository ref updates retried because another writer (a server sharing the bucket) changed the ref first.",
                ref_retries as f64,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
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
        let m = Metrics::new([
            ("post".to_string(), "/api/v1/repos"),
            ("get".to_string(), "/repos/{name}/{path:.*}"),
        ]);
        let live = 1;
        m.request(Some(live), 200, Duration::from_millis(2));
        m.request(Some(live), 200, Duration::from_millis(3));
        m.request(None, 404, Duration::from_millis(1));
        m.upload(10);
        let text = m.render(&[("running", 1)], 0);
        assert!(text.contains(
            "repokit_http_requests_total{method=\"GET\",route=\"/repos/{name}/{path:.*}\",status=\"200\"} 2"
        ), "{text}");
        assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"));
        assert!(text.contains("repokit_upload_bytes_total 10"));
        assert!(text.contains("repokit_jobs{state=\"running\"} 1"));
    }
}
