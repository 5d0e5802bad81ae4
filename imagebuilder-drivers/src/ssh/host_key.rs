//! The pinned server public key and its OpenSSH-style fingerprint.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Key types the client can pin, each with the host-key algorithms it offers in the handshake
/// (an RSA key is verified with its SHA-2 signatures first, as OpenSSH does).
const ALGORITHMS: &[(&str, &str)] = &[
    ("ssh-ed25519", "ssh-ed25519"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
    ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
    ("ssh-rsa", "rsa-sha2-512,rsa-sha2-256,ssh-rsa"),
];

/// The SSH server's public key, pinned before the first connection.
///
/// The client compares the key the server presents with this one byte for byte and refuses
/// anything else: there is no trust-on-first-use and no "accept any key".
///
/// ```
/// use imagebuilder_drivers::ssh::HostKey;
///
/// let key: HostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBdBsVP9iUo0vR5K9uhZz0ZCK4Fhg0xuIq7N4QU3xwC build-42"
///     .parse()
///     .unwrap();
/// assert_eq!(key.algorithm(), "ssh-ed25519");
/// assert!(key.fingerprint().starts_with("SHA256:"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostKey {
    algorithm: String,
    blob: Vec<u8>,
}

/// A host key line could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostKeyParseError {
    /// The line has no key.
    #[error("the host key line is empty")]
    Empty,
    /// The key type is not one the client can pin.
    #[error("unsupported host key type {0:?} (expected one of ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa)")]
    UnsupportedAlgorithm(String),
    /// The key is not valid base64.
    #[error("the host key is not valid base64")]
    Base64(#[source] base64::DecodeError),
    /// The decoded key is not a well-formed SSH public key of the stated type.
    #[error("the host key is malformed: {0}")]
    Malformed(&'static str),
    /// The key file could not be read.
    #[error("failed to read the host key file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl HostKey {
    /// Parses an OpenSSH public key line: `ssh-ed25519 AAAA... comment` (the comment is
    /// optional and ignored), as in a `.pub` file or `ssh-keyscan` output without the host.
    ///
    /// # Errors
    /// [`HostKeyParseError`] when the line is not a public key of a supported type.
    pub fn parse(line: &str) -> Result<Self, HostKeyParseError> {
        let mut fields = line.split_whitespace();
        let algorithm = fields.next().ok_or(HostKeyParseError::Empty)?;
        if !ALGORITHMS.iter().any(|(name, _)| *name == algorithm) {
            return Err(HostKeyParseError::UnsupportedAlgorithm(
                algorithm.to_owned(),
            ));
        }
        let encoded = fields
            .next()
            .ok_or(HostKeyParseError::Malformed("the base64 key is missing"))?;
        let blob = STANDARD
            .decode(encoded)
            .map_err(HostKeyParseError::Base64)?;
        let key = Self::from_blob(&blob)?;
        if key.algorithm != algorithm {
            return Err(HostKeyParseError::Malformed(
                "the key type inside the key differs from the one before it",
            ));
        }
        Ok(key)
    }

    /// Reads the first key line of an OpenSSH public key file (e.g. `ssh_host_ed25519_key.pub`).
    ///
    /// # Errors
    /// [`HostKeyParseError::Read`] when the file cannot be read, else as [`HostKey::parse`].
    pub fn read_file(path: impl AsRef<Path>) -> Result<Self, HostKeyParseError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| HostKeyParseError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .ok_or(HostKeyParseError::Empty)?;
        Self::parse(line)
    }

    /// A key from its SSH wire encoding (what the server sends in the handshake).
    ///
    /// # Errors
    /// [`HostKeyParseError`] when the blob is not a public key of a supported type.
    pub fn from_blob(blob: &[u8]) -> Result<Self, HostKeyParseError> {
        let mut rest = blob;
        let name = take_string(&mut rest)
            .ok_or(HostKeyParseError::Malformed("the key type is truncated"))?;
        let algorithm = std::str::from_utf8(name)
            .map_err(|_| HostKeyParseError::Malformed("the key type is not text"))?;
        if !ALGORITHMS.iter().any(|(known, _)| *known == algorithm) {
            return Err(HostKeyParseError::UnsupportedAlgorithm(
                algorithm.to_owned(),
            ));
        }
        if algorithm == "ssh-ed25519" {
            let point =
                take_string(&mut rest).ok_or(HostKeyParseError::Malformed("truncated key"))?;
            if point.len() != 32 || !rest.is_empty() {
                return Err(HostKeyParseError::Malformed(
                    "an ed25519 key is exactly 32 bytes",
                ));
            }
        } else if rest.is_empty() {
            return Err(HostKeyParseError::Malformed("truncated key"));
        }
        Ok(Self {
            algorithm: algorithm.to_owned(),
            blob: blob.to_vec(),
        })
    }

    /// The key type, e.g. `ssh-ed25519`.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The key in SSH wire encoding, as the server presents it.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The fingerprint as OpenSSH prints it: `SHA256:` and the unpadded base64 of the SHA-256
    /// of the key blob.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob)
    }

    /// The host-key algorithms to offer in the handshake so that the server presents this key
    /// and not another of its keys.
    pub(crate) fn handshake_algorithms(&self) -> &'static str {
        ALGORITHMS
            .iter()
            .find(|(name, _)| *name == self.algorithm)
            .map_or("ssh-ed25519", |(_, prefs)| prefs)
    }
}

