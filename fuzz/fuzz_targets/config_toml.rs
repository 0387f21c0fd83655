//! The sidecar's configuration file (`sidecar::Config::from_toml`, then `validate`: URLs,
//! ENRs, the topic prefix, log filters, genesis prover keys, inclusion validators) and the
//! reward table file (`rewards::Config::from_toml_str`), on the same text. Neither reads any
//! other file here. A valid reward table must render to TOML that parses to the same table.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = sidecar::Config::from_toml(text, Path::new("fuzz.toml")) {
        let _ = config.validate();
    }
    if let Ok(rewards) = rewards::Config::from_toml_str(text) {
        let again = rewards.to_file().to_toml_string();
        let back = rewards::Config::from_toml_str(&again).expect("a rendered table parses");
        assert_eq!(back, rewards);
    }
});
