//! Tests of the shared TLS pieces.

use super::*;

#[test]
fn only_ring_is_compiled_in() {
    // One crypto provider (ring) and no system OpenSSL: rustls then never needs to be
    // told which provider to use, and the wheel links no libssl.
    let lock = include_str!("../../Cargo.lock");
    for banned in ["aws-lc-rs", "aws-lc-sys", "openssl-sys", "native-tls"] {
        assert!(
            !lock.contains(&format!("name = \"{banned}\"")),
            "{banned} is in Cargo.lock"
        );
    }
    install_default_provider();
    assert!(CryptoProvider::get_default().is_some());
    // What the redis crate does for every rediss:// connection.
    let _ = ClientConfig::builder();
}

#[test]
fn missing_files_are_named() {
    let e = Roots::File("/nonexistent/ca.pem".into())
        .load()
        .unwrap_err();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    let dir = std::env::temp_dir().join(format!("llmledger-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let e = Roots::File(empty.clone()).load().unwrap_err();
    assert!(e.contains("holds no certificate"), "{e}");
    let e = ClientAuth::load(&empty, &empty).err().unwrap();
    assert!(e.contains("client certificate"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(client_config(Check::ChainAndName, None, None).is_err());
    assert!(client_config(Check::Nothing, None, None).is_ok());
}
