//! Compressed inputs: what event archives look like (Firehose backups, exports). gzip and
//! zstd are recognised by their magic bytes, so a name says nothing the bytes do not; a
//! name that claims a compression the bytes do not have is an error, not a guess.
//! Decoding streams: memory stays at the decoder's window whatever the input's size.

use std::io::{BufRead, BufReader, Read};

use crate::error::{IngestError, Result};

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const DECODED_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression whose magic bytes `head` starts with (all of them: a shorter head
    /// is plain).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression an input's name claims by its extension, if any.
    pub fn of_name(name: &str) -> Option<Compression> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "gz" | "gzip" => Some(Compression::Gzip),
            "zst" | "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// `reader`'s content, decompressed when its first bytes say gzip (every member of a
/// multi-member file, as `cat a.gz b.gz` makes) or zstd (every frame). `name` is the
/// input's, for errors and for the extension check.
pub fn decoded(mut reader: Box<dyn BufRead + Send>, name: &str) -> Result<Box<dyn BufRead + Send>> {
    let read_error = |error| IngestError::Read {
        source_name: name.to_string(),
        error,
    };
    let head = fill_head(&mut reader, ZSTD_MAGIC.len()).map_err(read_error)?;
    let found = Compression::sniff(&head);
    if let Some(claimed) = Compression::of_name(name)
        && claimed != found
    {
        return Err(read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the name says {} but the content is {} (first bytes {:02x?})",
                claimed.name(),
                found.name(),
                head
            ),
        )));
    }
    Ok(match found {
        Compression::None => reader,
        Compression::Gzip => Box::new(BufReader::with_capacity(
            DECODED_BUFFER,
            flate2::bufread::MultiGzDecoder::new(reader),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            DECODED_BUFFER,
            zstd::stream::read::Decoder::with_buffer(reader).map_err(read_error)?,
        )),
    })
}

/// The first `n` bytes of `reader` (fewer at its end), left unconsumed. A buffered reader
/// may hand out fewer bytes than asked at a time, so this reads until it has them.
fn fill_head(reader: &mut Box<dyn BufRead + Send>, n: usize) -> std::io::Result<Vec<u8>> {
    let buffered = reader.fill_buf()?;
    if buffered.len() >= n || buffered.is_empty() {
        return Ok(buffered[..buffered.len().min(n)].to_vec());
    }
    // Rare (a reader whose buffer holds less than 4 bytes): take what there is and chain
    // it back in front of the rest.
    let mut head = Vec::with_capacity(n);
    while head.len() < n {
        let buffered = reader.fill_buf()?;
        if buffered.is_empty() {
            break;
        }
        let take = buffered.len().min(n - head.len());
        head.extend_from_slice(&buffered[..take]);
        reader.consume(take);
    }
    let rest = std::mem::replace(reader, Box::new(std::io::empty()));
    *reader = Box::new(std::io::Cursor::new(head.clone()).chain(rest));
    Ok(head)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all(bytes: Vec<u8>, name: &str) -> Result<Vec<u8>> {
        let reader: Box<dyn BufRead + Send> = Box::new(std::io::Cursor::new(bytes));
        let mut out = Vec::new();
        decoded(reader, name)?
            .read_to_end(&mut out)
            .map_err(|error| IngestError::Read {
                source_name: name.into(),
                error,
            })?;
        Ok(out)
    }

    #[test]
    fn the_bytes_decide_and_every_member_or_frame_is_read() {
        let text = b"{\"a\":1}\n{\"b\":2}\n".to_vec();
        let mut two_members = gzip(&text[..8]);
        two_members.extend(gzip(&text[8..]));
        assert_eq!(read_all(two_members, "no-extension").unwrap(), text);
        let mut two_frames = zstd::encode_all(&text[..8], 1).unwrap();
        two_frames.extend(zstd::encode_all(&text[8..], 1).unwrap());
        assert_eq!(read_all(two_frames, "x.jsonl.zst").unwrap(), text);
        assert_eq!(read_all(text.clone(), "x.jsonl").unwrap(), text);
        assert_eq!(read_all(Vec::new(), "empty").unwrap(), b"");
    }

    #[test]
    fn a_name_that_lies_and_a_corrupt_stream_are_errors() {
        let error = read_all(b"{}\n".to_vec(), "x.gz").unwrap_err().to_string();
        assert!(
            error.contains("x.gz") && error.contains("says gzip"),
            "{error}"
        );
        let mut broken = gzip(&[b'x'; 10_000]);
        let middle = broken.len() / 2;
        broken.truncate(middle);
        let error = read_all(broken, "cut.gz").unwrap_err().to_string();
        assert!(error.starts_with("reading cut.gz:"), "{error}");
    }

    proptest::proptest! {
        /// Any bytes under any name: decoded whole or an error, never a panic; what is
        /// compressed comes back as it was, through any buffer size.
        #[test]
        fn any_bytes_decode_or_fail_and_compressed_bytes_round_trip(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            name in "[a-z]{1,4}(\\.(gz|zst|jsonl))?",
            capacity in 1usize..64,
        ) {
            let _ = read_all(data.clone(), &name);
            let mut hostile = GZIP_MAGIC.to_vec();
            hostile.extend(&data);
            let _ = read_all(hostile, "x.gz");
            let mut hostile = ZSTD_MAGIC.to_vec();
            hostile.extend(&data);
            let _ = read_all(hostile, "x.zst");
            for compressed in [gzip(&data), zstd::encode_all(&data[..], 1).unwrap()] {
                let reader: Box<dyn BufRead + Send> =
                    Box::new(BufReader::with_capacity(capacity, std::io::Cursor::new(compressed)));
                let mut out = Vec::new();
                decoded(reader, "any").unwrap().read_to_end(&mut out).unwrap();
                proptest::prop_assert_eq!(&out, &data);
            }
        }
    }

    #[test]
    fn a_head_split_across_reads_is_put_back() {
        let text = b"{\"a\":1}\n".to_vec();
        let compressed = zstd::encode_all(&text[..], 1).unwrap();
        // A buffer of one byte hands the magic out a byte at a time.
        let reader: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(
            1,
            std::io::Cursor::new(compressed),
        ));
        let mut out = Vec::new();
        decoded(reader, "tiny")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, text);
    }
}
