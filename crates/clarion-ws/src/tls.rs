//! TLS for the tokio layer, on rustls with the `ring` provider.
//!
//! - [`MaybeTlsStream`]: a client connection that is plain (`ws://`) or TLS (`wss://`).
//! - [`client_config`] and [`connect_tls`]: the client side.
//! - [`server_config_from_pem`] and [`TlsAcceptor`]: the server side, with a
//!   certificate that can be reloaded without a restart.
//!
//! Every configuration is built with an explicit `ring` provider, so nothing here
//! depends on a process-wide default provider being installed. Both sides offer
//! only the ALPN protocol `http/1.1`, the protocol of WebSocket's opening handshake.

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    ring, verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms,
};
use rustls::{AlertDescription, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// A client connection: plain for `ws://`, TLS for `wss://`.
///
/// It reads and writes like the stream inside, so code above it need not care which.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream<S> {
    /// An unencrypted stream (`ws://`).
    Plain(S),
    /// A TLS client stream over `S` (`wss://`). Boxed: the TLS state is
    /// about 1 KiB, which plain connections should not carry.
    Tls(Box<tokio_rustls::client::TlsStream<S>>),
}

/// Calls the same method on whichever stream is inside.
macro_rules! forward {
    ($this:expr, $s:ident => $call:expr) => {
        match $this {
            MaybeTlsStream::Plain($s) => $call,
            MaybeTlsStream::Tls($s) => $call,
        }
    };
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        forward!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        forward!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        forward!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        forward!(self, s => s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        forward!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

/// How a client verifies the server's certificate. The default trusts the system's roots.
#[derive(Clone, Debug, Default)]
pub struct TlsClientOptions {
    /// A PEM file of CA certificates to trust *in addition to* the system's roots
    /// (default: none). Use it for a private CA or a self-signed server certificate.
    /// Ignored when `insecure` is set.
    pub ca_file: Option<PathBuf>,
    /// **Dangerous.** Accept any server certificate, unverified (default: `false`).
    ///
    /// The connection is still encrypted, but to whoever answered: anyone on the
    /// path can impersonate the server and read everything. For local testing only;
    /// never set it from untrusted input or in production.
    pub insecure: bool,
}

/// Builds a client configuration from `options`, offering ALPN `http/1.1`.
///
/// The roots are the system's (via `rustls-native-certs`, which honours
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus every certificate in `ca_file`.
/// Fails if the CA file cannot be read or holds no valid certificate, or if the
/// system has no roots and no CA file is given (such a client could trust no one).
/// Build it once and share the `Arc`: loading the system roots reads many files.
pub fn client_config(options: &TlsClientOptions) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let verifier = NoCertificateVerification(provider.signature_verification_algorithms);
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new("cannot build the TLS client configuration".into(), e))?;
    let mut config = if options.insecure {
        tracing::warn!("TLS certificate verification is DISABLED: any server will be trusted");
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier));
        builder.with_no_client_auth()
    } else {
        let roots = root_store(options.ca_file.as_deref())?;
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if !native.errors.is_empty() || ignored > 0 {
        let errors = &native.errors;
        tracing::warn!(
            added,
            ignored,
            ?errors,
            "some system root certificates were not loaded"
        );
    }
    let Some(path) = ca_file else {
        if added > 0 {
            return Ok(roots);
        }
        let message = "no system root certificates found; give a CA file or set SSL_CERT_FILE";
        let cause = format!("load errors: {:?}", native.errors);
        return Err(TlsError::new(message.to_owned(), cause));
    };
    for cert in read_certs(path, "CA file")? {
        let message = || format!("invalid certificate in TLS CA file {}", path.display());
        roots.add(cert).map_err(|e| TlsError::new(message(), e))?;
    }
    Ok(roots)
}

