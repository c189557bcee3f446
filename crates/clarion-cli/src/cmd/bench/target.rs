//! Where the benchmark connects: the URL resolved once, optional source
//! addresses, and opening many connections with bounded concurrency.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clarion_ws::tls::{self, MaybeTlsStream, TlsClientOptions};
use clarion_ws::{ClientStream, CloseCode, Config, WebSocket};
use http::{HeaderMap, Uri};
use tokio::net::TcpSocket;
use tokio::task::JoinSet;

use super::stats::Tally;

/// A benchmark connection: plain TCP for `ws://`, TLS for `wss://`.
pub(crate) type Socket = WebSocket<ClientStream>;

/// A `ws://` or `wss://` server and how to reach it.
#[derive(Debug)]
pub(crate) struct Target {
    uri: Uri,
    addr: SocketAddr,
    /// For `wss://`: the TLS client settings and the name to verify.
    tls: Option<(Arc<rustls::ClientConfig>, String)>,
    config: Config,
    sources: Vec<IpAddr>,
    next_source: AtomicUsize,
}

impl Target {
    /// Parses `url` and resolves its host once (not once per connection);
    /// `tls_options` apply to `wss://`.
    pub(crate) async fn resolve(
        url: &str,
        config: Config,
        sources: Vec<IpAddr>,
        tls_options: &TlsClientOptions,
    ) -> anyhow::Result<Arc<Target>> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("`{url}` is not a URL"))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => anyhow::bail!("`{url}`: the benchmark speaks ws:// and wss:// only"),
        };
        let host = uri.host().with_context(|| format!("`{url}` has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tls = match secure {
            true => Some((tls::client_config(tls_options)?, host.to_owned())),
            false => None,
        };
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve `{host}`"))?
            .next()
            .with_context(|| format!("`{host}` has no address"))?;
        if let Some(bad) = sources.iter().find(|ip| ip.is_ipv4() != addr.is_ipv4()) {
            anyhow::bail!("source address {bad} is not of the same family as {addr}");
        }
        Ok(Arc::new(Target {
            uri,
            addr,
            tls,
            config,
            sources,
            next_source: AtomicUsize::new(0),
        }))
    }

    /// Opens one connection: TCP connect (from the next source address, if
    /// any), then the opening handshake, all within the handshake timeout.
    pub(crate) async fn connect(&self) -> anyhow::Result<Socket> {
        let attempt = async {
            let tcp = self.socket()?.connect(self.addr).await?;
            tcp.set_nodelay(true)?;
            let stream = match &self.tls {
                Some((tls_config, host)) => {
                    let tls = tls::connect_tls(tcp, host, Arc::clone(tls_config)).await?;
                    MaybeTlsStream::Tls(Box::new(tls))
                }
                None => MaybeTlsStream::Plain(tcp),
            };
            let (ws, _response) =
                clarion_ws::client_handshake(stream, &self.uri, &self.config, &HeaderMap::new())
                    .await?;
            anyhow::Ok(ws)
        };
        match tokio::time::timeout(self.config.handshake_timeout, attempt).await {
            Ok(result) => result.with_context(|| format!("cannot connect to {}", self.uri)),
            Err(_) => anyhow::bail!("cannot connect to {}: timed out", self.uri),
        }
    }

    /// A TCP socket bound to the next source address (round robin).
    fn socket(&self) -> std::io::Result<TcpSocket> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if !self.sources.is_empty() {
            let turn = self.next_source.fetch_add(1, Ordering::Relaxed);
            let source = self.sources[turn % self.sources.len()];
            socket.bind(SocketAddr::new(source, 0))?;
        }
        Ok(socket)
    }
}

/// Opens `count` connections, at most `concurrency` handshakes at a time.
/// The first failure aborts the rest.
pub(crate) async fn open_many(
    target: &Arc<Target>,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Socket>> {
    let mut sockets = Vec::with_capacity(count);
    let mut pending = JoinSet::new();
    let mut started = 0;
    while sockets.len() < count {
        while started < count && pending.len() < concurrency.max(1) {
            let target = Arc::clone(target);
            pending.spawn(async move { target.connect().await });
            started += 1;
        }
        match pending.join_next().await {
            Some(joined) => {
                let socket = joined.context("a connecting task panicked")??;
                sockets.push(socket);
            }
            None => break,
        }
    }
    Ok(sockets)
}

/// Local addresses to connect from, round robin (`--source-ips`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sources(pub(crate) Vec<IpAddr>);

/// Whether every connection agreed on permessage-deflate.
pub(crate) fn all_compressed(sockets: &[Socket]) -> bool {
    sockets.iter().all(Socket::is_compressed)
}

/// Parses `--source-ips`: `127.0.0.1-127.0.0.40` (a range) or `a,b,c`.
pub(crate) fn parse_sources(raw: &str) -> Result<Sources, String> {
    parse_addresses(raw).map(Sources)
}

/// Parses `127.0.0.1-127.0.0.40` (an IPv4 range) or `a,b,c` (a list).
fn parse_addresses(raw: &str) -> Result<Vec<IpAddr>, String> {
    if let Some((first, last)) = raw.split_once('-') {
        let first: Ipv4Addr = first.trim().parse().map_err(|e| format!("{first}: {e}"))?;
        let last: Ipv4Addr = last.trim().parse().map_err(|e| format!("{last}: {e}"))?;
        let (first, last) = (u32::from(first), u32::from(last));
        if last < first || last - first >= 65_536 {
            return Err(format!("`{raw}` is not a range of at most 65536 addresses"));
        }
        return Ok((first..=last).map(|ip| IpAddr::V4(ip.into())).collect());
    }
    raw.split(',')
        .map(|ip| ip.trim().parse().map_err(|e| format!("{ip}: {e}")))
        .collect()
}

/// The close handshake; a failure counts as an error of connection `index`.
pub(crate) async fn close_counted(mut ws: Socket, index: usize, tally: &mut Tally) {
    if let Err(err) = ws.close(CloseCode::NORMAL, "").await {
        tally.error(|| format!("connection {index}: close handshake: {err}"));
    }
}

/// How long to wait for a close handshake in a benchmark: short, since a
/// stuck close only delays the report.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_range_and_a_list() {
        let range = parse_addresses("127.0.0.1-127.0.0.3").unwrap();
        assert_eq!(range.len(), 3);
        assert_eq!(range[2], IpAddr::from([127, 0, 0, 3]));
        let list = parse_addresses("127.0.0.5, 127.0.0.9").unwrap();
        assert_eq!(
            list,
            vec![IpAddr::from([127, 0, 0, 5]), IpAddr::from([127, 0, 0, 9])]
        );
        assert!(parse_sources("127.0.0.9-127.0.0.1").is_err());
        assert!(parse_sources("nope").is_err());
    }

    #[tokio::test]
    async fn refuses_other_schemes() {
        let options = TlsClientOptions::default();
        let err = Target::resolve(
            "http://127.0.0.1:1/",
            Config::default(),
            Vec::new(),
            &options,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("ws://"), "{err}");
    }
}
