//! TLS for client connections (`tls-port`): the rustls server config built
//! from the `tls-*` knobs. Nothing here encrypts by hand: rustls (ring
//! provider) does the protocol, `rustls-pki-types` reads the PEM files.
//!
//! The handshake itself is done by `Server::serve` before a connection is
//! handed to `connection::handle`, the same path as a plain connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use tokio_rustls::TlsAcceptor;

use crate::config::TlsAuthClients;

/// A client must finish its TLS handshake within this time, or it is
/// dropped (it holds no client slot meanwhile; see `Server::serve`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `tls-*` knobs that make the server config.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `tls-cert-file`: the certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// `tls-key-file`: the leaf's private key.
    pub key_file: PathBuf,
    /// `tls-ca-cert-file`: the CA(s) client certificates must chain to.
    pub ca_cert_file: Option<PathBuf>,
    /// `tls-auth-clients`.
    pub auth_clients: TlsAuthClients,
}

/// The TLS client listener to open: where, and with which server config
/// (built, i.e. the files read and checked, before anything starts).
#[derive(Clone)]
pub struct TlsListen {
    pub addr: String,
    pub acceptor: TlsAcceptor,
}

impl std::fmt::Debug for TlsListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListen")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A startup error that names the knob and the file.
#[derive(Debug, thiserror::Error)]
#[error("{knob} {}: {reason}", file.display())]
pub struct TlsError {
    pub knob: &'static str,
    pub file: PathBuf,
    pub reason: String,
}

fn err(knob: &'static str, file: &Path, reason: impl ToString) -> TlsError {
    TlsError {
        knob,
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Read the certificate chain of `file` (at least one certificate).
fn read_certs(knob: &'static str, file: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| err(knob, file, pem_reason(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(knob, file, pem_reason(e)))?;
    if certs.is_empty() {
        return Err(err(
            knob,
            file,
            "no PEM certificate (BEGIN CERTIFICATE) in the file",
        ));
    }
    Ok(certs)
}

fn pem_reason(e: rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => format!("cannot read: {io}"),
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM private key in the file".into(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// The acceptor for `tls-port`: the server certificate and key, and the
/// client-certificate rule of `tls-auth-clients`.
pub fn acceptor(s: &TlsSettings) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs("tls-cert-file", &s.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&s.key_file)
        .map_err(|e| err("tls-key-file", &s.key_file, pem_reason(e)))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("tls-cert-file", &s.cert_file, e))?;
    let builder = match (s.auth_clients, &s.ca_cert_file) {
        (TlsAuthClients::No, _) => builder.with_no_client_auth(),
        (auth, Some(ca_file)) => {
            let mut roots = RootCertStore::empty();
            for ca in read_certs("tls-ca-cert-file", ca_file)? {
                roots
                    .add(ca)
                    .map_err(|e| err("tls-ca-cert-file", ca_file, e))?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match auth {
                TlsAuthClients::Optional => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier
                .build()
                .map_err(|e| err("tls-ca-cert-file", ca_file, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        // Config::resolve refuses this combination.
        (_, None) => {
            return Err(err(
                "tls-ca-cert-file",
                Path::new(""),
                "needed unless tls-auth-clients is no",
            ))
        }
    };
    // Also checks that the key belongs to the leaf certificate.
    let config = builder.with_single_cert(certs, key).map_err(|e| {
        err(
            "tls-key-file",
            &s.key_file,
            format!("does not fit tls-cert-file {}: {e}", s.cert_file.display()),
        )
    })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
