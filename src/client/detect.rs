//! Telling a person that a port speaks TLS when the client did not (or
//! plain text when it did), instead of printing a TLS alert as a reply,
//! exiting 0 or waiting out the timeout.
//!
//! Plain client, TLS server: a server that speaks first (exec and files'
//! challenge, login's prompt) stays silent, waiting for a ClientHello; after
//! [`GREETING_GRACE`] without a byte a second connection asks the port for
//! its certificate ([`probe`]). A server the client speaks to first (echo,
//! files-classic, the dashboard) answers with a TLS alert record
//! ([`is_tls_record`]) or the dashboard's `this port speaks HTTPS`.
//!
//! TLS client, plain server: rustls reports a record that is no TLS
//! (`InvalidMessage`) or a close during the handshake ([`not_tls`]).
//!
//! What it does not do: trust anything. The probe's verifier records the
//! certificate and then refuses it, so no handshake completes; the
//! fingerprint it reports is what the port showed, for the person to compare
//! with the one `serve` printed, never a pin taken on their behalf.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::{ClientError, Stream, Target};

/// How long a server that speaks first may stay silent before the port is
/// asked whether it speaks TLS. Our services greet at once; a slower plain
/// server costs one extra connection, never a wrong answer.
pub(crate) const GREETING_GRACE: Duration = Duration::from_millis(300);

/// Whether `bytes` begin with a TLS record a server sends to a client that
/// spoke plain text to it: an alert (21) or a handshake (22), version 3.x.
pub(crate) fn is_tls_record(bytes: &[u8]) -> bool {
    matches!(bytes, [21 | 22, 3, 0..=4, ..])
}

/// Whether `reply`, read back from an echo port for `sent`, is a TLS port's
/// answer to plain text rather than the echo. Upper-casing keeps control
/// bytes, so only a TLS port answers with a TLS record (its alert) to
/// text that is not one. A message of one or two bytes reads back only the
/// alert's first bytes: those, when they are not the echo of what was
/// sent, are enough.
pub(crate) fn is_tls_answer(reply: &[u8], sent: &[u8]) -> bool {
    if reply.len() < 3 {
        matches!(reply, [21 | 22] | [21 | 22, 3]) && reply != sent.to_ascii_uppercase()
    } else {
        is_tls_record(reply) && !is_tls_record(sent)
    }
}

/// The error for a plain client that met TLS at `addr`: asks the port for
/// its certificate (within `within`) to name it; `hint` says how to connect.
pub(crate) async fn speaks_tls(addr: &str, within: Duration, hint: &str) -> ClientError {
    let seen = match Target::resolve(addr).await {
        Ok(Target::Inet(addrs, _)) => match addrs.first() {
            Some(a) => probe(*a, within).await,
            None => None,
        },
        _ => None,
    };
    let seen = seen.map_or_else(String::new, |fp| {
        format!(" (its certificate's SHA-256 is {fp})")
    });
    ClientError::SpeaksTls {
        addr: addr.to_owned(),
        seen,
        hint: hint.to_owned(),
    }
}

/// What a client with `--tls` options should add.
pub(crate) const TLS_HINT: &str = "add --tls with --pin SHA256 (the fingerprint `serve` printed \
     for it) or --ca CERT.pem";

/// A plain stream to a server that speaks first: waits up to
/// [`GREETING_GRACE`] for its first byte, then asks the port whether it
/// speaks TLS; an error when it does.
pub(crate) async fn await_greeting(
    stream: &Stream,
    addr: &str,
    timeout: Duration,
) -> Result<(), ClientError> {
    let Stream::Plain(tokio_util::either::Either::Left(tcp)) = stream else {
        return Ok(());
    };
    let mut byte = [0u8; 1];
    if let Ok(peeked) = tokio::time::timeout(GREETING_GRACE, tcp.peek(&mut byte)).await {
        // Data, an end or an error: the protocol's own reads say what it is.
        drop(peeked);
        return Ok(());
    }
    let Ok(peer) = tcp.peer_addr() else {
        return Ok(());
    };
    match probe(peer, timeout).await {
        Some(fp) => Err(ClientError::SpeaksTls {
            addr: addr.to_owned(),
            seen: format!(" (its certificate's SHA-256 is {fp})"),
            hint: TLS_HINT.to_owned(),
        }),
        None => Ok(()),
    }
}

