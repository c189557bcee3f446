//! tokio-tungstenite's echo server for the benchmark matrix, as in its own
//! `examples/echo-server.rs`: `accept_async`, then the read half is
//! forwarded into the write half. `forward` feeds every message that is
//! already readable and flushes only when the stream has nothing more, so
//! replies to a burst of messages go out together (tungstenite buffers up
//! to 128 KiB before writing). Defaults otherwise (64 MiB messages,
//! automatic pongs and close replies), except that frames may be as large as
//! messages (the default stops at 16 MiB), as in every server of the matrix.
//! tungstenite has no permessage-deflate.

use futures_util::{future, StreamExt as _, TryStreamExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

fn main() -> anyhow::Result<()> {
    clarion_bench::serve(handle)
}

async fn handle(tcp: TcpStream) -> anyhow::Result<()> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(clarion_bench::MAX_MESSAGE_SIZE))
        .max_frame_size(Some(clarion_bench::MAX_MESSAGE_SIZE));
    let ws = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await?;
    let (write, read) = ws.split();
    read.try_filter(|message| future::ready(message.is_text() || message.is_binary()))
        .forward(write)
        .await?;
    Ok(())
}
