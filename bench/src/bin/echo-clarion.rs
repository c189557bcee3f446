//! Clarion's echo server for the benchmark matrix: `clarion_ws::accept`,
//! then `recv` each message and `feed` it back (queued; the next `recv`
//! writes everything queued before it waits, so the echoes of one read leave
//! in one write), compression off. The same loop as
//! `clarion echo --no-deflate`, without TLS and the `Server` header,
//! and with frames up to 64 MiB (the default stops at 16 MiB) so that every
//! server in the matrix takes a 64 MiB message in one frame. Like
//! `clarion echo`, it gives memory back once half its connections closed
//! (`clarion_ws::HeapTrimmer`).

use std::sync::LazyLock;

use clarion_ws::{Config, HeapTrimmer, WebSocket};
use tokio::net::TcpStream;

/// The defaults (no permessage-deflate, 64 MiB messages), frames as large
/// as messages.
static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let mut config = Config::default();
    config.protocol.max_frame_size = clarion_bench::MAX_MESSAGE_SIZE;
    config.protocol.max_message_size = clarion_bench::MAX_MESSAGE_SIZE;
    debug_assert!(!config.deflate.enabled);
    config
});

static TRIMMER: LazyLock<HeapTrimmer> = LazyLock::new(HeapTrimmer::new);

fn main() -> anyhow::Result<()> {
    clarion_bench::serve(handle)
}

async fn handle(tcp: TcpStream) -> anyhow::Result<()> {
    let _tracked = TRIMMER.track();
    let mut ws = clarion_ws::accept(tcp, &CONFIG).await?;
    echo(&mut ws).await
}

async fn echo(ws: &mut WebSocket<TcpStream>) -> anyhow::Result<()> {
    while let Some(message) = ws.recv().await {
        ws.feed(message?).await?;
    }
    Ok(())
}
