//! The webhook transport: budget alerts POSTed to a URL (Slack-compatible) from a background
//! thread. The alert itself is `budget::Alert`.
//!
//! An alert must never slow or break an LLM call: [`Webhook::send`] only puts the alert's
//! JSON on a bounded queue and returns at once (a full queue drops the alert and counts it).
//! One thread owns the queue and POSTs each alert with a timeout, retrying connection
//! errors, timeouts, 429 and 5xx with exponential backoff; other answers are final.
//! Failures go to a reporting sink (the binding routes it to the `llmledger` logger).
//!
//! The URL is a secret (Slack's carries a token in its path): no message ever names more
//! than its scheme and host.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::budget::Alert;
use crate::error::{Error, Result};

/// Where failures and drops are reported (a message without the URL's secret parts).
pub type Report = Arc<dyn Fn(String) + Send + Sync>;

/// How the webhook posts.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Alerts waiting to be sent at most; more are dropped (default 1000).
    pub queue: usize,
    /// The limit on one POST, connect to answer (default 5 s).
    pub timeout: Duration,
    /// Retries after a failed attempt (default 3: 4 attempts in all).
    pub retries: u32,
    /// The wait before the first retry, doubled before each next (default 0.5 s: then 1 s,
    /// 2 s).
    pub backoff: Duration,
    /// Use the `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` environment variables (default true).
    pub env_proxy: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            queue: 1000,
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(500),
            env_proxy: true,
        }
    }
}

/// Counts of what happened to the alerts given to a webhook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Delivered (the endpoint answered 2xx).
    pub sent: u64,
    /// Given up on after the retries, or refused by the endpoint.
    pub failed: u64,
    /// Dropped because the queue was full or the webhook closed.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// Alerts queued or being posted, to wait on in `flush`.
///
/// std's Mutex and Condvar, not parking_lot's: a thread waiting in `flush` when the process
/// forks stays in parking_lot's process-wide table of parked threads, and the child's own
/// waits walk that table (the settler's crash in a forked child, `budget::redis::settler`).
/// std's futex-based primitives keep no such table.
#[derive(Default)]
struct Pending {
    count: std::sync::Mutex<usize>,
    done: std::sync::Condvar,
}

impl Pending {
    fn count(&self) -> std::sync::MutexGuard<'_, usize> {
        // A count is valid whatever panicked while holding it.
        self.count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self) {
        *self.count() += 1;
    }

    fn finish(&self) {
        let mut n = self.count();
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.done.notify_all();
        }
    }

    /// Waits until nothing is pending or `timeout` passes; true if nothing is pending.
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = self.count();
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = match self.done.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

/// A webhook that alerts are posted to from a background thread.
pub struct Webhook {
    url: String,
    config: WebhookConfig,
    /// The [`crate::fork::generation`] whose alert thread this is.
    generation: u64,
    tx: Mutex<Option<SyncSender<String>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    pending: Arc<Pending>,
    target: String,
    report: Report,
    /// The webhook of a child forked from this process (its own thread and counters), once
    /// the child used it: the alert thread does not survive a fork.
    child: OnceLock<Box<Webhook>>,
}

impl Webhook {
    /// A webhook to `url` (`http://` or `https://`) with the default configuration.
    pub fn new(url: &str, report: Report) -> Result<Webhook> {
        Webhook::with_config(url, WebhookConfig::default(), report)
    }

