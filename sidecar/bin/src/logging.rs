//! `tracing` set-up: an env-filter and a compact or JSON formatter, writing to stderr so that
//! stdout stays free for command output.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};
use crate::{Error, Result};

/// Installs the global `tracing` subscriber.
///
/// # Errors
/// [`Error::Logging`] if the filter is malformed or a subscriber is already installed.
pub fn init_logging(config: &LoggingConfig) -> Result<()> {
    let filter = EnvFilter::try_new(&config.filter)
        .map_err(|e| Error::Logging { reason: format!("filter `{}`: {e}", config.filter) })?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match config.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Compact => builder.compact().try_init(),
    };
    result.map_err(|e| Error::Logging { reason: e.to_string() })
}
