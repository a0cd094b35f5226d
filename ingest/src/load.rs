//! Idempotent loads of inputs that have an identity (files): the identity of an input is
//! its format and the SHA-256 of its bytes, and each table records in the same commit as
//! its rows that it holds that input, as a Delta `txn` under the app id
//! `lakehouse-load:<format>:<sha256>`. A rerun finds the record and adds nothing; a run
//! killed between the two tables' commits finds it in one table and loads only the other.
//! Two runs loading one input at once cannot both commit it: the lake's commit path fails
//! the second (a `txn` app id advances once). Standard input has no identity and always
//! appends.

use std::io::Read;

use sha2::{Digest, Sha256};

/// The app id under which a table records that it holds an input of `format` whose bytes
/// hash to `digest`.
pub fn load_app_id(format: &str, digest: &str) -> String {
    format!("lakehouse-load:{format}:{digest}")
}

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
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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
        assert_eq!(load_app_id("jsonl", "ab"), "lakehouse-load:jsonl:ab");
    }
}
