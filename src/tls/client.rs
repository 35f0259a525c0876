//! The client side: what our clients (the CLI, the dashboard's relay)
//! trust: a CA file (PEM) with name and date checks, or exactly one
//! certificate named by its SHA-256 (`--pin`).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

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
                for cert in CertificateDer::pem_file_iter(path).map_err(read)? {
                    roots
                        .add(cert.map_err(read)?)
                        .map_err(|source| TlsError::Rejected {
                            path: path.clone(),
                            source,
                        })?;
                }
                if roots.is_empty() {
                    return Err(TlsError::Pem {
                        path: path.clone(),
                        detail: "no CERTIFICATE block in it".into(),
                    });
                }
                builder.with_root_certificates(roots).with_no_client_auth()
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
