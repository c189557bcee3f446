//! `wss://` over real loopback sockets: a TLS echo with a self-signed
//! certificate, trusted through a CA file or refused without it.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use clarion_ws::tls::{TlsAcceptor, TlsClientOptions, TlsError};
use clarion_ws::{accept, connect_with, CloseCode, Config, ConnectOptions, Error, Message};
use common::*;
use std::error::Error as _;

/// A self-signed certificate for `localhost` in a fresh directory, removed on drop.
struct Certs {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Certs {
    fn new() -> Certs {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("clarion-ws-tls-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, certified.cert.pem()).expect("writing cert.pem");
        std::fs::write(&key, certified.key_pair.serialize_pem()).expect("writing key.pem");
        Certs { dir, cert, key }
    }

    /// Client options that trust this certificate.
    fn trusted(&self) -> ConnectOptions {
        let mut options = ConnectOptions::default();
        options.tls = TlsClientOptions {
            ca_file: Some(self.cert.clone()),
            insecure: false,
        };
        options
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serves a WebSocket echo over TLS until the test's runtime ends.
async fn spawn_wss_echo(certs: &Certs) -> SocketAddr {
    let acceptor = TlsAcceptor::from_pem_files(&certs.cert, &certs.key).expect("acceptor");
    let (listener, addr) = listen().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut ws) = accept(tls, &Config::default()).await else {
                    return;
                };
                while let Some(Ok(message)) = ws.recv().await {
                    if ws.send(message).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn wss_url(addr: SocketAddr) -> String {
    format!("wss://localhost:{}/", addr.port())
}

/// The TLS error inside a connect error, if that is what it is.
fn tls_error(error: &Error) -> Option<&TlsError> {
    error.source()?.downcast_ref::<TlsError>()
}

#[tokio::test]
async fn a_wss_echo_trusting_the_ca_file() {
    bounded(async {
        let certs = Certs::new();
        let addr = spawn_wss_echo(&certs).await;
        let (mut ws, response) = connect_with(&wss_url(addr), &Config::default(), &certs.trusted())
            .await
            .expect("wss connect");
        assert_eq!(response.status(), 101);
        for message in [Message::text("over TLS"), Message::binary(vec![1; 100_000])] {
            ws.send(message.clone()).await.expect("send");
            assert_eq!(
                ws.recv().await.expect("a message").expect("no error"),
                message
            );
        }
        ws.close(CloseCode::NORMAL, "").await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_wss_client_without_the_ca_fails() {
    bounded(async {
        let certs = Certs::new();
        let addr = spawn_wss_echo(&certs).await;
        let error = connect_with(
            &wss_url(addr),
            &Config::default(),
            &ConnectOptions::default(),
        )
        .await
        .expect_err("connected to an untrusted server");
        // With system roots: the certificate is refused. Without any: the
        // client configuration itself fails. Either way, a TLS error.
        assert!(tls_error(&error).is_some(), "{error:?}");
    })
    .await;
}

#[tokio::test]
async fn a_wss_client_trusting_another_ca_refuses_the_certificate() {
    bounded(async {
        let (served, unrelated) = (Certs::new(), Certs::new());
        let addr = spawn_wss_echo(&served).await;
        let error = connect_with(&wss_url(addr), &Config::default(), &unrelated.trusted())
            .await
            .expect_err("connected to an untrusted server");
        let tls = tls_error(&error).unwrap_or_else(|| panic!("not a TLS error: {error:?}"));
        assert!(tls.is_handshake() && tls.is_certificate(), "{tls:?}");
    })
    .await;
}
