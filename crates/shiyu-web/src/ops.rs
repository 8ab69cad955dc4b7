//! Operations: liveness and readiness, Prometheus metrics, request logging, and the per-address rate limit
//! of the public endpoints.

use crate::errors::WebError;
use crate::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Bucket {
    tokens: f64,
    refilled: Option<Instant>,
}

/// What is known of one route: requests by method and status, and how long they took.
#[derive(Debug, Default)]
struct RouteStats {
    requests: HashMap<(Method, u16), u64>,
    latency: Histogram,
}

#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<HashMap<String, RouteStats>>,
    limiter: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Metrics {
    /// One lock and one lookup per request; a route's name is copied only the first time it is seen.
    fn record(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let Ok(mut routes) = self.routes.lock() else { return };
        if !routes.contains_key(route) {
            routes.insert(route.to_string(), RouteStats::default());
        }
        let Some(stats) = routes.get_mut(route) else { return };
        *stats.requests.entry((method.clone(), status)).or_default() += 1;
        let histogram = &mut stats.latency;
        histogram.count += 1;
        histogram.sum += seconds;
        for (slot, bound) in histogram.counts.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *slot += 1;
            }
        }
    }

    /// Takes one token from the address's bucket; false when it is empty.
    fn admit(&self, address: IpAddr, per_minute: u32) -> bool {
        let Ok(mut buckets) = self.limiter.lock() else { return true };
        if buckets.len() > 100_000 {
            // A flood of distinct addresses must not grow memory without bound.
            buckets.clear();
        }
        let now = Instant::now();
        let capacity = f64::from(per_minute.max(1)) / 2.0;
        let bucket = buckets.entry(address).or_insert(Bucket { tokens: capacity, refilled: Some(now) });
        let elapsed = bucket.refilled.map_or(0.0, |t| now.duration_since(t).as_secs_f64());
        bucket.tokens = (bucket.tokens + elapsed * f64::from(per_minute) / 60.0).min(capacity);
        bucket.refilled = Some(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The address a limit counts by: an IPv4 address, or the /64 block of an IPv6 one (one household or
/// machine is given a whole /64, and could otherwise take a new address for every request).
pub fn caller_block(address: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = address else { return address };
    match v6.to_ipv4_mapped() {
        // An IPv4 caller on a dual-stack socket.
        Some(v4) => IpAddr::V4(v4),
        None => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// Counts and times every request, logs it, and limits the public endpoints per address.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // MatchedPath is shared, so keeping it costs no copy of the route's text.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| caller_block(c.0.ip()));
    let limited = route.starts_with("/api/public/") || route == "/api/session";
    let per_minute = state.settings.public_requests_per_minute;
    if limited && per_minute > 0 {
        if let Some(address) = address {
            if !state.metrics.admit(address, per_minute) {
                let response = WebError::refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    "RATE_LIMITED",
                    "请求过于频繁，请稍后再试",
                    "Too many requests; try again shortly",
                )
                .into_response();
                // One request's worth of the bucket refills in this many seconds.
                let mut response = response;
                let wait = (60.0 / f64::from(per_minute.max(1))).ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(wait));
                state.metrics.record(&method, route, 429, started.elapsed().as_secs_f64());
                return response;
            }
        }
    }
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    state.metrics.record(&method, route, status, seconds);
    tracing::debug!(%method, %route, status, ms = seconds * 1000.0, "request");
    response
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: its database answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.last_seq().await {
        Ok(_) => "ready".into_response(),
        Err(error) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("database unavailable: {error}")).into_response()
        }
    }
}

/// Prometheus text format.
/// One unlabelled metric with its help and type lines.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &state.settings.metrics_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compared as hashes, so that neither the time taken nor the lengths tell anything of the token.
        let (given, wanted) =
            (shiyu_auth::sha256_hex(given.as_bytes()), shiyu_auth::sha256_hex(token.as_bytes()));
        if !shiyu_auth::constant_time_eq(given.as_bytes(), wanted.as_bytes()) {
            return WebError::unauthenticated().into_response();
        }
    }
    let mut out = String::new();
    out.push_str("# HELP shiyu_http_requests_total HTTP requests by method, route and status.\n");
    out.push_str("# TYPE shiyu_http_requests_total counter\n");
    let mut durations = String::new();
    durations.push_str("# HELP shiyu_http_request_duration_seconds Time to answer, by route.\n");
    durations.push_str("# TYPE shiyu_http_request_duration_seconds histogram\n");
    if let Ok(routes) = state.metrics.routes.lock() {
        let mut rows: Vec<_> = routes.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        for (route, stats) in rows {
            let mut requests: Vec<_> = stats.requests.iter().collect();
            requests.sort_by(|a, b| (a.0 .0.as_str(), a.0 .1).cmp(&(b.0 .0.as_str(), b.0 .1)));
            for ((method, status), count) in requests {
                let _ = writeln!(out, "shiyu_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}");
            }
            let histogram = &stats.latency;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                let _ = writeln!(
                    durations,
                    "shiyu_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                durations,
                "shiyu_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                durations,
                "shiyu_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                durations,
                "shiyu_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
    }
    out.push_str(&durations);
    out.push_str("# HELP shiyu_cases Cases by state.\n# TYPE shiyu_cases gauge\n");
    match state.store.case_counts_by_status().await {
        Ok(counts) => {
            for (status, count) in counts {
                let _ = writeln!(out, "shiyu_cases{{status=\"{status}\"}} {count}");
            }
        }
        Err(error) => tracing::warn!(%error, "cannot count cases for /metrics"),
    }
    // How far the statistics trail the log: the projection follows within a second, so a growing gap means
    // the follower is stuck (an event it cannot read, or a database it cannot reach).
    match state.store.last_seq().await {
        Ok(seq) => metric(&mut out, "shiyu_log_seq", "gauge", "The event log's last sequence number.", seq),
        Err(error) => tracing::warn!(%error, "cannot read the log's position for /metrics"),
    }
    let folded = state.analytics.read().seq;
    metric(&mut out, "shiyu_analytics_seq", "gauge", "The last event folded into the statistics.", folded);
    let commits = state.store.commit_stats();
    metric(
        &mut out,
        "shiyu_group_commit_transactions_total",
        "counter",
        "Transactions of the group committer.",
        commits.transactions,
    );
    metric(
        &mut out,
        "shiyu_group_commit_writes_total",
        "counter",
        "Writes carried by those transactions.",
        commits.writes,
    );
    metric(
        &mut out,
        "shiyu_group_commit_largest_batch",
        "gauge",
        "Largest batch so far.",
        commits.largest_batch,
    );
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_caller_counts_by_its_block() {
        let block = |text: &str| caller_block(text.parse().unwrap()).to_string();
        assert_eq!(block("2408:8207:1:2:aaaa:bbbb:cccc:dddd"), "2408:8207:1:2::");
        assert_eq!(block("2408:8207:1:2::1"), block("2408:8207:1:2:ffff::9"), "one /64, one caller");
        assert_ne!(block("2408:8207:1:2::1"), block("2408:8207:1:3::1"));
        assert_eq!(block("203.0.113.7"), "203.0.113.7");
        assert_eq!(block("::ffff:203.0.113.7"), "203.0.113.7", "an IPv4 caller on a dual-stack socket");
    }
}
