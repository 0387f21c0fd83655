//! Simulator scenario files (`sidecar_simulator::Scenario::from_toml_str`: parse, validate,
//! expand groups, churn and adversaries). Scenarios of more than 100,000 provers or blocks are
//! valid (up to `MAX_PROVERS`) but their expansion is linear in them and would only measure
//! allocation: the target skips them before parsing into a `Scenario`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sidecar_simulator::Scenario;

/// Largest `provers` and `blocks` the target expands.
const MAX_SIZE: i64 = 100_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(table) = text.parse::<toml::Table>() else { return };
    let too_large =
        |key: &str| table.get(key).and_then(toml::Value::as_integer).is_some_and(|n| n > MAX_SIZE);
    if too_large("provers") || too_large("blocks") {
        return;
    }
    let _ = Scenario::from_toml_str(text);
});
