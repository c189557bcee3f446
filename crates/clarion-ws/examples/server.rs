//! The textbook WebSocket server: greets every new connection and answers
//! each text message.
//!
//! ```sh
//! cargo run -p clarion-ws --example server                    # ws://127.0.0.1:9002
//! cargo run -p clarion-ws --example server -- 127.0.0.1:0     # any free port
//! ```
//!
//! The first line on stdout says where it listens (`listening on ws://ADDR`).
//! Each client first receives `Hello from the server!`, then
//! `You said: <message>` for every text message it sends. Try it with the
//! `client` example beside this one, or with
//! `cargo run -p clarion-cli -- connect ws://127.0.0.1:9002`.

use std::io::Write as _;

use clarion_ws::{Config, Message, WebSocket};
use tokio::net::{TcpListener, TcpStream};

const DEFAULT_ADDR: &str = "127.0.0.1:9002";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    std::io::stdout().flush()?;

    let config = Config::default();
    loop {
        let (tcp, peer) = listener.accept().await?;
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(err) = serve(tcp, &config).await {
                eprintln!("{peer}: {err}");
            }
        });
    }
}

/// One connection: the greeting, then a reply to every text message.
async fn serve(tcp: TcpStream, config: &Config) -> Result<(), clarion_ws::Error> {
    let mut ws: WebSocket<TcpStream> = clarion_ws::accept(tcp, config).await?;
    ws.send("Hello from the server!").await?;
    // `None` once the client has closed the connection.
    while let Some(message) = ws.recv().await {
        if let Message::Text(text) = message? {
            ws.send(format!("You said: {}", text.as_str())).await?;
        }
    }
    Ok(())
}