/// [`super::connect_stream_tls`] to a server that speaks first, with
/// [`await_greeting`] on a plain connection.
pub(crate) async fn connect_greeted(
    target: &str,
    timeout: Duration,
    tls: Option<&crate::tls::ClientTls>,
) -> Result<(Stream, String), ClientError> {
    let (stream, addr) = super::connect_stream_tls(target, timeout, tls).await?;
    if tls.is_none() {
        await_greeting(&stream, &addr, timeout).await?;
    }
    Ok((stream, addr))
}

/// The SHA-256 of the certificate `addr` presents to a ClientHello, when it
/// presents one within `within`.
pub(crate) async fn probe(addr: std::net::SocketAddr, within: Duration) -> Option<String> {
    let seen = Arc::new(Recorder::default());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .dangerous()
    .with_custom_certificate_verifier(Arc::clone(&seen) as Arc<dyn ServerCertVerifier>)
    .with_no_client_auth();
    let name = ServerName::IpAddress(addr.ip().into());
    let _ = tokio::time::timeout(within, async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map(drop)
    })
    .await;
    seen.cert
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .map(|der| crate::tls::fingerprint(&der))
}

/// The error for a TLS handshake a switchboard port turned away with one
/// of its refusal alerts, or `None` for any other failure. The alert is
/// all a TLS client reads there (a plain client reads a line instead).
pub(crate) fn turned_away(addr: &str, e: &std::io::Error) -> Option<ClientError> {
    use rustls::AlertDescription::{AccessDenied, InternalError};
    let alert = match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => *alert,
        _ => return None,
    };
    let reason = match alert {
        AccessDenied => {
            "TLS alert access_denied: the port takes connections through a trusted proxy only \
             (accept_proxy); connect to the proxy in front of it"
        }
        InternalError => {
            "TLS alert internal_error (a switchboard port sends this before the handshake when \
             it is at a connection limit); try again later"
        }
        _ => return None,
    };
    Some(ClientError::TurnedAway {
        addr: addr.to_owned(),
        reason: reason.to_owned(),
    })
}

/// The error for a `--tls` handshake with `addr` that met no TLS, or
/// `None` when the failure was TLS's own (a certificate, a version).
pub(crate) fn not_tls(addr: &str, e: &std::io::Error) -> Option<ClientError> {
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let detail = match (inner, e.kind()) {
        (Some(rustls::Error::InvalidMessage(_)), _) => "it answered in plain text",
        // Our own greeting sent back: a plain echo (upper-casing the
        // server name in it still leaves a well-formed one).
        (
            Some(rustls::Error::InappropriateHandshakeMessage {
                got_type: rustls::HandshakeType::ClientHello,
                ..
            }),
            _,
        ) => "it sent back the TLS greeting, as a plain echo does",
        (
            None,
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe,
        ) => "it closed the connection at the TLS handshake",
        _ => return None,
    };
    Some(ClientError::NotTls {
        addr: addr.to_owned(),
        detail: detail.to_owned(),
    })
}

/// A verifier that keeps the certificate it is shown and refuses it: the
/// probe learns what the port speaks and completes no handshake.
#[derive(Debug, Default)]
struct Recorder {
    cert: Mutex<Option<Vec<u8>>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut cert) = self.cert.lock() {
            *cert = Some(end_entity.as_ref().to_vec());
        }
        Err(rustls::Error::General("a probe trusts nothing".into()))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("a probe trusts nothing".into()))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("a probe trusts nothing".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
