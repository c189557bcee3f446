//! `clarion token`: mint an HS256 connection (or subscription) token for
//! tests and demos.

use std::process::ExitCode;

use anyhow::Context as _;
use clarion_server::auth::{expires_in, mint_hs256, MintClaims};

/// Arguments of `clarion token`.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// The HS256 secret (the server's `auth.hmac_secret`).
    #[arg(long, env = "CLARION_HMAC_SECRET")]
    secret: String,
    /// The user (`sub`).
    #[arg(long)]
    user: String,
    /// Lifetime (`30s`, `10m`, `1h`, `1d`, or seconds); without it the
    /// token never expires.
    #[arg(long, value_name = "DURATION", value_parser = super::duration::parse)]
    ttl: Option<std::time::Duration>,
    /// Channels to subscribe on connect (comma-separated).
    #[arg(long, value_delimiter = ',')]
    channels: Vec<String>,
    /// Connection info, a JSON value (`{"name":"Alice"}`).
    #[arg(long)]
    info: Option<String>,
    /// Mint a subscription token for this channel instead.
    #[arg(long)]
    channel: Option<String>,
}

pub(crate) fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let exp = args.ttl.map(expires_in);
    let info = match &args.info {
        Some(info) => Some(serde_json::from_str(info).context("--info is not JSON")?),
        None => None,
    };
    let claims = MintClaims {
        sub: args.user,
        exp,
        info,
        channels: args.channels,
        channel: args.channel,
    };
    println!("{}", mint_hs256(&args.secret, &claims)?);
    Ok(ExitCode::SUCCESS)
}