/// Opens TLS over `stream` to `host`, a DNS name or an IP literal (`::1` or `[::1]`).
///
/// # Cancel safety
///
/// Not cancel safe: dropping the future abandons the handshake and drops `stream`.
/// Wrap it in `tokio::time::timeout` to bound the handshake.
pub async fn connect_tls<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    config: Arc<ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<S>, TlsError> {
    let name = server_name(host)?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector.connect(name, stream).await;
    tls.map_err(|e| TlsError::handshake(host, e))
}

fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let ipv6 = unbracketed.filter(|h| h.parse::<Ipv6Addr>().is_ok());
    let message = || format!("{host:?} is not a valid TLS server name");
    ServerName::try_from(ipv6.unwrap_or(host).to_owned()).map_err(|e| TlsError::new(message(), e))
}

/// Builds a server configuration from a PEM certificate chain (leaf first) and a
/// PEM private key (PKCS#8, PKCS#1 or SEC1). No client authentication; ALPN `http/1.1`.
///
/// Fails if a file cannot be read, holds nothing usable, or the key does not match
/// the certificate.
pub fn server_config_from_pem(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certs(cert, "certificate file")?;
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("key file", key, e))?;
    let message = || {
        format!(
            "cannot use TLS certificate {} with key {}",
            cert.display(),
            key.display()
        )
    };
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, private_key)
        })
        .map_err(|e| TlsError::new(message(), e))?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error(what, path, e))?;
    match certs.is_empty() {
        true => Err(file_error(what, path, pem::Error::NoItemsFound)),
        false => Ok(certs),
    }
}

fn file_error(what: &str, path: &Path, source: pem::Error) -> TlsError {
    TlsError::new(format!("cannot read TLS {what} {}", path.display()), source)
}

/// Accepts TLS connections with a certificate and key read from PEM files, and
/// re-reads them on [`reload`](Self::reload).
///
/// Cheap to clone; clones share the configuration, so a reload through one is
/// seen by all. Connections already open keep the certificate they started with.
#[derive(Clone)]
pub struct TlsAcceptor {
    shared: Arc<Shared>,
    handshake_timeout: Duration,
}

