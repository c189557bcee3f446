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
    /// Lifetime (`30s`, `10m`, `1h`, `1d`); without it the token never expires.
    #[arg(long)]
    ttl: Option<String>,
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
    let exp = match &args.ttl {
        Some(ttl) => {
            let ttl = clarion_server::config::parse_duration(ttl)
                .with_context(|| format!("--ttl {ttl:?}: use 30s, 10m, 1h, 1d"))?;
            Some(expires_in(ttl))
        }
        None => None,
    };
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