    /// A webhook to `url` configured by `config`; starts its thread.
    pub fn with_config(url: &str, config: WebhookConfig, report: Report) -> Result<Webhook> {
        let target = redact(url).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "alert_webhook must be an http:// or https:// URL with a host, got '{}'",
                // Even a malformed URL may hold a token: show only its start.
                url.chars().take(12).collect::<String>() + "..."
            ))
        })?;
        let w = Webhook::start(url, target, config, report, crate::fork::generation());
        if w.thread.lock().is_none() {
            return Err(Error::InvalidArgument(
                "cannot start the alert thread".into(),
            ));
        }
        Ok(w)
    }

    /// Starts the alert thread of generation `generation`; a webhook whose thread could not
    /// start drops every alert (and says so).
    fn start(
        url: &str,
        target: String,
        config: WebhookConfig,
        report: Report,
        generation: u64,
    ) -> Webhook {
        let (tx, rx) = sync_channel::<String>(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let pending = Arc::new(Pending::default());
        let worker = Worker {
            url: url.to_string(),
            target: target.clone(),
            config: config.clone(),
            counters: counters.clone(),
            pending: pending.clone(),
            report: report.clone(),
        };
        let thread = thread::Builder::new()
            .name("llmledger-alerts".into())
            .spawn(move || worker.run(&rx))
            .ok();
        Webhook {
            url: url.to_string(),
            config,
            generation,
            tx: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
            counters,
            pending,
            target,
            report,
            child: OnceLock::new(),
        }
    }

    /// This process's webhook: in a forked child, its own, started on first use.
    fn here(&self) -> &Webhook {
        let generation = crate::fork::generation();
        let mut w = self;
        while w.generation != generation {
            w = w.child.get_or_init(|| {
                Box::new(Webhook::start(
                    &self.url,
                    self.target.clone(),
                    self.config.clone(),
                    self.report.clone(),
                    generation,
                ))
            });
        }
        w
    }

    /// This process's webhook if it has used it yet (a forked child has not until its first
    /// alert).
    fn find(&self) -> Option<&Webhook> {
        let generation = crate::fork::generation();
        let mut w = self;
        while w.generation != generation {
            w = w.child.get()?;
        }
        Some(w)
    }

    /// The URL as messages show it: scheme and host only.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Queues an alert; never blocks. Returns false when it was dropped (queue full, or the
    /// webhook closed); the first drop after a delivery is reported.
    pub fn send(&self, alert: &Alert) -> bool {
        self.send_json(alert.to_json().to_string())
    }

    /// Queues a JSON body; never blocks. See [`Webhook::send`].
    pub fn send_json(&self, body: String) -> bool {
        let w = self.here();
        let refused = {
            let tx = w.tx.lock();
            match tx.as_ref() {
                None => Some("the webhook is closed"),
                Some(tx) => {
                    w.pending.add();
                    match tx.try_send(body) {
                        Ok(()) => None,
                        Err(TrySendError::Full(_)) => {
                            w.pending.finish();
                            Some("the alert queue is full")
                        }
                        Err(TrySendError::Disconnected(_)) => {
                            w.pending.finish();
                            Some("the alert thread has stopped")
                        }
                    }
                }
            }
        };
        // Reported after the lock is released: the report runs Python (logging).
        match refused {
            None => true,
            Some(why) => {
                w.drop_one(why);
                false
            }
        }
    }

    fn drop_one(&self, why: &str) {
        let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Report the first drop and then every 100th: a flood of drops must not become a
        // flood of log lines.
        if n == 1 || n.is_multiple_of(100) {
            (self.report)(format!(
                "budget alert to {} dropped: {why} ({n} dropped so far)",
                self.target
            ));
        }
    }

    /// Waits until every alert this process queued has been delivered or given up on, at
    /// most `timeout`. True when nothing is left.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.find().is_none_or(|w| w.pending.wait(timeout))
    }

    /// Stops taking alerts, lets the thread deliver what is queued for at most `timeout`,
    /// then lets it go (a thread still retrying ends with the process). True when everything
    /// queued was delivered or given up on in time. Later `send`s drop.
    pub fn close(&self, timeout: Duration) -> bool {
        // In a forked child that never sent, this starts a thread only to stop it: later
        // sends must drop.
        let w = self.here();
        // Dropping the sender ends the thread's loop once the queue is empty.
        let tx = w.tx.lock().take();
        drop(tx);
        let done = w.pending.wait(timeout);
        let thread = w.thread.lock().take();
        if let Some(t) = thread {
            if done {
                // The queue is empty, so the thread is returning: this join is immediate.
                let _ = t.join();
            }
        }
        done
    }

    /// What happened to this process's alerts so far (a forked child counts from zero).
    pub fn stats(&self) -> WebhookStats {
        let Some(c) = self.find().map(|w| &w.counters) else {
            return WebhookStats::default();
        };
        WebhookStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let tx = self.tx.get_mut().take();
        if self.generation == crate::fork::generation() {
            // Never hold up the application's exit for alerts: hand the thread what is
            // queued and let it go.
            drop(tx);
        } else {
            // A forked child: the queue and thread are the parent's; touching them could wait
            // on a lock held by a thread that is gone.
            std::mem::forget(tx);
            std::mem::forget(self.thread.get_mut().take());
        }
    }
}

