//! `clarion publish`: publish into a channel through the server API
//! (`POST /api/publish`), with a small HTTP/1.1 client over TCP.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Arguments of `clarion publish`.
#[derive(Debug, clap::Args)]
pub(crate) struct PublishArgs {
    /// The server's base URL (`http://127.0.0.1:8000`).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    api: String,
    /// The API key.
    #[arg(long, env = "CLARION_API_KEY")]
    key: String,
    /// The channel (`chat:lobby`).
    channel: String,
    /// The data: a JSON value (`{"text":"hi"}`); anything else is sent as a
    /// JSON string.
    data: String,
}

/// Time for the whole request.
const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn run(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let data: serde_json::Value =
        serde_json::from_str(&args.data).unwrap_or(serde_json::Value::String(args.data.clone()));
    let body = serde_json::json!({ "channel": args.channel, "data": data }).to_string();
    let (status, response) = tokio::time::timeout(TIMEOUT, post(&args.api, &args.key, &body))
        .await
        .context("the server did not answer in time")??;
    println!("{response}");
    match status {
        200 => Ok(ExitCode::SUCCESS),
        _ => Ok(ExitCode::FAILURE),
    }
}

/// `POST {base}/api/publish`; returns the status and the body.
async fn post(base: &str, key: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let uri: http::Uri = base.parse().with_context(|| format!("--api {base:?}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--api must be an http:// URL (https is not supported by this small client)");
    }
    let host = uri.host().context("--api has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let prefix = uri.path().trim_end_matches('/');
    let mut tcp = TcpStream::connect((host, port))
        .await
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    let request = format!(
        "POST {prefix}/api/publish HTTP/1.1\r\nHost: {host}:{port}\r\n\
         Authorization: apikey {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await?;
    parse_response(&raw)
}

/// The status and body of a `Connection: close` response (no chunking:
/// the server sends `Content-Length`).
fn parse_response(raw: &[u8]) -> anyhow::Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed HTTP status line")?;
    Ok((status, body.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_a_response() {
        let raw = b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(super::parse_response(raw).unwrap(), (401, "{}".into()));
        assert!(super::parse_response(b"nonsense").is_err());
    }
}
