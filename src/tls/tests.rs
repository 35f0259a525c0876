//! Unit tests for TLS: pins, certificate names and the self-signed key file.

use super::*;

#[test]
fn pins_parse_with_or_without_colons_and_refuse_garbage() {
    let hex = "ab".repeat(32);
    assert_eq!(parse_pin(&hex).unwrap(), [0xab; 32]);
    let colons = vec!["AB"; 32].join(":");
    assert_eq!(parse_pin(&colons).unwrap(), [0xab; 32]);
    assert!(parse_pin("abcd").is_err());
    assert!(parse_pin(&"zz".repeat(32)).is_err());
    assert!(parse_pin(&"é".repeat(32)).is_err());
}

#[test]
fn names_cover_loopback_listen_and_allowed_hosts() {
    let allowed_hosts = vec![
        "dash.example:8443".into(),
        "[2001:db8::1]:8443".into(),
        "LOCALHOST".into(),
    ];
    assert_eq!(
        self_signed_names("192.0.2.7".parse().unwrap(), &allowed_hosts),
        [
            "localhost",
            "127.0.0.1",
            "::1",
            "192.0.2.7",
            "dash.example",
            "2001:db8::1"
        ]
    );
}

#[test]
fn self_signed_key_is_owner_only_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (files, created) = ensure_self_signed(dir.path(), vec!["localhost".into()]).unwrap();
    assert!(created);
    let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = ServerTls::load(&files).unwrap().fingerprint();
    let (_, created) = ensure_self_signed(dir.path(), vec!["localhost".into()]).unwrap();
    assert!(!created);
    assert_eq!(ServerTls::load(&files).unwrap().fingerprint(), first);
}

/// rcgen's certificate for `name`, with `purposes` as its extended key
/// usage (none: no such extension), signed by itself or by `issuer`.
fn der_of(
    name: &str,
    purposes: Vec<rcgen::ExtendedKeyUsagePurpose>,
    issuer: Option<&rcgen::Issuer<'_, rcgen::KeyPair>>,
) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = purposes;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = match issuer {
        None => params.self_signed(&key).unwrap(),
        Some(issuer) => params.signed_by(&key, issuer).unwrap(),
    };
    cert.der().to_vec()
}

#[test]
fn der_reads_a_certificates_issuer_and_purposes() {
    use rcgen::ExtendedKeyUsagePurpose::{Any, ClientAuth, ServerAuth};
    let own = der_of("own.test", vec![], None);
    assert!(der::names_itself(&own));
    assert!(der::may_serve_tls(&own), "no extended key usage: any use");
    for (purposes, serves) in [
        (vec![ClientAuth], false),
        (vec![ServerAuth], true),
        (vec![ClientAuth, ServerAuth], true),
        (vec![Any], true),
    ] {
        let cert = der_of("eku.test", purposes.clone(), None);
        assert_eq!(der::may_serve_tls(&cert), serves, "{purposes:?}");
    }
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "the CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let issued = der_of("issued.test", vec![], Some(&issuer));
    assert!(!der::names_itself(&issued), "issued by another");
    // Malformed: cut anywhere, or garbage, reads as "no".
    for cut in [0, 1, 10, own.len() / 2, own.len() - 1] {
        assert!(!der::names_itself(&own[..cut]), "cut at {cut}");
    }
    assert!(!der::may_serve_tls(b"\x30\x85\xff\xff\xff\xff\xff"));
    // A server sends what it likes: every byte of a real one changed, in
    // turn, to each of a few values, and neither reader panics.
    let eku = der_of("eku.test", vec![ServerAuth], None);
    for at in 0..eku.len() {
        for value in [0x00, 0x7f, 0x80, 0x84, 0xff] {
            let mut bent = eku.clone();
            bent[at] = value;
            let _ = (der::names_itself(&bent), der::may_serve_tls(&bent));
        }
    }
}