/// The default bound on a server's TLS handshake: 10 s, generous for a slow
/// mobile link, short enough that a client that stops after the TCP
/// handshake (or in the middle of TLS) does not hold a task and its buffers.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct Shared {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Reads the certificate chain and private key (see [`server_config_from_pem`]).
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, TlsError> {
        let (cert, key) = (cert.as_ref().to_owned(), key.as_ref().to_owned());
        let config = RwLock::new(server_config_from_pem(&cert, &key)?);
        Ok(Self {
            shared: Arc::new(Shared { cert, key, config }),
            handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
        })
    }

    /// Bounds each TLS handshake [`accept`](Self::accept) runs (default
    /// [`DEFAULT_TLS_HANDSHAKE_TIMEOUT`]). It is separate from the WebSocket
    /// handshake's `Config::handshake_timeout`, which starts once TLS is up.
    /// A zero duration is taken as 1 ms.
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Runs the server side of the TLS handshake over `stream`, within the
    /// handshake timeout (then [`TlsError::is_timeout`]).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future abandons the handshake and drops `stream`.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> Result<tokio_rustls::server::TlsStream<S>, TlsError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
            Ok(tls) => tls.map_err(|e| TlsError::handshake("client", e)),
            Err(_elapsed) => {
                let timeout = io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
                Err(TlsError::handshake("client", timeout))
            }
        }
    }

    /// The certificate chain and key files, as given.
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.shared.cert, &self.shared.key)
    }

    /// Re-reads the same two files and uses them for connections accepted from now on.
    ///
    /// On error the previous configuration stays in place and the error is returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config_from_pem(&self.shared.cert, &self.shared.key)?;
        // The lock only guards an `Arc` swap, which cannot panic: poisoning is harmless.
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
        tracing::info!(cert = %self.shared.cert.display(), "TLS certificate reloaded");
        Ok(())
    }

    /// The configuration new connections are accepted with (for an HTTP server's own TLS).
    pub fn config(&self) -> Arc<ServerConfig> {
        let config = self.shared.config.read();
        Arc::clone(&config.unwrap_or_else(PoisonError::into_inner))
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (cert, key) = (&self.shared.cert, &self.shared.key);
        f.debug_struct("TlsAcceptor")
            .field("cert", cert)
            .field("key", key)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// Accepts every server certificate: what `insecure: true` installs.
///
/// **It authenticates no one.** Handshake signatures are still checked with the
/// provider's algorithms, which keeps the session keys bound to the presented
/// certificate — but that certificate can belong to anyone.
#[derive(Debug)]
struct NoCertificateVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Why reading TLS files, building a TLS configuration or a TLS handshake failed.
///
/// The message names what failed and which file; [`source`](std::error::Error::source)
/// gives the underlying cause.
#[derive(Debug)]
pub struct TlsError {
    message: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl TlsError {
    fn new(message: String, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            message,
            source: source.into(),
        }
    }

    fn handshake(peer: &str, source: io::Error) -> Self {
        Self::new(format!("TLS handshake with {peer} failed"), source)
    }

    /// Whether a handshake failed (as opposed to reading files or building a configuration).
    pub fn is_handshake(&self) -> bool {
        // Only handshakes fail with an `io::Error`; file errors come wrapped in `pem::Error`.
        self.source.is::<io::Error>()
    }

    /// Whether a handshake took longer than its timeout.
    pub fn is_timeout(&self) -> bool {
        let io_error = self.source.downcast_ref::<io::Error>();
        io_error.is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
    }

    /// Whether a handshake failed because a certificate was rejected: the peer's by
    /// us, or ours by the peer (as far as its alert tells).
    pub fn is_certificate(&self) -> bool {
        let io_error = self.source.downcast_ref::<io::Error>();
        match io_error.and_then(|e| e.get_ref()?.downcast_ref::<rustls::Error>()) {
            Some(rustls::Error::InvalidCertificate(_)) => true,
            Some(rustls::Error::AlertReceived(alert)) => is_certificate_alert(*alert),
            _ => false,
        }
    }
}

fn is_certificate_alert(alert: AlertDescription) -> bool {
    use AlertDescription::*;
    matches!(
        alert,
        BadCertificate
            | UnsupportedCertificate
            | CertificateRevoked
            | CertificateExpired
            | CertificateUnknown
            | UnknownCA
    )
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

    /// A fresh directory holding `cert.pem` and `key.pem`, removed on drop.
    struct CertDir {
        dir: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    }

    impl CertDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("clarion-tls-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            let this = Self { dir, cert, key };
            this.write_new_cert();
            this
        }

        /// Writes a new self-signed cert for `localhost` and `127.0.0.1`; returns its DER.
        fn write_new_cert(&self) -> Vec<u8> {
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            let certified = rcgen::generate_simple_self_signed(names).unwrap();
            std::fs::write(&self.cert, certified.cert.pem()).unwrap();
            std::fs::write(&self.key, certified.key_pair.serialize_pem()).unwrap();
            certified.cert.der().to_vec()
        }

        fn trusted(&self) -> TlsClientOptions {
            TlsClientOptions {
                ca_file: Some(self.cert.clone()),
                insecure: false,
            }
        }
    }

    impl Drop for CertDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const INSECURE: TlsClientOptions = TlsClientOptions {
        ca_file: None,
        insecure: true,
    };

    /// Serves a TLS echo on 127.0.0.1 until the test's runtime ends.
    async fn echo_server(acceptor: TlsAcceptor) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let (mut reader, mut writer) = tokio::io::split(tls);
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
            }
        });
        addr
    }

    async fn connect(
        addr: SocketAddr,
        host: &str,
        options: &TlsClientOptions,
    ) -> Result<ClientStream, TlsError> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        connect_tls(tcp, host, client_config(options)?).await
    }

    fn peer_cert(tls: &ClientStream) -> Vec<u8> {
        tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
    }

    async fn assert_echoes<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
        let mut stream = stream;
        let bufs = [io::IoSlice::new(b"hello, "), io::IoSlice::new(b"tls")];
        let mut written = 0;
        while written < 10 {
            written += stream
                .write_vectored(&bufs[usize::from(written >= 7)..])
                .await
                .unwrap();
            assert!(
                written == 7 || written == 10,
                "partial vectored write: {written}"
            );
        }
        let mut echoed = [0; 10];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"hello, tls");
    }

    #[tokio::test]
    async fn tls_echo_trusting_the_ca_file_by_name_and_by_ip() {
        let certs = CertDir::new();
        let addr = echo_server(TlsAcceptor::from_pem_files(&certs.cert, &certs.key).unwrap()).await;
        for host in ["localhost", "127.0.0.1"] {
            let tls = connect(addr, host, &certs.trusted()).await.unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(ALPN_HTTP_1_1));
            assert_echoes(MaybeTlsStream::Tls(Box::new(tls))).await;
        }
    }

    #[tokio::test]
    async fn plain_stream_forwards_reads_and_writes() {
        let (client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            let mut buf = [0; 10];
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(&buf).await.unwrap();
        });
        assert_echoes(MaybeTlsStream::Plain(client)).await;
    }

    #[tokio::test]
    async fn an_unknown_certificate_is_rejected_unless_insecure() {
        let (served, unrelated) = (CertDir::new(), CertDir::new());
        let addr =
            echo_server(TlsAcceptor::from_pem_files(&served.cert, &served.key).unwrap()).await;
        let err = connect(addr, "localhost", &unrelated.trusted())
            .await
            .unwrap_err();
        assert!(err.is_handshake() && err.is_certificate(), "{err:?}");
        assert_echoes(connect(addr, "localhost", &INSECURE).await.unwrap()).await;
    }

    #[tokio::test]
    async fn reload_serves_the_new_cert_and_keeps_the_old_one_on_error() {
        let certs = CertDir::new();
        let acceptor = TlsAcceptor::from_pem_files(&certs.cert, &certs.key).unwrap();
        let addr = echo_server(acceptor.clone()).await;
        let old = peer_cert(&connect(addr, "localhost", &INSECURE).await.unwrap());

        let new = certs.write_new_cert();
        assert_ne!(old, new);
        acceptor.reload().unwrap();
        assert_eq!(
            peer_cert(&connect(addr, "localhost", &INSECURE).await.unwrap()),
            new
        );

        std::fs::write(&certs.key, "-----BEGIN PRIVATE KEY-----\nbroken\n").unwrap();
        let err = acceptor.reload().unwrap_err();
        assert!(
            err.to_string().contains("key.pem") && !err.is_handshake(),
            "{err}"
        );
        assert_eq!(
            peer_cert(&connect(addr, "localhost", &INSECURE).await.unwrap()),
            new
        );
    }

    #[tokio::test]
    async fn a_silent_client_times_out_the_tls_handshake() {
        let certs = CertDir::new();
        let acceptor = TlsAcceptor::from_pem_files(&certs.cert, &certs.key)
            .unwrap()
            .with_handshake_timeout(Duration::from_millis(200));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = TcpStream::connect(addr).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let started = std::time::Instant::now();
        let err = acceptor.accept(tcp).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(err.is_timeout() && err.is_handshake(), "{err:?}");
        assert!(
            elapsed >= Duration::from_millis(190) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
    }

    #[test]
    fn errors_name_the_file_and_server_names_parse() {
        let ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = client_config(&TlsClientOptions {
            ca_file,
            insecure: false,
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read TLS CA file /nonexistent/ca.pem"
        );
        let certs = CertDir::new();
        let err = server_config_from_pem(&certs.key, &certs.key).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read TLS certificate file"),
            "{err}"
        );

        for host in ["example.com", "127.0.0.1", "::1"] {
            server_name(host).unwrap();
        }
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(!server_name("bad name").unwrap_err().is_handshake());
    }
}
