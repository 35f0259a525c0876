//! TLS for the dashboard and the TCP services, and for our own clients.
//!
//! - [`Certs`]: every server certificate the configuration asks for,
//!   loaded once at start. `self-signed` generates one in `data_dir` on
//!   first start (key file owner-only) and reuses it afterwards; `files`
//!   loads PEM files. Services with `tls = true` and no files of their own
//!   share the dashboard's.
//! - [`ServerTls`]: one certificate's acceptor behind an `Arc` that is
//!   swapped when its files change ([`Certs::watch`] checks their mtime
//!   every [`RELOAD_INTERVAL`]): new handshakes get the new certificate,
//!   connections already open keep theirs and are never dropped.
//! - [`ClientTls`]: what our clients trust: a CA file (PEM), or exactly one
//!   certificate named by its SHA-256 fingerprint (`--pin`).
//!
//! rustls runs on its ring provider only, passed explicitly everywhere, so
//! no process-wide default provider is needed. Not here: client
//! certificates, ALPN/HTTP/2, TLS for UDP.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::settings::{CertFiles, ServiceTls, WebTls};

/// How long a peer has to complete a TLS handshake, on every TLS port:
/// well under a service's default `evict_idle_ms` (10 s), so a handshake
/// never outlives the age at which an idle connection could be closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often certificate files are checked for a change.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// The generated certificate's file names inside `data_dir`.
pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// Why a certificate or a trust setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "no certificate to share: the dashboard has none and no service uses one; give tls_cert and tls_key"
    )]
    NothingToShare,
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{}: {source}", path.display())]
    Rejected {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("`{0}` is not a SHA-256 fingerprint: expected 64 hex digits (colons allowed)")]
    BadPin(String),
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
}

/// The ring provider, the only one built in.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SHA-256 of a certificate's DER bytes, as lowercase hex: what
/// `--pin` takes and the banner prints.
pub fn fingerprint(cert: &[u8]) -> String {
    crate::wire::hex(&Sha256::digest(cert))
}

/// Parses a `--pin`: 64 hex digits, colons and case ignored.
///
/// # Errors
/// [`TlsError::BadPin`].
pub fn parse_pin(text: &str) -> Result<[u8; 32], TlsError> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let bad = || TlsError::BadPin(text.to_owned());
    if digits.len() != 64 || !digits.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The SHA-256 of the first certificate in a PEM file, as a pin.
///
/// # Errors
/// The file is unreadable or holds no certificate.
pub fn pin_of_file(path: &Path) -> Result<[u8; 32], TlsError> {
    let cert = CertificateDer::pem_file_iter(path)
        .and_then(|mut certs| certs.next().transpose())
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            detail: e.to_string(),
        })?
        .ok_or_else(|| TlsError::Pem {
            path: path.to_owned(),
            detail: "no CERTIFICATE block in it".into(),
        })?;
    Ok(Sha256::digest(cert.as_ref()).into())
}

/// One loaded certificate and its key, ready for handshakes.
struct Loaded {
    config: Arc<ServerConfig>,
    fingerprint: String,
    /// The files' mtimes when read: a change means reload.
    stamp: (Option<SystemTime>, Option<SystemTime>),
}

/// A server certificate whose files may change under it.
pub struct ServerTls {
    files: CertFiles,
    current: RwLock<Loaded>,
}

fn stamp(files: &CertFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (mtime(&files.cert), mtime(&files.key))
}

fn load(files: &CertFiles) -> Result<Loaded, TlsError> {
    let stamp = stamp(files);
    let pem_err = |path: &Path, e: rustls::pki_types::pem::Error| match e {
        rustls::pki_types::pem::Error::Io(source) => TlsError::Read {
            path: path.to_owned(),
            source,
        },
        other => TlsError::Pem {
            path: path.to_owned(),
            detail: format!("not a PEM file: {other}"),
        },
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| pem_err(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(&files.cert, e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::Pem {
            path: files.cert.clone(),
            detail: "no CERTIFICATE block in it".into(),
        });
    };
    let fingerprint = fingerprint(leaf);
    warn_if_out_of_date(&files.cert, leaf);
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_err(&files.key, e))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|source| TlsError::Rejected {
            path: files.key.clone(),
            source,
        })?;
    Ok(Loaded {
        config: Arc::new(config),
        fingerprint,
        stamp,
    })
}

