//! Idempotent loads of inputs that have an identity (files): the identity of an input is
//! its format and the SHA-256 of its bytes, and each table records in the same commit as
//! its rows that it holds that input, as a Delta `txn` under the app id
//! `lakehouse-load:<format>:<sha256>`. A rerun finds the record and adds nothing; a run
//! killed between the two tables' commits finds it in one table and loads only the other.
//! Two runs loading one input at once cannot both commit it: the lake's commit path fails
//! the second (a `txn` app id advances once). Standard input, pipes and other inputs that
//! can be read only once have no identity and always append.
//!
//! A file is hashed before it is loaded (so a rerun skips it unread) and again, by
//! [`ContentCheck`], in the pass that loads it: an identity is recorded only for the bytes
//! that were loaded, and a file that changed between the two passes fails the run.

use std::io::{BufRead, Read};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

/// The SHA-256 of everything `reader` yields, in hex.
pub fn content_digest(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(hasher))
}

fn hex(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The digest of the bytes a load actually read, checked against the identity the load
/// was begun under: [`ContentCheck::reader`] hashes what passes through it.
pub struct ContentCheck {
    expected: String,
    seen: Arc<Mutex<Sha256>>,
}

impl ContentCheck {
    /// Checks that what `reader` yields hashes to `expected`; the reader to load from.
    pub fn new(
        expected: &str,
        reader: Box<dyn BufRead + Send>,
    ) -> (ContentCheck, Box<dyn BufRead + Send>) {
        let seen = Arc::new(Mutex::new(Sha256::new()));
        let check = ContentCheck {
            expected: expected.to_string(),
            seen: seen.clone(),
        };
        (
            check,
            Box::new(Hashing {
                inner: reader,
                seen,
            }),
        )
    }

    /// `Ok` when the bytes read hash to the identity expected; else what was read instead.
    pub fn finish(self) -> Result<(), String> {
        let hasher = std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner));
        let read = hex(hasher);
        if read == self.expected {
            Ok(())
        } else {
            Err(read)
        }
    }
}

/// A reader that hashes every byte it hands out, by either `Read` or `BufRead`.
struct Hashing {
    inner: Box<dyn BufRead + Send>,
    seen: Arc<Mutex<Sha256>>,
}

impl Hashing {
    fn update(&self, bytes: &[u8]) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(bytes);
    }
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.update(&buf[..n]);
        Ok(n)
    }
}

impl BufRead for Hashing {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // What was handed out is still the buffer's start: consume has not been told yet,
        // so this returns the same bytes without reading.
        if amt > 0
            && let Ok(buffer) = self.inner.fill_buf()
        {
            let bytes = &buffer[..amt.min(buffer.len())];
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .update(bytes);
        }
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha256_of_the_bytes() {
        assert_eq!(
            content_digest(&b"abc"[..]).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_check_hashes_what_was_read_by_either_interface() {
        let text = b"line one\nline two\n".repeat(1000);
        let digest = content_digest(&text[..]).unwrap();
        // Read through BufRead (fill_buf/consume) in small steps, and through Read.
        let reader = Box::new(std::io::BufReader::with_capacity(
            7,
            std::io::Cursor::new(text.clone()),
        ));
        let (check, mut reader) = ContentCheck::new(&digest, reader);
        let mut lines = 0;
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 {
            lines += 1;
            line.clear();
        }
        assert_eq!(lines, 2000);
        assert_eq!(check.finish(), Ok(()));

        let reader = Box::new(std::io::Cursor::new(text.clone()));
        let (check, mut reader) = ContentCheck::new(&digest, reader);
        reader.read_to_end(&mut Vec::new()).unwrap();
        assert_eq!(check.finish(), Ok(()));

        // Bytes other than those hashed before: the load does not stand for the identity.
        let changed = [&text[..], b"one more\n"].concat();
        let (check, mut reader) =
            ContentCheck::new(&digest, Box::new(std::io::Cursor::new(changed)));
        reader.read_to_end(&mut Vec::new()).unwrap();
        assert!(check.finish().is_err());
    }
}
