//! fastwebsockets' echo server for the benchmark matrix, written the way its
//! own `examples/echo_server.rs` is: hyper 1 serves the HTTP/1.1 upgrade,
//! `fastwebsockets::upgrade::upgrade` answers it, and a `FragmentCollector`
//! reads whole messages that `write_frame` sends back. Like that example,
//! the connection task runs in `tokio::task::unconstrained` (no cooperative
//! budget), and auto-pong, auto-close and vectored writes are the library's
//! defaults. fastwebsockets has no permessage-deflate.

use fastwebsockets::upgrade::{upgrade, UpgradeFut};
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

fn main() -> anyhow::Result<()> {
    clarion_bench::serve(handle)
}

/// Serves HTTP/1.1 on the connection until a request upgrades it.
async fn handle(tcp: TcpStream) -> anyhow::Result<()> {
    http1::Builder::new()
        .serve_connection(TokioIo::new(tcp), service_fn(server_upgrade))
        .with_upgrades()
        .await?;
    Ok(())
}

async fn server_upgrade(
    mut request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, WebSocketError> {
    let (response, upgraded) = upgrade(&mut request)?;
    tokio::spawn(async move {
        let _ = tokio::task::unconstrained(echo(upgraded)).await;
    });
    Ok(response)
}

async fn echo(upgraded: UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = upgraded.await?;
    // fastwebsockets refuses a frame of `max_message_size` bytes or more;
    // one more byte lets exactly 64 MiB through, as the others do.
    ws.set_max_message_size(clarion_bench::MAX_MESSAGE_SIZE + 1);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => return Ok(()),
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
}