/// Warns when `leaf` is outside its dates, which every client checking
/// them will refuse: served all the same (so a lapsed certificate does not
/// stop the server, and `--pin` clients still reach it), but the log says
/// why the others fail. webpki checks a certificate's dates before its
/// issuer, so no trust anchor is needed to learn them.
fn warn_if_out_of_date(path: &Path, leaf: &CertificateDer<'_>) {
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return;
    };
    let day = |t: rustls::pki_types::UnixTime| {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let checked = cert.verify_for_usage(
        provider().signature_verification_algorithms.all,
        &[],
        &[],
        rustls::pki_types::UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    match checked {
        Err(webpki::Error::CertExpired { not_after, .. }) => tracing::warn!(
            "TLS certificate {} expired at {}: clients that check it will refuse it",
            path.display(),
            day(not_after)
        ),
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => tracing::warn!(
            "TLS certificate {} is not valid before {}: clients that check it will refuse it",
            path.display(),
            day(not_before)
        ),
        _ => {}
    }
}

impl ServerTls {
    /// Loads a certificate chain and its key from PEM files.
    ///
    /// # Errors
    /// Unreadable files, no certificate, a key that does not fit.
    pub fn load(files: &CertFiles) -> Result<Arc<ServerTls>, TlsError> {
        Ok(Arc::new(ServerTls {
            current: RwLock::new(load(files)?),
            files: files.clone(),
        }))
    }

    /// The acceptor for the next handshake (the certificate now in force).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.read().config))
    }

    /// The SHA-256 of the certificate now in force, as hex.
    pub fn fingerprint(&self) -> String {
        self.read().fingerprint.clone()
    }

    /// A client trusting exactly the certificate now in force: how this
    /// process (the dashboard's relay) talks to its own TLS services.
    ///
    /// # Errors
    /// None in practice: building a pinned client reads no file.
    pub fn pinned_client(&self) -> Result<ClientTls, TlsError> {
        let pin = parse_pin(&self.fingerprint())?;
        ClientTls::new(&Trust::Pin(pin))
    }

    /// The PEM files it comes from.
    pub fn files(&self) -> &CertFiles {
        &self.files
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        // A poisoned lock still holds a complete `Loaded`: it is only ever
        // replaced whole.
        crate::sync::read(&self.current)
    }

    /// Reloads if the files' mtimes changed; returns whether it did. A
    /// file that fails to load (half-written, say) keeps the old
    /// certificate in force and is tried again at the next change.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.files);
        if now == self.read().stamp {
            return false;
        }
        match load(&self.files) {
            Ok(loaded) => {
                tracing::info!(
                    "TLS certificate {} reloaded, SHA-256 {}",
                    self.files.cert.display(),
                    loaded.fingerprint
                );
                *crate::sync::write(&self.current) = loaded;
                true
            }
            Err(e) => {
                tracing::warn!("TLS certificate not reloaded, the old one stays: {e}");
                // Remember the stamp so a broken file is reported once.
                crate::sync::write(&self.current).stamp = now;
                false
            }
        }
    }
}

/// The names a generated certificate is valid for: loopback, the
/// dashboard's own address (`web_ip`), and every `web.allowed_hosts` name.
pub fn self_signed_names(web_ip: std::net::IpAddr, allowed_hosts: &[String]) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    if !web_ip.is_unspecified() {
        names.push(web_ip.to_string());
    }
    for host in allowed_hosts {
        names.push(strip_port(host).to_owned());
    }
    names.retain(|n| !n.is_empty());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    names
}

/// `host:port` → `host`, `[v6]:port` → `v6`; a bare host is kept.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.parse::<u16>().is_ok() => h,
        _ => host,
    }
}

/// The generated certificate's files in `data_dir`.
pub fn self_signed_files(data_dir: &Path) -> CertFiles {
    CertFiles {
        cert: data_dir.join(SELF_SIGNED_CERT),
        key: data_dir.join(SELF_SIGNED_KEY),
    }
}