struct Worker {
    url: String,
    target: String,
    config: WebhookConfig,
    counters: Arc<Counters>,
    pending: Arc<Pending>,
    report: Report,
}

/// How one attempt ended.
enum Outcome {
    Delivered,
    Retry(String),
    Final(String),
}

impl Worker {
    fn run(&self, rx: &Receiver<String>) {
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(self.config.timeout))
            .http_status_as_error(false)
            // A webhook that redirects is misconfigured; following it would send the alert
            // (and a token in the path) elsewhere.
            .max_redirects(0)
            .user_agent(concat!("llmledger/", env!("CARGO_PKG_VERSION")));
        if !self.config.env_proxy {
            builder = builder.proxy(None);
        }
        let agent: ureq::Agent = builder.build().into();
        while let Ok(body) = rx.recv() {
            self.deliver(&agent, &body);
            self.pending.finish();
        }
    }

    fn deliver(&self, agent: &ureq::Agent, body: &str) {
        let mut wait = self.config.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(agent, body) {
                Outcome::Delivered => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Outcome::Retry(_) if attempt <= self.config.retries => {
                    thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
                Outcome::Retry(why) | Outcome::Final(why) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    (self.report)(format!(
                        "budget alert to {} failed after {attempt} attempt{}: {why}",
                        self.target,
                        if attempt == 1 { "" } else { "s" }
                    ));
                    return;
                }
            }
        }
    }

    fn attempt(&self, agent: &ureq::Agent, body: &str) -> Outcome {
        let r = agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(body);
        match r {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Outcome::Delivered,
                    429 | 500..=599 => Outcome::Retry(format!("HTTP {status}")),
                    _ => Outcome::Final(format!("HTTP {status}")),
                }
            }
            Err(e) => {
                let why = self.scrub(&e.to_string());
                match e {
                    ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed => Outcome::Retry(why),
                    _ => Outcome::Final(why),
                }
            }
        }
    }

    /// An error text without the URL's path, query or credentials.
    fn scrub(&self, text: &str) -> String {
        let mut t = text.replace(&self.url, &self.target);
        if let Some(rest) = self.url.find("://").map(|i| &self.url[i + 3..]) {
            if let Some(p) = rest.find('/') {
                let path = &rest[p..];
                if path.len() > 1 {
                    t = t.replace(path, "/...");
                }
            }
        }
        t
    }
}

