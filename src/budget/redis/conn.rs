//! How the budgets reach Redis: one server (`redis://`, `rediss://`) or a Redis Cluster
//! (`redis+cluster://`, `rediss+cluster://`, one or more seed nodes), behind one connection
//! type that runs the script and pipelines of it.
//!
//! Every key of a prefix carries the hash tag `{prefix}`, so on a cluster all of a call's
//! keys (and every key the script finds) are in one slot: the redis crate's cluster client
//! routes each script call to the slot's primary, follows `MOVED` / `ASK` redirections and
//! refreshes its slot map after a failover.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{
    ConnectionLike, ErrorKind, FromRedisValue, RedisResult, Script, ScriptInvocation,
    ServerErrorKind,
};

use crate::error::{Error, Result};

/// A cluster client's retries of one request (redirections, a failover in progress): few and
/// short, so a call waits about as long as for one server, not the crate's 16 retries of up to
/// 655 s.
const CLUSTER_RETRIES: u32 = 3;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 10;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 100;

/// Where the budgets are kept.
pub(super) enum Client {
    Server(redis::Client),
    Cluster(ClusterClient),
}

/// One connection of the pool.
pub(super) enum Conn {
    Server(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

/// The node URLs of a cluster URL (`redis+cluster://[user:password@]host:port[,host:port…]
/// [/0]`), each `redis://[user:password@]host:port` (`rediss://` for `rediss+cluster`), or
/// `None` when `url` names one server. Errors name the URL as `shown`.
fn cluster_nodes(url: &str, shown: &str) -> Result<Option<Vec<String>>> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(None);
    };
    let node_scheme = match scheme.to_ascii_lowercase().as_str() {
        "redis+cluster" => "redis",
        "rediss+cluster" => "rediss",
        _ => return Ok(None),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (auth, hosts) = match authority.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), authority),
    };
    let bad = |why: &str| {
        Error::InvalidArgument(format!(
            "budget_store='{shown}' {why}: write {scheme}://[user:password@]host:port[,host:port…]"
        ))
    };
    let path = tail.split(['?', '#']).next().unwrap_or("");
    if !matches!(path, "" | "/" | "/0") {
        return Err(bad(
            "names a database other than 0, which a Redis Cluster does not have",
        ));
    }
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{node_scheme}://{auth}{h}{}", &tail[path.len()..]))
        .collect();
    if nodes.is_empty() {
        return Err(bad("names no node"));
    }
    Ok(Some(nodes))
}

impl Client {
    /// The client for `url` (`shown`: the URL without its password, for errors). Nothing is
    /// sent yet.
    pub(super) fn open(url: &str, shown: &str, timeout: Duration) -> Result<Client> {
        let invalid = |e: redis::RedisError| {
            Error::InvalidArgument(format!(
                "budget_store='{shown}' is not a Redis URL llmledger can use ({}): use \
                 redis://[user:password@]host:port/db, or redis+cluster://host:port[,host:port…] \
                 for a Redis Cluster (rediss:// and rediss+cluster:// with TLS)",
                e.detail().unwrap_or(e.category())
            ))
        };
        match cluster_nodes(url, shown)? {
            // `rediss://` may name its own CA and client certificate (`sslrootcert=`, ...).
            None => crate::tls::redis_client(url)
                .map(Client::Server)
                .map_err(invalid),
            Some(nodes) => {
                let mut bases = Vec::with_capacity(nodes.len());
                let mut certs = None;
                for n in &nodes {
                    let (base, c) = crate::tls::redis_tls(n).map_err(invalid)?;
                    bases.push(base);
                    certs = c;
                }
                let mut builder = ClusterClient::builder(bases)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(CLUSTER_RETRIES)
                    .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
                    .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS);
                if let Some(c) = certs {
                    builder = builder.certs(c);
                }
                builder.build().map(Client::Cluster).map_err(invalid)
            }
        }
    }

    /// A new connection whose requests time out after `timeout`.
    pub(super) fn connect(&self, timeout: Duration) -> RedisResult<Conn> {
        match self {
            Client::Server(c) => {
                let c = c.get_connection_with_timeout(timeout)?;
                c.set_read_timeout(Some(timeout))?;
                c.set_write_timeout(Some(timeout))?;
                Ok(Conn::Server(c))
            }
            Client::Cluster(c) => {
                let c = c.get_connection()?;
                c.set_read_timeout(Some(timeout))?;
                c.set_write_timeout(Some(timeout))?;
                Ok(Conn::Cluster(Box::new(c)))
            }
        }
    }
}

impl Conn {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Server(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }

    /// Runs one script call (loading the script first if Redis has forgotten it): its reply
    /// (one operation's words, or a batch's replies).
    pub(super) fn invoke<T: FromRedisValue>(
        &mut self,
        inv: &ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        inv.invoke(self.like())
    }

    /// Runs `calls` in one pipeline: each call's own reply or error. A call the server does
    /// not run (its script forgotten by a restarted Redis) is an error of its own on one
    /// server; on a cluster the script is loaded on every primary and the pipeline sent once
    /// more (every operation of the script is idempotent by run id, so a call that did run is
    /// not counted twice).
    pub(super) fn pipeline<T: FromRedisValue>(
        &mut self,
        calls: &[ScriptInvocation<'_>],
        script: &Script,
    ) -> RedisResult<Vec<RedisResult<T>>> {
        match self {
            Conn::Server(c) => {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for inv in calls {
                    pipe.invoke_script(inv);
                }
                pipe.query(c)
            }
            Conn::Cluster(c) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for inv in calls {
                    pipe.invoke_script(inv);
                }
                let replies: RedisResult<Vec<T>> = match pipe.query(c) {
                    Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        script.load(c.as_mut())?;
                        pipe.query(c)
                    }
                    r => r,
                };
                Ok(replies?.into_iter().map(Ok).collect())
            }
        }
    }
}

/// What to add to an error's text: how to name a cluster when a single-server URL reached a
/// node of one.
pub(super) fn hint(e: &redis::RedisError) -> &'static str {
    if matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask)
    ) {
        "; this Redis is a node of a Redis Cluster: name it as \
         budget_store='redis+cluster://host:port[,host:port…]'"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_urls_name_their_nodes() {
        assert_eq!(cluster_nodes("redis://h:1/0", "x").unwrap(), None);
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@a:7000,b:7001", "x").unwrap(),
            Some(vec![
                "redis://:pw@a:7000".to_string(),
                "redis://:pw@b:7001".to_string()
            ])
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://a:7000/0?protocol=resp3", "x").unwrap(),
            Some(vec!["rediss://a:7000?protocol=resp3".to_string()])
        );
        let e = cluster_nodes("redis+cluster://a:7000/2", "redis+cluster://a:7000/2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("database other than 0"), "{e}");
        let e = cluster_nodes("redis+cluster://:pw@", "redis+cluster://***@")
            .unwrap_err()
            .to_string();
        assert!(e.contains("names no node") && !e.contains("pw"), "{e}");
    }
}
