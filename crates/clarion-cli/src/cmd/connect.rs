//! `clarion connect`: an interactive client, like websocat or wscat.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clarion_ws::tls::TlsClientOptions;
use clarion_ws::{CloseCode, Config, ConnectOptions, Message};
use http::{HeaderName, HeaderValue};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Arguments of `clarion connect`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConnectArgs {
    /// ws:// or wss:// URL.
    url: String,
    /// Send stdin lines as binary messages (and print binary messages raw).
    #[arg(long)]
    binary: bool,
    /// Offer a subprotocol (repeatable, in order of preference).
    #[arg(long = "subprotocol", value_name = "NAME")]
    subprotocols: Vec<String>,
    /// Add a request header, e.g. `--header 'Origin: https://example.com'` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Trust this PEM CA certificate for wss:// (besides the system roots).
    #[arg(long, visible_alias = "ca-file", value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Accept any server certificate. Only for testing: anyone can intercept.
    #[arg(long)]
    insecure: bool,
    /// Do not offer permessage-deflate (offered by default).
    #[arg(long)]
    no_deflate: bool,
}

pub(crate) async fn run(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::default();
    config.subprotocols = args.subprotocols.clone();
    config.deflate.enabled = !args.no_deflate;
    let mut options = ConnectOptions::default();
    options.tls = TlsClientOptions {
        ca_file: args.ca.clone(),
        insecure: args.insecure,
    };
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        options.headers.append(name, value);
    }
    let (ws, _response) = clarion_ws::connect_with(&args.url, &config, &options)
        .await
        .with_context(|| format!("cannot connect to {}", args.url))?;
    if let Some(protocol) = ws.protocol() {
        eprintln!("connected to {} (subprotocol {protocol})", args.url);
    } else {
        eprintln!("connected to {}", args.url);
    }
    let (mut reader, mut writer) = ws.into_split();
    let binary = args.binary;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            line = stdin.next_line(), if stdin_open => match line? {
                Some(line) => {
                    let message = if binary { Message::binary(line.into_bytes()) } else { Message::text(line) };
                    writer.send(message).await.context("sending")?;
                }
                None => {
                    stdin_open = false;
                    writer.close(CloseCode::NORMAL, "").await.context("closing")?;
                }
            },
            message = reader.recv() => match message {
                Some(Ok(message)) => print_message(&message, binary)?,
                Some(Err(err)) => {
                    eprintln!("connection failed: {err}");
                    return Ok(ExitCode::FAILURE);
                }
                None => return Ok(report_close(reader.close_frame())),
            },
        }
    }
}

fn parse_header(raw: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (name, value) = raw
        .split_once(':')
        .with_context(|| format!("header `{raw}` is not `Name: value`"))?;
    let name =
        HeaderName::try_from(name.trim()).with_context(|| format!("bad header name in `{raw}`"))?;
    let value = HeaderValue::try_from(value.trim())
        .with_context(|| format!("bad header value in `{raw}`"))?;
    Ok((name, value))
}

fn print_message(message: &Message, raw_binary: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match message {
        Message::Text(text) => writeln!(out, "{text}")?,
        Message::Binary(data) if raw_binary => {
            out.write_all(data)?;
            writeln!(out)?;
        }
        Message::Binary(data) => {
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            writeln!(out, "[binary {} bytes] {hex}", data.len())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Says how the connection ended; exit status 0 for a normal close.
fn report_close(frame: Option<Option<clarion_ws::CloseFrame>>) -> ExitCode {
    match frame {
        Some(Some(frame)) => {
            let normal = frame.code == CloseCode::NORMAL || frame.code == CloseCode::GOING_AWAY;
            if frame.reason.is_empty() {
                eprintln!("connection closed: code {}", frame.code);
            } else {
                eprintln!("connection closed: code {} ({})", frame.code, frame.reason);
            }
            if normal {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Some(None) => {
            eprintln!("connection closed: no status code (1005)");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("connection closed");
            ExitCode::SUCCESS
        }
    }
}
