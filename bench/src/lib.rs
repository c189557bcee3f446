//! What the echo servers in `src/bin/` share: the command line, the runtime
//! and the accept loop. Each server only writes its per-connection handler,
//! so the four differ in exactly one place: the WebSocket library.
//!
//! Every server takes `--listen ADDR` (port 0 picks a free port) and
//! `--runtime current|multi`, prints `listening on ws://ADDR` as its first
//! line on stdout, and sets `TCP_NODELAY` on every accepted socket. The
//! default runtime is tokio's current-thread one: the benchmark matrix gives
//! each server process one core (`taskset -c 0`), and a multi-thread
//! runtime on one core only adds work stealing and cross-thread wake-ups.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};

/// The largest message, and frame, every server accepts: 64 MiB, Clarion's
/// default `max_message_size` and the default message limit of both peers.
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;

/// The command line every echo server takes.
#[derive(Debug, clap::Parser)]
pub struct ServerArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9001")]
    pub listen: SocketAddr,
    /// Tokio runtime: `current` (one thread; the matrix's setup) or `multi`
    /// (one worker per core).
    #[arg(long, value_enum, default_value_t = Runtime::Current)]
    pub runtime: Runtime,
}

/// Which tokio runtime a server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// `new_current_thread`: everything on the main thread.
    Current,
    /// `new_multi_thread`: one worker thread per core.
    Multi,
}

impl Runtime {
    fn build(self) -> std::io::Result<tokio::runtime::Runtime> {
        let mut builder = match self {
            Runtime::Current => tokio::runtime::Builder::new_current_thread(),
            Runtime::Multi => tokio::runtime::Builder::new_multi_thread(),
        };
        builder.enable_all().build()
    }
}

/// Parses the command line, starts the runtime and serves every accepted
/// connection with `handle` (on its own task) until the process is killed.
///
/// A connection's error ends that connection only; errors are not printed,
/// since a load generator that stops without a close handshake is normal
/// at the end of a run.
pub fn serve<H, F>(handle: H) -> anyhow::Result<()>
where
    H: Fn(TcpStream) -> F + Send + Copy + 'static,
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let args = <ServerArgs as clap::Parser>::parse();
    let runtime = args.runtime.build().context("starting the tokio runtime")?;
    runtime.block_on(accept_loop(args.listen, handle))
}

async fn accept_loop<H, F>(listen: SocketAddr, handle: H) -> anyhow::Result<()>
where
    H: Fn(TcpStream) -> F + Send + Copy + 'static,
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // The first line on stdout says where we listen (scripts read it).
    println!("listening on ws://{}", listener.local_addr()?);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _peer)) => tcp,
            // Out of file descriptors and the like: keep serving the others,
            // without spinning on an error that will repeat at once.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let _ = handle(tcp).await;
        });
    }
}
