//! Keys of one control plane, made with the `openssl` command: a CA and the
//! API server's serving certificate (kept across restarts, so clients keep
//! trusting it), and the service-account signing key (RSA) with its public
//! half.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// The files of the service-account key pair.
#[derive(Debug, Clone)]
pub struct ServiceAccountKey {
    /// PKCS#8 private key (`--service-account-signing-key-file`).
    pub private: PathBuf,
    /// Public key (`--service-account-key-file`).
    pub public: PathBuf,
}

fn openssl(args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| Error::Setup(format!("openssl: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Setup(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Generate a fresh service-account key pair in `dir`.
pub fn service_account_key(dir: &Path) -> Result<ServiceAccountKey> {
    let private = dir.join("sa.key");
    let public = dir.join("sa.pub");
    let (p, q) = (private.to_string_lossy(), public.to_string_lossy());
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &p,
    ])?;
    openssl(&["pkey", "-in", &p, "-pubout", "-out", &q])?;
    Ok(ServiceAccountKey { private, public })
}

/// A random hex token of 32 bytes (from the kernel's random source).
pub fn random_token() -> Result<String> {
    let mut buf = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// The API server's TLS files.
#[derive(Debug, Clone)]
pub struct Serving {
    /// The CA that signed the certificate (what clients trust).
    pub ca: PathBuf,
    /// Serving certificate for 127.0.0.1 and localhost.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

/// A fresh CA and a serving certificate for 127.0.0.1 in `dir`.
pub fn serving(dir: &Path) -> Result<Serving> {
    let f = |n: &str| dir.join(n);
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let (ca, ca_key, cert, key, csr, ext) = (
        f("ca.crt"),
        f("ca.key"),
        f("tls.crt"),
        f("tls.key"),
        f("tls.csr"),
        f("tls.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509", "-days", "3", "-subj", "/CN=mplb-test-ca"];
    args.extend(ec);
    let (ca_s, ca_key_s) = (s(&ca), s(&ca_key));
    args.extend(["-keyout", &ca_key_s, "-out", &ca_s]);
    openssl(&args)?;
    let (key_s, csr_s, cert_s, ext_s) = (s(&key), s(&csr), s(&cert), s(&ext));
    let mut args = vec!["req", "-subj", "/CN=kube-apiserver"];
    args.extend(ec);
    args.extend(["-keyout", &key_s, "-out", &csr_s]);
    openssl(&args)?;
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr_s,
        "-CA",
        &ca_s,
        "-CAkey",
        &ca_key_s,
        "-CAcreateserial",
        "-days",
        "3",
        "-extfile",
        &ext_s,
        "-out",
        &cert_s,
    ])?;
    Ok(Serving { ca, cert, key })
}

/// A JWT signed RS256 with `key` (a PKCS#8 RSA key file) over `claims`,
/// without a key id: tests forge tokens the API server's own key signed
/// (an expired one, say) to see them refused for the right reason.
pub fn jwt_rs256(key: &Path, claims: &serde_json::Value) -> Result<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Setup(format!("openssl: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, signing_input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(Error::Setup("openssl dgst -sign failed".into()));
    }
    Ok(format!("{signing_input}.{}", b64.encode(out.stdout)))
}
