//! A TLS server on 127.0.0.1 whose certificate (for `localhost` and
//! `127.0.0.1`) is self-signed, i.e. trusted by no client unless told to: the
//! peer every client must refuse by default. It records how many handshakes
//! completed and whether any application byte (a request, a password) arrived.
//!
//! The certificate and key are in `tests/data/tls/` (a test-only key), made with
//! `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
//! -keyout self-signed.key -out self-signed.crt -days 36500 -subj /CN=localhost
//! -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext
//! basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature
//! -addext extendedKeyUsage=serverAuth` (not a CA: webpki refuses a CA
//! certificate as a server's own, even when trusted).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The self-signed certificate, PEM.
pub fn cert_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls/self-signed.crt")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let cert = CertificateDer::from_pem_file(cert_path()).unwrap();
    let key = PrivateKeyDer::from_pem_file(cert_path().with_extension("key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    /// TCP connections accepted.
    pub connections: AtomicUsize,
    /// TLS handshakes that completed.
    pub handshakes: AtomicUsize,
    /// Bytes of application data received inside TLS.
    pub app_bytes: AtomicUsize,
}

impl Seen {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
    pub fn app_bytes(&self) -> usize {
        self.app_bytes.load(Ordering::SeqCst)
    }
}

/// How a connection starts before TLS.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Preamble {
    /// TLS from the first byte (HTTPS, Redis).
    None,
    /// PostgreSQL: the client's 8-byte SSLRequest, answered `S`. Anything else
    /// (a plaintext StartupMessage) is counted and the connection closed.
    Postgres,
}

/// Starts the server; returns its port and what it sees.
pub async fn self_signed_server(preamble: Preamble) -> (u16, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let record = seen.clone();
    let acceptor = acceptor();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            record.connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                if preamble == Preamble::Postgres {
                    let mut head = [0u8; 8];
                    if sock.read_exact(&mut head).await.is_err() {
                        return;
                    }
                    // Length 8, code 80877103: SSLRequest.
                    if head != [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
                        return;
                    }
                    if sock.write_all(b"S").await.is_err() {
                        return;
                    }
                }
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                record.handshakes.fetch_add(1, Ordering::SeqCst);
                // The first bytes a client sends are what matters (a request,
                // AUTH); then close, so a trusting client fails fast.
                let mut buf = vec![0u8; 4096];
                if let Ok(n) = tls.read(&mut buf).await {
                    record.app_bytes.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    (port, seen)
}

/// Proves the server works: a client that trusts the certificate completes the
/// handshake and sends a byte. Without it a refusal could be a broken server.
pub async fn assert_trusting_client_connects(port: u16, preamble: Preamble, seen: &Seen) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(cert_path()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let before = seen.handshakes();
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    if preamble == Preamble::Postgres {
        tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
            .await
            .unwrap();
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"S");
    }
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("a client trusting the certificate connects");
    tls.write_all(b"x").await.unwrap();
    tls.flush().await.unwrap();
    drop(tls);
    // The server counts the handshake once it has read the client's Finished.
    for _ in 0..500 {
        if seen.handshakes() > before {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the server never completed the trusting client's handshake");
}
