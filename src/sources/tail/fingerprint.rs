//! A file's fingerprint: a stable hash of its first line (at most `FINGERPRINT_MAX` bytes), which
//! tells a file from another that reuses its inode, or from itself after a copytruncate.
//!
//! Why the first line and not a fixed 1 KiB: a young log file is shorter than 1 KiB, and a
//! fingerprint that changed while the file grew would look like a replacement. The first line
//! (with its `\n`) never changes once written. A file with no newline in its first
//! `FINGERPRINT_MAX` bytes is fingerprinted by those bytes; a shorter file with no newline yet has
//! no fingerprint, which costs nothing: it has no complete line to read or checkpoint either.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// How many leading bytes at most the fingerprint covers.
pub const FINGERPRINT_MAX: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Never 0, so 0 can mean "none" in a stored checkpoint.
    pub hash: u64,
    /// How many bytes it covers.
    pub len: u16,
}

/// The fingerprint of `file`'s first bytes, or `None` while it has neither a newline nor
/// `FINGERPRINT_MAX` bytes. Reads with `pread`, so the file's position is left alone.
pub fn fingerprint_file(file: &File) -> io::Result<Option<Fingerprint>> {
    let mut head = [0u8; FINGERPRINT_MAX];
    let mut got = 0;
    while got < head.len() {
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(fingerprint_bytes(&head[..got]))
}

/// The fingerprint of a file that starts with `head` (at least its first `FINGERPRINT_MAX` bytes,
/// or all of it).
pub fn fingerprint_bytes(head: &[u8]) -> Option<Fingerprint> {
    let len = match memchr::memchr(b'\n', head) {
        Some(pos) if pos < FINGERPRINT_MAX => pos + 1,
        _ if head.len() >= FINGERPRINT_MAX => FINGERPRINT_MAX,
        _ => return None,
    };
    Some(Fingerprint {
        hash: fnv1a(&head[..len]).max(1),
        len: len as u16,
    })
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms (checkpoints outlive the binary),
/// which `std`'s hasher does not promise.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_or_first_kib() {
        assert_eq!(fingerprint_bytes(b""), None);
        assert_eq!(fingerprint_bytes(b"no newline yet"), None);
        let a = fingerprint_bytes(b"first\n").unwrap();
        assert_eq!(a.len, 6);
        assert_eq!(
            fingerprint_bytes(b"first\nsecond\n"),
            Some(a),
            "growing does not change it"
        );
        assert_ne!(fingerprint_bytes(b"other\n"), Some(a));
        let long = vec![b'x'; 3000];
        assert_eq!(fingerprint_bytes(&long).unwrap().len, 1024);
        // Known value, so a change of hash (which would orphan every stored checkpoint) is seen.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
