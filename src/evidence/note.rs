//! Checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint, c2sp.org/signed-note): the text
//! `<origin>\n<size>\n<base64 root>\n<extension lines>`, a blank line, and `— <key name>
//! <base64(key id || Ed25519 signature)>`. Pure: the key is passed in.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The signed-note signature type of plain Ed25519.
const ED25519: u8 = 0x01;

/// What a checkpoint says: the log's name, how many leaves, the head of their tree, and when it was
/// signed (an extension line `time <RFC 3339>`, which verifiers of other logs ignore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub time: Option<jiff::Timestamp>,
}

impl Checkpoint {
    /// The note text that is signed (ends with a newline).
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        if let Some(time) = self.time {
            text.push_str(&format!("time {}\n", time.strftime("%Y-%m-%dT%H:%M:%SZ")));
        }
        text
    }

    fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.lines();
        let bad = |what: &str| NoteError::Malformed(what.to_string());
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or_else(|| bad("no tree size line"))?;
        let root = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|b| Hash::try_from(b).ok())
            .ok_or_else(|| bad("no root hash line"))?;
        let time = lines
            .filter_map(|l| l.strip_prefix("time "))
            .find_map(|t| t.parse().ok());
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            time,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("no signature by {0} on the checkpoint")]
    Unsigned(String),
    #[error("the signature by {0} on the checkpoint does not verify")]
    BadSignature(String),
    #[error("malformed verifier key: {0}")]
    BadKey(String),
}

/// A key name may hold no space and no `+` (signed-note); host names rarely do, but a config may.
pub fn key_name(host: &str) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '+' || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .collect();
    format!("socwatch/{}", if host.is_empty() { "node" } else { &host })
}

/// `SHA-256(key name || 0x0A || 0x01 || public key)[:4]`.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// The node's signing identity: key name (also the checkpoint origin) and Ed25519 key.
pub struct Signer {
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(name: String, seed: [u8; 32]) -> Signer {
        Signer {
            name,
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The checkpoint as a signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let text = checkpoint.text();
        let signature = self.key.sign(text.as_bytes());
        let mut blob = key_id(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

/// A public key as witnesses hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub key: VerifyingKey,
}

impl NoteVerifier {
    /// The verifier key in the signed-note text form: `<name>+<hex key id>+<base64(0x01 || key)>`.
    pub fn encode(&self) -> String {
        let id: String = key_id(&self.name, &self.key)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{id}+{}", self.name, B64.encode(raw))
    }

    pub fn parse(text: &str) -> Result<NoteVerifier, NoteError> {
        let bad = |what: &str| NoteError::BadKey(what.to_string());
        let mut parts = text.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+id+key"));
        };
        let raw = B64.decode(key).map_err(|_| bad("key is not base64"))?;
        let [ED25519, bytes @ ..] = raw.as_slice() else {
            return Err(bad("not an Ed25519 key"));
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad("key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| bad("not a valid Ed25519 key"))?;
        let verifier = NoteVerifier {
            name: name.to_string(),
            key,
        };
        if !verifier.encode().starts_with(&format!("{name}+{id}+")) {
            return Err(bad("key id does not match the key"));
        }
        Ok(verifier)
    }

    /// The checkpoint in `note` once this key's signature on it verifies. Signatures by other keys
    /// are ignored, as the spec asks.
    pub fn open(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let (text, signatures) = note
            .rsplit_once("\n\n")
            .ok_or_else(|| NoteError::Malformed("no signature block".into()))?;
        let text = format!("{text}\n");
        let id = key_id(&self.name, &self.key);
        let prefix = format!("\u{2014} {} ", self.name);
        let mut found = false;
        for line in signatures.lines() {
            let Some(blob) = line.strip_prefix(&prefix).and_then(|b| B64.decode(b).ok()) else {
                continue;
            };
            if blob.len() != 4 + 64 || blob[..4] != id {
                continue;
            }
            found = true;
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            if self.key.verify(text.as_bytes(), &signature).is_err() {
                return Err(NoteError::BadSignature(self.name.clone()));
            }
        }
        if !found {
            return Err(NoteError::Unsigned(self.name.clone()));
        }
        Checkpoint::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(key_name("portal-01"), [7; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: key_name("portal-01"),
            size: 42,
            root: [9; 32],
            time: Some("2026-12-03T10:00:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn a_note_has_the_c2sp_shape_and_opens_with_its_key() {
        let note = signer().sign(&checkpoint());
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], "socwatch/portal-01");
        assert_eq!(lines[1], "42");
        assert_eq!(lines[2], B64.encode([9u8; 32]));
        assert_eq!(lines[3], "time 2026-12-03T10:00:00Z");
        assert_eq!(lines[4], "");
        assert!(
            lines[5].starts_with("\u{2014} socwatch/portal-01 "),
            "{note}"
        );
        assert_eq!(lines[6], "");
        // 4 bytes of key id and 64 of signature.
        let blob = B64.decode(lines[5].rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(blob.len(), 68);
        assert_eq!(signer().verifier().open(&note).unwrap(), checkpoint());
    }

    #[test]
    fn a_changed_note_or_another_key_is_refused() {
        let note = signer().sign(&checkpoint());
        let verifier = signer().verifier();
        let forged = note.replacen("\n42\n", "\n41\n", 1);
        assert_eq!(
            verifier.open(&forged),
            Err(NoteError::BadSignature("socwatch/portal-01".into()))
        );
        let other = Signer::new(key_name("portal-01"), [8; 32]).verifier();
        assert_eq!(
            other.open(&note),
            Err(NoteError::Unsigned("socwatch/portal-01".into()))
        );
    }

    #[test]
    fn the_verifier_key_round_trips_and_checks_its_id() {
        let verifier = signer().verifier();
        let text = verifier.encode();
        assert!(text.starts_with("socwatch/portal-01+"), "{text}");
        assert_eq!(NoteVerifier::parse(&text).unwrap(), verifier);
        let mut parts: Vec<&str> = text.split('+').collect();
        parts[1] = "00000000";
        assert!(NoteVerifier::parse(&parts.join("+")).is_err());
        assert_eq!(key_name("a b+c"), "socwatch/a-b-c");
    }
}
