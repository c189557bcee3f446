//! The textbook WebSocket client: sends `Hello, Server!`, prints what comes
//! back, and closes.
//!
//! ```sh
//! cargo run -p clarion-ws --example server &     # listening on ws://127.0.0.1:9002
//! cargo run -p clarion-ws --example client       # or: ... --example client -- ws://HOST:PORT
//! ```
//!
//! Against the `server` example it prints the server's greeting and its
//! answer, one per line, then closes with 1000 (normal closure) and exits 0:
//!
//! ```text
//! Hello from the server!
//! You said: Hello, Server!
//! ```

use clarion_ws::{CloseCode, Config, Message};

const DEFAULT_URL: &str = "ws://127.0.0.1:9002";

/// The greeting and the answer to our message.
const EXPECTED_MESSAGES: usize = 2;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let (mut ws, _response) = clarion_ws::connect(&url, &Config::default()).await?;
    ws.send("Hello, Server!").await?;

    let mut received = 0;
    while received < EXPECTED_MESSAGES {
        match ws.recv().await {
            Some(Ok(Message::Text(text))) => {
                println!("{}", text.as_str());
                received += 1;
            }
            Some(Ok(Message::Binary(data))) => eprintln!("(ignoring {} binary bytes)", data.len()),
            Some(Err(err)) => return Err(err.into()),
            None => return Err("the server closed the connection early".into()),
        }
    }
    ws.close(CloseCode::NORMAL, "").await?;
    Ok(())
}
