//! Structured logs on stderr: text or one JSON object per line.

use crate::config::LogFormat;

/// Installs the global subscriber (once; later calls do nothing) with the
/// `filter` (`info`, `clarion_server=debug`, ...; `RUST_LOG` wins if set).
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
