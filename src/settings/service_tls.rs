//! Whether a TCP instance or the dashboard speaks TLS, and with which
//! certificate files.

use super::*;

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Whether and how the dashboard speaks HTTPS (`web.tls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebTls {
    /// Plain HTTP: for loopback, or behind a proxy that terminates TLS.
    Off,
    /// A certificate generated in `data_dir` on first start.
    SelfSigned,
    /// The PEM files `web.tls_cert` and `web.tls_key`.
    Files(CertFiles),
}

/// Whether and with which certificate a TCP service speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceTls {
    Off,
    /// The dashboard's certificate (the self-signed one when the
    /// dashboard has none).
    Shared,
    /// Its own `tls_cert` and `tls_key`.
    Own(CertFiles),
}

impl ServiceTls {
    /// `tls`, `tls_cert` and `tls_key` of a TCP service; for a UDP one, any
    /// of them is an error saying why.
    ///
    /// # Errors
    /// Half a certificate, files without `tls = true`, or TLS on UDP.
    pub fn read(s: &Section<'_>, proto: Proto) -> Result<Self, ConfigError> {
        if proto == Proto::Udp {
            for field in ["tls", "tls_cert", "tls_key"] {
                if s.is_set(field) {
                    return Err(s.bad(
                        field,
                        "TLS is for the TCP services only; this one speaks UDP, which has no TLS",
                    ));
                }
            }
            return Ok(ServiceTls::Off);
        }
        let on = s.bool("tls", false)?;
        let cert = s.opt_str("tls_cert")?;
        let key = s.opt_str("tls_key")?;
        match (on, cert, key) {
            (false, None, None) => Ok(ServiceTls::Off),
            (false, _, _) => Err(s.bad("tls", "tls_cert and tls_key are set but tls is not true")),
            (true, None, None) => Ok(ServiceTls::Shared),
            (true, Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
                Ok(ServiceTls::Own(CertFiles {
                    cert: PathBuf::from(cert),
                    key: PathBuf::from(key),
                }))
            }
            (true, _, _) => Err(s.bad(
                "tls",
                "give both tls_cert and tls_key (PEM paths), or neither to use the dashboard's certificate",
            )),
        }
    }
}
