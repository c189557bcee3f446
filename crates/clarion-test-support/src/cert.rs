//! Throwaway TLS certificates written to a private temporary directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A self-signed certificate and its key as PEM files in a directory of their own.
///
/// The directory and everything in it are removed when the value is dropped.
#[derive(Debug)]
pub struct TestCert {
    /// The directory holding both files; unique to this value.
    pub dir: PathBuf,
    /// The certificate, PEM (`cert.pem`). Being self-signed, it is also its own CA file.
    pub cert_pem: PathBuf,
    /// The private key, PKCS#8 PEM (`key.pem`).
    pub key_pem: PathBuf,
    /// The certificate, DER: compare it with what a TLS peer presents.
    pub cert_der: Vec<u8>,
}

/// Creates a self-signed certificate valid for `localhost` and `127.0.0.1`
/// (both as subject alternative names) in a fresh directory under
/// [`std::env::temp_dir`].
pub fn self_signed_cert() -> TestCert {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified =
        rcgen::generate_simple_self_signed(names).expect("generating a test certificate");
    let dir = unique_dir();
    let (cert_pem, key_pem) = (dir.join("cert.pem"), dir.join("key.pem"));
    let cert = TestCert {
        dir,
        cert_pem,
        key_pem,
        cert_der: certified.cert.der().to_vec(),
    };
    write(&cert.cert_pem, certified.cert.pem());
    write(&cert.key_pem, certified.key_pair.serialize_pem());
    cert
}

impl Drop for TestCert {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir must not fail a test.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates a new directory named after the process, a counter and the clock, so
/// neither parallel tests nor leftovers from an earlier run can collide with it.
fn unique_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!("clarion-test-{}-{count}-{nanos}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    // `create_dir`, not `create_dir_all`: it fails rather than reuse an existing directory.
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

fn write(path: &std::path::Path, contents: String) {
    std::fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files_for_localhost_and_loopback_and_removes_them() {
        let cert = self_signed_cert();
        let pem = std::fs::read_to_string(&cert.cert_pem).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        let key = std::fs::read_to_string(&cert.key_pem).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        let der = &cert.cert_der;
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        assert!(contains(b"localhost"), "no DNS SAN for localhost");
        // An iPAddress SAN: context tag [7], length 4, then the address.
        assert!(
            contains(&[0x87, 4, 127, 0, 0, 1]),
            "no IP SAN for 127.0.0.1"
        );

        let dir = cert.dir.clone();
        drop(cert);
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }

    #[test]
    fn every_cert_gets_its_own_directory() {
        let (a, b) = (self_signed_cert(), self_signed_cert());
        assert_ne!(a.dir, b.dir);
        assert_ne!(a.cert_der, b.cert_der);
    }
}