/// OpenSSH's SHA256 fingerprint of a key blob.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// Takes one SSH `string` (u32 big-endian length, then the bytes) off the front of `rest`.
fn take_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    if tail.len() < len {
        return None;
    }
    let (value, tail) = tail.split_at(len);
    *rest = tail;
    Some(value)
}

impl FromStr for HostKey {
    type Err = HostKeyParseError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        Self::parse(line)
    }
}

/// The OpenSSH public key line without a comment.
impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm, STANDARD.encode(&self.blob))
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKey")
            .field("algorithm", &self.algorithm)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ssh-keygen -l` prints SHA256:uXr21BfxyLVFLcA4E0BkD76TVYf4s7gi6dBB0BcuW8o for this key.
    const LINE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBdBsVP9iUo0vR5K9uhZz0ZCK4Fhg0xuIq7N4QU3xwC build-42";

    #[test]
    fn parses_a_public_key_line_and_round_trips() {
        let key = HostKey::parse(LINE).unwrap();
        assert_eq!(key.algorithm(), "ssh-ed25519");
        assert_eq!(
            key.fingerprint(),
            "SHA256:uXr21BfxyLVFLcA4E0BkD76TVYf4s7gi6dBB0BcuW8o"
        );
        assert_eq!(key.blob().len(), 4 + 11 + 4 + 32);
        assert_eq!(format!("{key} build-42"), LINE);
        assert_eq!(HostKey::from_blob(key.blob()).unwrap(), key);
        assert!(format!("{key:?}").contains(&key.fingerprint()));
    }

    #[test]
    fn rejects_what_is_not_a_supported_key() {
        assert!(matches!(
            HostKey::parse("  "),
            Err(HostKeyParseError::Empty)
        ));
        assert!(matches!(
            HostKey::parse("ssh-dss AAAA"),
            Err(HostKeyParseError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            HostKey::parse("ssh-ed25519 !!!"),
            Err(HostKeyParseError::Base64(_))
        ));
        // An ed25519 blob declared as ecdsa.
        let blob = LINE.split_whitespace().nth(1).unwrap();
        assert!(matches!(
            HostKey::parse(&format!("ecdsa-sha2-nistp256 {blob}")),
            Err(HostKeyParseError::Malformed(_))
        ));
        // Truncated key material.
        let short = STANDARD.encode(&HostKey::parse(LINE).unwrap().blob()[..30]);
        assert!(matches!(
            HostKey::parse(&format!("ssh-ed25519 {short}")),
            Err(HostKeyParseError::Malformed(_))
        ));
    }
}
