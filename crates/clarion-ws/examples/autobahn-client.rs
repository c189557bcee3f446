//! The client under Autobahn|Testsuite's fuzzingserver: asks for the number
//! of cases, echoes every message of each case, then asks for the report.
//!
//! ```sh
//! cargo build --release -p clarion-ws --example autobahn-client
//! ../shared/autobahn/run-client-tests.sh -- target/release/examples/autobahn-client
//! ```
//! The suite's URL comes from `AUTOBAHN_URL` (default `ws://127.0.0.1:9001`).

use clarion_ws::{Config, Message};

const AGENT: &str = "Clarion";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let mut config = Config::default();
    config.deflate.enabled = true;
    let count = case_count(&base, &config).await?;
    eprintln!("autobahn-client: {count} cases");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={AGENT}");
        if let Err(err) = run_case(&url, &config).await {
            eprintln!("autobahn-client: case {case}: {err}");
        }
    }
    let url = format!("{base}/updateReports?agent={AGENT}");
    let (mut ws, _) = clarion_ws::connect(&url, &config).await?;
    while ws.recv().await.is_some() {}
    Ok(())
}

async fn case_count(base: &str, config: &Config) -> Result<u32, Box<dyn std::error::Error>> {
    let (mut ws, _) = clarion_ws::connect(&format!("{base}/getCaseCount"), config).await?;
    let mut count = None;
    while let Some(message) = ws.recv().await {
        if let Message::Text(text) = message? {
            count = Some(text.trim().parse()?);
        }
    }
    count.ok_or_else(|| "no case count received".into())
}

/// Echoes until the suite closes the connection; protocol errors end the
/// case (the suite judges how we closed).
async fn run_case(url: &str, config: &Config) -> Result<(), clarion_ws::Error> {
    let (mut ws, _) = clarion_ws::connect(url, config).await?;
    while let Some(message) = ws.recv().await {
        ws.send(message?).await?;
    }
    Ok(())
}