/// Generates the self-signed certificate in `data_dir` unless both files
/// exist already; returns its files and whether they were just created.
///
/// # Errors
/// The folder or files cannot be written, or generation fails.
pub fn ensure_self_signed(
    data_dir: &Path,
    names: Vec<String>,
) -> Result<(CertFiles, bool), TlsError> {
    let files = self_signed_files(data_dir);
    if files.cert.exists() && files.key.exists() {
        return Ok((files, false));
    }
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
    let write = |path: &Path, text: &str, mode: u32| -> Result<(), TlsError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source| TlsError::Write {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(err)?;
        // Written aside, then renamed: a reader never sees half a file.
        let tmp = path.with_extension("pem.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err)?;
        file.write_all(text.as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    };
    // The key first and owner-only: a certificate without its key is useless.
    write(&files.key, &signing_key.serialize_pem(), 0o600)?;
    // Public, but owner-only like everything in the data directory: a client
    // that pins it gets its fingerprint from the banner, not the file.
    write(&files.cert, &cert.pem(), 0o600)?;
    Ok((files, true))
}

/// What [`Certs::open`] loads: the dashboard's and each instance's TLS
/// settings, and where and for which names a certificate is generated.
pub struct Wanted<'a> {
    /// Where the generated certificate lives.
    pub data_dir: &'a Path,
    /// The names a generated certificate is valid for ([`self_signed_names`]).
    pub names: Vec<String>,
    pub web: &'a WebTls,
    /// Each instance's name and TLS setting.
    pub services: Vec<(&'a str, &'a ServiceTls)>,
}

/// Every server certificate in use, shared by the dashboard and services.
#[derive(Clone, Default)]
pub struct Certs {
    web: Option<Arc<ServerTls>>,
    services: std::collections::HashMap<String, Option<Arc<ServerTls>>>,
    /// The generated certificate, if any, and whether it was made now.
    generated: Option<(PathBuf, bool)>,
}

impl Certs {
    /// Loads (or generates) what `wanted` asks for.
    ///
    /// # Errors
    /// A certificate that cannot be loaded or generated.
    pub fn open(wanted: Wanted<'_>) -> Result<Certs, TlsError> {
        let mut certs = Certs {
            services: std::collections::HashMap::new(),
            ..Certs::default()
        };
        let mut generated: Option<Arc<ServerTls>> = None;
        let mut self_signed = |certs: &mut Certs| -> Result<Arc<ServerTls>, TlsError> {
            if let Some(tls) = &generated {
                return Ok(Arc::clone(tls));
            }
            let (files, created) = ensure_self_signed(wanted.data_dir, wanted.names.clone())?;
            let tls = ServerTls::load(&files)?;
            certs.generated = Some((files.cert, created));
            generated = Some(Arc::clone(&tls));
            Ok(tls)
        };
        certs.web = match wanted.web {
            WebTls::Off => None,
            WebTls::SelfSigned => Some(self_signed(&mut certs)?),
            WebTls::Files(files) => Some(ServerTls::load(files)?),
        };
        for (name, tls) in &wanted.services {
            let tls = match tls {
                ServiceTls::Off => None,
                ServiceTls::Shared => match &certs.web {
                    Some(web) => Some(Arc::clone(web)),
                    None => Some(self_signed(&mut certs)?),
                },
                ServiceTls::Own(files) => Some(ServerTls::load(files)?),
            };
            certs.services.insert((*name).to_owned(), tls);
        }
        Ok(certs)
    }

    /// The certificate for an instance added while running: its own files,
    /// or the one the dashboard and other services already use.
    ///
    /// # Errors
    /// The files cannot be loaded, or there is no certificate to share.
    pub fn for_added(&self, tls: &ServiceTls) -> Result<Option<Arc<ServerTls>>, TlsError> {
        match tls {
            ServiceTls::Off => Ok(None),
            ServiceTls::Own(files) => ServerTls::load(files).map(Some),
            ServiceTls::Shared => self
                .web
                .clone()
                .or_else(|| self.distinct().into_iter().next())
                .map(Some)
                .ok_or(TlsError::NothingToShare),
        }
    }

    /// The dashboard's certificate, when it speaks HTTPS.
    pub fn web(&self) -> Option<&Arc<ServerTls>> {
        self.web.as_ref()
    }

    /// A service's certificate, when it speaks TLS.
    pub fn service(&self, name: impl AsRef<str>) -> Option<Arc<ServerTls>> {
        self.services.get(name.as_ref()).cloned().flatten()
    }

    /// The generated certificate's path and whether it was created now.
    pub fn generated(&self) -> Option<(&Path, bool)> {
        self.generated.as_ref().map(|(p, c)| (p.as_path(), *c))
    }

    /// Each distinct certificate once.
    fn distinct(&self) -> Vec<Arc<ServerTls>> {
        let mut out: Vec<Arc<ServerTls>> = Vec::new();
        for tls in self.web.iter().chain(self.services.values().flatten()) {
            if !out.iter().any(|o| Arc::ptr_eq(o, tls)) {
                out.push(Arc::clone(tls));
            }
        }
        out
    }

    /// Checks every certificate's files each [`RELOAD_INTERVAL`] and swaps
    /// in the ones that changed, until `cancel` fires.
    pub async fn watch(self, cancel: CancellationToken) {
        let all = self.distinct();
        if all.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while cancel.run_until_cancelled(tick.tick()).await.is_some() {
            for tls in &all {
                tls.reload_if_changed();
            }
        }
    }
}

/// A TLS handshake failure in words: rustls's reason when there is one.
pub fn describe(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        // webpki's own words for it are `Other(OtherError(CaUsedAsEndEntity))`.
        Some(tls) if client::is_ca_used_as_end_entity(tls) => {
            "the server's certificate is marked as a CA: as a server's own it is trusted only \
             when it is self-signed and itself in the CA file (or --pin it)"
                .to_owned()
        }
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
            "the server's certificate is not signed by a CA in the CA file, nor is it one \
             of them (UnknownIssuer)"
                .to_owned()
        }
        Some(tls) => tls.to_string(),
        None => e.to_string(),
    }
}

mod client;
mod der;

pub use client::{ClientTls, Trust};

#[cfg(test)]
mod tests;