/// `scheme://host[:port]` of an http(s) URL (credentials, path and query removed); `None`
/// when it is not one.
pub fn redact(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    /// One request the test server received.
    struct Received {
        head: String,
        body: String,
    }

    /// A server on 127.0.0.1 answering one connection per status in `statuses`, then
    /// stopping; what it received comes out of the channel.
    fn server(statuses: Vec<u16>) -> (String, mpsc::Receiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for status in statuses {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                if let Some(r) = read_request(&stream) {
                    // Recorded before answering, so a client that has its answer can count.
                    let _ = tx.send(r);
                    let mut s = &stream;
                    let _ = write!(
                        s,
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                }
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn read_request(stream: &TcpStream) -> Option<Received> {
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        Some(Received {
            head,
            body: String::from_utf8(body).ok()?,
        })
    }

    fn fast() -> WebhookConfig {
        WebhookConfig {
            queue: 16,
            timeout: Duration::from_secs(2),
            retries: 3,
            backoff: Duration::from_millis(10),
            env_proxy: false,
        }
    }

    fn sink() -> (Report, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        (Arc::new(move |m| l.lock().push(m)), log)
    }

    fn alert() -> Alert {
        Alert {
            kind: crate::budget::AlertKind::Threshold,
            budget: "day per user_id".into(),
            scope: "user_id".into(),
            value: Some("alice".into()),
            threshold: "0.8".parse().unwrap(),
            spent: "8.03".parse().unwrap(),
            reserved: "0.5".parse().unwrap(),
            limit: "10".parse().unwrap(),
            window: "day".into(),
            action: "block",
            resets_at: chrono::DateTime::from_timestamp(1_795_478_400, 0),
            time: chrono::DateTime::from_timestamp(1_795_400_000, 0).unwrap(),
        }
    }

    #[test]
    fn posts_json_to_a_local_server() {
        let (url, rx) = server(vec![200]);
        let (report, log) = sink();
        let w = Webhook::with_config(&format!("{url}/hook"), fast(), report).unwrap();
        assert!(w.send(&alert()));
        let r = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(r.head.starts_with("POST /hook HTTP/1.1"), "{}", r.head);
        assert!(r
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json"));
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["budget"], "day per user_id");
        assert_eq!(v["value"], "alice");
        assert_eq!(v["threshold"], "0.8");
        assert_eq!(v["spent"], "8.03");
        assert_eq!(v["reserved"], "0.5");
        assert_eq!(v["event"], "threshold");
        assert_eq!(v["limit"], "10");
        assert_eq!(v["window"], "day");
        assert!(v["text"].as_str().unwrap().contains("reached 80%"));
        assert!(w.flush(Duration::from_secs(10)));
        assert_eq!(w.stats().sent, 1);
        assert!(w.close(Duration::from_secs(5)));
        assert!(log.lock().is_empty(), "{:?}", log.lock());
        assert!(!w.send(&alert()));
    }

    #[test]
    fn retries_a_server_error_then_delivers() {
        let (url, rx) = server(vec![500, 503, 200]);
        let (report, log) = sink();
        let w = Webhook::with_config(&url, fast(), report).unwrap();
        w.send(&alert());
        assert!(w.flush(Duration::from_secs(10)));
        assert_eq!(rx.try_iter().count(), 3);
        assert_eq!(
            w.stats(),
            WebhookStats {
                sent: 1,
                failed: 0,
                dropped: 0
            }
        );
        assert!(log.lock().is_empty());
    }

    #[test]
    fn client_errors_are_not_retried() {
        let (url, rx) = server(vec![404, 200]);
        let (report, log) = sink();
        let w =
            Webhook::with_config(&format!("{url}/services/T0/B0/SECRET"), fast(), report).unwrap();
        w.send(&alert());
        assert!(w.flush(Duration::from_secs(10)));
        assert_eq!(rx.try_iter().count(), 1);
        assert_eq!(w.stats().failed, 1);
        let log = log.lock();
        assert_eq!(log.len(), 1);
        assert!(
            log[0].contains("failed after 1 attempt: HTTP 404"),
            "{}",
            log[0]
        );
        assert!(!log[0].contains("SECRET"));
    }

    #[test]
    fn a_dead_url_never_slows_send_and_is_reported_without_its_secret() {
        // Bind then drop: nothing listens on the port, connections are refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://user:pw@127.0.0.1:{port}/services/T0/B0/SECRETTOKEN?x=1");
        let (report, log) = sink();
        let w = Webhook::with_config(&url, fast(), report).unwrap();
        let t = Instant::now();
        for _ in 0..5 {
            assert!(w.send(&alert()));
        }
        // Blocking sends would take at least 5 x 70 ms of backoff alone.
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        assert!(w.flush(Duration::from_secs(20)));
        assert_eq!(w.stats().failed, 5);
        let log = log.lock();
        assert_eq!(log.len(), 5);
        for m in log.iter() {
            assert!(
                m.starts_with(&format!(
                    "budget alert to http://127.0.0.1:{port} failed after 4 attempts"
                )),
                "{m}"
            );
            assert!(
                !m.contains("SECRETTOKEN") && !m.contains("pw") && !m.contains("x=1"),
                "{m}"
            );
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        // A server that accepts and never answers keeps the thread busy on the first alert.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (report, log) = sink();
        let config = WebhookConfig {
            queue: 2,
            timeout: Duration::from_millis(300),
            retries: 0,
            ..fast()
        };
        let w = Webhook::with_config(&url, config, report).unwrap();
        let accepted: Vec<bool> = (0..10).map(|_| w.send(&alert())).collect();
        let ok = accepted.iter().filter(|a| **a).count();
        // Two queued, and maybe one already taken by the thread.
        assert!((2..=3).contains(&ok), "{accepted:?}");
        assert!(w.flush(Duration::from_secs(10)));
        let s = w.stats();
        assert_eq!(s.dropped, 10 - ok as u64);
        assert_eq!(s.failed, ok as u64);
        assert!(log.lock()[0].contains("dropped: the alert queue is full (1 dropped so far)"));
        drop(listener);
    }

    #[test]
    fn a_drop_is_reported_with_no_lock_held() {
        // The report runs Python (logging): with the sender's lock held, a thread waiting for
        // that lock while holding the GIL would deadlock with it.
        let cell: Arc<OnceLock<std::sync::Weak<Webhook>>> = Arc::new(OnceLock::new());
        let free = Arc::new(Mutex::new(Vec::new()));
        let (c, f) = (cell.clone(), free.clone());
        let report: Report = Arc::new(move |_| {
            let w = c.get().and_then(std::sync::Weak::upgrade).unwrap();
            f.lock().push(w.tx.try_lock().is_some());
        });
        let w = Arc::new(Webhook::with_config("http://127.0.0.1:9", fast(), report).unwrap());
        cell.set(Arc::downgrade(&w)).unwrap();
        w.close(Duration::from_secs(5));
        assert!(!w.send(&alert()));
        assert_eq!(*free.lock(), vec![true]);
    }

    #[test]
    fn a_forked_child_posts_from_its_own_thread() {
        let (url, rx) = server(vec![200, 200]);
        let (report, log) = sink();
        let w = Webhook::with_config(&url, fast(), report).unwrap();
        assert!(w.send(&alert()));
        assert!(w.flush(Duration::from_secs(10)));
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::fork::tests::simulate_fork();
                assert_eq!(w.stats(), WebhookStats::default());
                assert!(w.send(&alert()));
                assert!(w.close(Duration::from_secs(10)));
                assert_eq!(w.stats().sent, 1);
            });
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).iter().count(), 1);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).iter().count(), 1);
        // The child's close left the parent's webhook open.
        assert_eq!(w.stats().sent, 1);
        assert!(w.close(Duration::from_secs(5)));
        assert!(log.lock().is_empty(), "{:?}", log.lock());
    }

    #[test]
    fn redacts_to_scheme_and_host() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T0/B0/XYZ").as_deref(),
            Some("https://hooks.slack.com")
        );
        assert_eq!(
            redact("http://u:p@example.com:8080?token=1").as_deref(),
            Some("http://example.com:8080")
        );
        assert_eq!(redact("ftp://example.com"), None);
        assert_eq!(redact("hooks.slack.com/x"), None);
        let (report, _) = sink();
        let e = Webhook::new("hooks.slack.com/services/SECRET", report)
            .err()
            .unwrap()
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
    }
}
