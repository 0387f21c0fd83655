//! EIP-2335 keystores (`sidecar-keystore`): `Keystore::from_json` on any text, then decryption
//! with a fixed password when the key derivation is cheap enough to run per input (scrypt with
//! `n * r * p` up to 2^12, PBKDF2 with up to 4096 rounds; costlier parameters are valid but
//! would only measure the KDF). An accepted keystore must re-serialise to JSON that parses to
//! the same keystore.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sidecar_keystore::{Keystore, Password};

/// Whether the file's KDF parameters are cheap enough to derive a key per fuzz input.
fn cheap_kdf(keystore: &Keystore) -> bool {
    let kdf = &keystore.crypto.kdf;
    let number = |name: &str| kdf.params.get(name).and_then(serde_json::Value::as_u64);
    match kdf.function.as_str() {
        "scrypt" => {
            let cost = [number("n"), number("r"), number("p")]
                .into_iter()
                .try_fold(1u64, |acc, v| v.and_then(|v| acc.checked_mul(v)));
            cost.is_some_and(|c| c <= 1 << 12)
        }
        "pbkdf2" => number("c").is_some_and(|c| c <= 4096),
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = Path::new("fuzz.json");
    let Ok(keystore) = Keystore::from_json(text, origin) else { return };
    let json = keystore.to_json();
    let back = Keystore::from_json(&json, origin).expect("a re-serialised keystore parses");
    assert_eq!(back.to_json(), json, "from_json(to_json(k)) differs from k");
    if cheap_kdf(&keystore) {
        let _ = keystore.decrypt(&Password::new("testpassword"));
    }
});
