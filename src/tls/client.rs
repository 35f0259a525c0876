//! The client side: what our clients (the CLI, the dashboard's relay)
//! trust: a CA file (PEM) with name and date checks, or exactly one
//! certificate named by its SHA-256 (`--pin`).
//!
//! A self-signed certificate in the CA file is its own CA, as OpenSSL,
//! curl and Python take it, even when it is marked as a CA, which
//! `openssl req -x509` does by default and webpki alone would refuse
//! ([`CaVerifier`]).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use sha2::{Digest, Sha256};

use super::{TlsError, provider};

/// What a client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates signed by the CA(s) in this PEM file, valid for the
    /// host name dialled and not expired.
    Ca(PathBuf),
    /// Exactly the certificate with this SHA-256; name and dates are not
    /// checked (the pin is the identity), signatures still are.
    Pin([u8; 32]),
}

/// A client's TLS settings, ready to connect.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// Builds the client side for `trust`.
    ///
    /// # Errors
    /// An unreadable CA file or one without a usable certificate.
    pub fn new(trust: &Trust) -> Result<ClientTls, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let config = match trust {
            Trust::Ca(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let read = |e| match e {
                    rustls::pki_types::pem::Error::Io(source) => TlsError::Read {
                        path: path.clone(),
                        source,
                    },
                    other => TlsError::Pem {
                        path: path.clone(),
                        detail: format!("not a PEM file: {other}"),
                    },
                };
                let mut given = Vec::new();
                for cert in CertificateDer::pem_file_iter(path).map_err(read)? {
                    let cert = cert.map_err(read)?;
                    roots
                        .add(cert.clone())
                        .map_err(|source| TlsError::Rejected {
                            path: path.clone(),
                            source,
                        })?;
                    given.push(cert);
                }
                if roots.is_empty() {
                    return Err(TlsError::Pem {
                        path: path.clone(),
                        detail: "no CERTIFICATE block in it".into(),
                    });
                }
                let webpki = WebPkiServerVerifier::builder_with_provider(roots.into(), provider())
                    .build()
                    .map_err(|e| TlsError::Pem {
                        path: path.clone(),
                        detail: e.to_string(),
                    })?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(CaVerifier { webpki, given }))
                    .with_no_client_auth()
            }
            Trust::Pin(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinVerifier {
                    pin: *pin,
                    provider: provider(),
                }))
                .with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// Runs the handshake over `stream` for `host` (a DNS name or an IP
    /// address, checked against the certificate when trusting a CA).
    ///
    /// # Errors
    /// The handshake's failure; rustls's reason is in the error's source.
    pub async fn connect<S>(
        &self,
        host: &str,
        stream: S,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{host}` is not a host name or IP address"),
            )
        })?;
        tokio_rustls::TlsConnector::from(Arc::clone(&self.config))
            .connect(name, stream)
            .await
    }
}

/// Trusts what webpki trusts for the CA file's certificates, and one thing
/// more: a server presenting exactly one of the file's self-signed
/// certificates that is marked as a CA. webpki refuses a CA at the end of
/// a chain; OpenSSL, curl and Python accept a self-signed one when it is
/// itself the trusted certificate, and `openssl req -x509` marks the
/// certificates it makes as CAs. What webpki would have checked still
/// counts: the dates (it checks them before the CA mark, so a certificate
/// refused for the mark alone is within its dates), then the extended key
/// usage and the host name, checked here ([`super::der`]); the handshake's
/// signatures are webpki's to check, as for any certificate.
#[derive(Debug)]
struct CaVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The CA file's certificates, byte for byte.
    given: Vec<CertificateDer<'static>>,
}

/// Whether webpki refused a certificate for being a CA, and nothing else.
pub(super) fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    let rustls::Error::InvalidCertificate(CertificateError::Other(other)) = e else {
        return false;
    };
    matches!(
        other.0.downcast_ref::<webpki::Error>(),
        Some(webpki::Error::CaUsedAsEndEntity)
    )
}

impl ServerCertVerifier for CaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self.given.iter().any(|c| c.as_ref() == end_entity.as_ref())
                    && super::der::names_itself(end_entity) =>
            {
                if !super::der::may_serve_tls(end_entity) {
                    return Err(CertificateError::InvalidPurpose.into());
                }
                let cert = ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Accepts exactly one certificate, by the SHA-256 of its DER bytes; the
/// handshake's signatures are still checked with the provider's algorithms,
/// so only the holder of that certificate's key gets through.
#[derive(Debug)]
struct PinVerifier {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        // Both values are public; a plain comparison leaks nothing.
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has SHA-256 {}, not the pinned {}",
                crate::wire::hex(&got),
                crate::wire::hex(&self.pin)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
