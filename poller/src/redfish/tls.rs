//! How a BMC's HTTPS certificate is checked (`BmcTls`): a pinned SHA-256 fingerprint,
//! else the CAs of `ca_file`, else the web's public roots; `insecure_tls` accepts any
//! certificate (the handshake's signatures are still checked, so the peer holds the
//! key of the certificate it shows).

use dcmon_inventory::BmcTls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::Digest as _;
use std::sync::Arc;

/// The client configuration for one BMC, or why there is none (a CA file that is not
/// there or holds no certificate).
pub(super) fn config(tls: &BmcTls) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    let trusting: Option<Arc<dyn ServerCertVerifier>> = match (&tls.fingerprint, tls.insecure) {
        (Some(pin), _) => Some(Arc::new(Trusting {
            pin: Some(pin.clone()),
            algorithms,
        })),
        (None, true) => Some(Arc::new(Trusting {
            pin: None,
            algorithms,
        })),
        (None, false) => None,
    };
    let config = match trusting {
        Some(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
        None => builder
            .with_root_certificates(roots(tls)?)
            .with_no_client_auth(),
    };
    Ok(config)
}

fn roots(tls: &BmcTls) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let Some(file) = &tls.ca_file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let shown = file.display();
    let certs = CertificateDer::pem_file_iter(file)
        .map_err(|e| format!("bmc ca_file {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bmc ca_file {shown}: {e}"))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "bmc ca_file {shown} holds no CA certificate (PEM `BEGIN CERTIFICATE` blocks)"
        ));
    }
    Ok(roots)
}

/// A certificate's SHA-256 as lowercase hex.
pub fn fingerprint(cert: &[u8]) -> String {
    sha2::Sha256::digest(cert)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Trusts the certificate whose fingerprint is pinned (`pin`), or any (`insecure_tls`).
#[derive(Debug)]
struct Trusting {
    pin: Option<String>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Trusting {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pin) = &self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        let got = fingerprint(end_entity);
        if &got == pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the certificate's SHA-256 fingerprint is {got}, not the pinned {pin} (bmc tls_fingerprint)"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
