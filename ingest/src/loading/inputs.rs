//! What an ingest reads: standard input, local files, and objects in S3 named by a glob
//! (`s3://bucket/firehose/2025/*/*/*/*.gz`: the Firehose backup layout). Each input has an
//! identity for idempotent loads (see [`crate::loading::load`]) and opens as a byte stream;
//! [`crate::decode::archive`] decompresses it.
//!
//! A file's identity is the SHA-256 of its bytes as stored, checked again in the pass that
//! loads it. A path that is not a regular file (a pipe: `<(zcat a.gz)`, `/dev/stdin` fed by
//! `cat`) can be read only once, so like standard input it has no identity and always
//! appends: hashing it first would consume the very bytes to load. An object's is its ETag and
//! size (S3's own digest of the bytes: an MD5, or one per part of a multipart upload), so a
//! backfill does not read every object twice; it is read with `If-Match` on that ETag, so
//! an object replaced after listing fails the run instead of loading under the old name.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use deltalake::logstore::object_store::{GetOptions, ObjectMeta, ObjectStoreExt};
use deltalake::{ObjectStore, Path};
use futures::{Stream, StreamExt, TryStreamExt};
use lakehouse_lake::Lake;
use tokio::runtime::Handle;
use url::Url;

use crate::error::{IngestError, Result};
use crate::loading::load::{ContentCheck, content_digest};

/// Input bytes (as stored) after which an ingest of many inputs commits, so that an
/// interrupted backfill loses at most this much work: 1 GiB.
pub const DEFAULT_COMMIT_EVERY_BYTES: u64 = 1 << 30;

const READ_BUFFER: usize = 1 << 20;
const GLOB_CHARS: &[char] = &['*', '?', '['];

/// One input of an ingest.
pub enum Input {
    Stdin,
    /// A regular file.
    File(PathBuf),
    /// A path that can be read only once: a named pipe, `/dev/stdin`, `/dev/fd/N`.
    Stream(PathBuf),
    Object {
        store: Arc<dyn ObjectStore>,
        /// `s3://bucket/key`, as errors and lineage name it.
        uri: String,
        meta: ObjectMeta,
    },
}

impl Input {
    /// The name rows record as their `source`.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "stdin".to_string(),
            Input::File(path) | Input::Stream(path) => path.display().to_string(),
            Input::Object { uri, .. } => uri.clone(),
        }
    }

    /// Bytes as stored, where known before reading.
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin | Input::Stream(_) => None,
            Input::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
            Input::Object { meta, .. } => Some(meta.size),
        }
    }

    /// What identifies the input's content for idempotent loads; `None` for standard
    /// input and other streams, which have no identity and always append.
    pub async fn digest(&self) -> Result<Option<String>> {
        match self {
            Input::Stdin | Input::Stream(_) => Ok(None),
            Input::Object {
                meta:
                    ObjectMeta {
                        e_tag: Some(e_tag),
                        size,
                        ..
                    },
                ..
            } => Ok(Some(format!("etag-{}-{size}", e_tag.trim_matches('"')))),
            // A store without ETags: the bytes themselves, read once more.
            Input::File(_) | Input::Object { .. } => {
                let reader = self.open().await?;
                let name = self.name();
                let digest = tokio::task::spawn_blocking(move || content_digest(reader))
                    .await
                    .map_err(|e| IngestError::Internal(format!("digest of {name}: {e}")))?
                    .map_err(|error| IngestError::Read {
                        source_name: self.name(),
                        error,
                    })?;
                Ok(Some(digest))
            }
        }
    }

    /// The input's bytes as stored. An object's are fetched as the caller reads them, so
    /// read them off the async runtime's threads (the JSON Lines parse thread does).
    pub async fn open(&self) -> Result<Box<dyn BufRead + Send>> {
        let read_error = |error| IngestError::Read {
            source_name: self.name(),
            error,
        };
        Ok(match self {
            Input::Stdin => Box::new(BufReader::with_capacity(READ_BUFFER, std::io::stdin())),
            Input::File(path) | Input::Stream(path) => {
                let file = std::fs::File::open(path).map_err(read_error)?;
                Box::new(BufReader::with_capacity(READ_BUFFER, file))
            }
            Input::Object { store, meta, .. } => {
                let options = GetOptions {
                    if_match: meta.e_tag.clone(),
                    ..GetOptions::default()
                };
                let object = store
                    .get_opts(&meta.location, options)
                    .await
                    .map_err(|e| read_error(std::io::Error::other(e)))?;
                let stream = object.into_stream().map_err(std::io::Error::other);
                Box::new(BufReader::with_capacity(
                    READ_BUFFER,
                    BlockingStream::new(Handle::current(), stream),
                ))
            }
        })
    }

    /// The input's bytes to load under `digest` (what [`Input::digest`] gave). Where that is
    /// a digest of the bytes themselves, they are hashed again as the load reads them: the
    /// check's [`ContentCheck::finish`] then tells whether the load read the bytes its
    /// identity names (a file rewritten between the two reads did not). An ETag needs no
    /// check: the object is read with `If-Match` on it.
    pub async fn open_checked(
        &self,
        digest: Option<&str>,
    ) -> Result<(Box<dyn BufRead + Send>, Option<ContentCheck>)> {
        let stored = self.open().await?;
        let by_content = match self {
            Input::File(_) => true,
            Input::Object { meta, .. } => meta.e_tag.is_none(),
            Input::Stdin | Input::Stream(_) => false,
        };
        Ok(match digest {
            Some(digest) if by_content => {
                let (check, reader) = ContentCheck::new(digest, stored);
                (reader, Some(check))
            }
            _ => (stored, None),
        })
    }
}

/// The inputs `specs` name, in order: `-` for standard input, local paths (a path with
/// glob characters that is not itself a file is expanded, sorted), and `s3://bucket/key`
/// where the key may hold a glob (`*` and `?` stay within a `/` segment, `**` crosses
/// them) or end with `/` for every object under it. Objects of one spec come sorted by
/// key, which is time order in the Firehose layout. A spec that matches nothing is an
/// error: a backfill of nothing is more likely a typo than a wish.
pub async fn resolve(specs: &[PathBuf], lake: &Lake) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for spec in specs {
        let text = spec.to_string_lossy();
        if spec.as_os_str() == "-" {
            inputs.push(Input::Stdin);
        } else if text.starts_with("s3://") {
            inputs.extend(objects(&text, lake).await?);
        } else if text.contains(GLOB_CHARS) && !spec.exists() {
            inputs.extend(local_glob(&text)?);
        } else {
            inputs.push(local(spec)?);
        }
    }
    Ok(inputs)
}

/// A local path as an input: a regular file, or a stream (a pipe, a device) read once. A
/// path that does not exist is left for opening to report.
fn local(path: &std::path::Path) -> Result<Input> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(IngestError::Input(format!(
            "{}: a directory, not a file; name its files, or a quoted glob ('dir/*.jsonl')",
            path.display()
        ))),
        Ok(meta) if !meta.is_file() => Ok(Input::Stream(path.to_path_buf())),
        _ => Ok(Input::File(path.to_path_buf())),
    }
}

fn local_glob(pattern: &str) -> Result<Vec<Input>> {
    let invalid = |reason: String| IngestError::Input(format!("{pattern}: {reason}"));
    let mut paths = glob::glob(pattern)
        .map_err(|e| invalid(e.to_string()))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    paths.retain(|p| p.is_file());
    paths.sort();
    if paths.is_empty() {
        return Err(invalid("no file matches".into()));
    }
    Ok(paths.into_iter().map(Input::File).collect())
}

async fn objects(spec: &str, lake: &Lake) -> Result<Vec<Input>> {
    let invalid = |reason: String| IngestError::Input(format!("{spec}: {reason}"));
    let url = Url::parse(spec).map_err(|e| invalid(e.to_string()))?;
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| invalid("no bucket".into()))?;
    // The key as written: the URL parser would percent-encode glob characters.
    let key = spec
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .map_or("", |(_, key)| key);
    let root = Url::parse(&format!("s3://{bucket}/")).map_err(|e| invalid(e.to_string()))?;
    let store = lake.store_for(&root)?;
    let uri = |location: &Path| format!("s3://{bucket}/{location}");
    let listing_error = |e: deltalake::ObjectStoreError| invalid(e.to_string());

    let matched: Vec<ObjectMeta> = if !key.contains(GLOB_CHARS) && !key.ends_with('/') {
        if key.is_empty() {
            return Err(invalid(
                "name objects: a key, a prefix ending in /, or a glob".into(),
            ));
        }
        vec![store.head(&Path::from(key)).await.map_err(listing_error)?]
    } else {
        let literal = &key[..key.find(GLOB_CHARS).unwrap_or(key.len())];
        let prefix = &literal[..literal.rfind('/').map_or(0, |i| i + 1)];
        let pattern = if key.ends_with('/') {
            glob::Pattern::new(&format!("{}**", glob::Pattern::escape(key)))
        } else {
            glob::Pattern::new(key)
        }
        .map_err(|e| invalid(e.to_string()))?;
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let listed: Vec<ObjectMeta> = store
            .list((!prefix.is_empty()).then(|| Path::from(prefix)).as_ref())
            .try_collect()
            .await
            .map_err(listing_error)?;
        let mut matched: Vec<ObjectMeta> = listed
            .into_iter()
            .filter(|meta| pattern.matches_with(meta.location.as_ref(), options))
            .collect();
        matched.sort_by(|a, b| a.location.cmp(&b.location));
        matched
    };
    if matched.is_empty() {
        return Err(invalid("no object matches".into()));
    }
    Ok(matched
        .into_iter()
        .map(|meta| Input::Object {
            store: store.clone(),
            uri: uri(&meta.location),
            meta,
        })
        .collect())
}

/// A byte stream of the async runtime read as a blocking `Read`, from a thread that is not
/// one of the runtime's workers (it blocks on the runtime for every piece): a plain thread
/// or `spawn_blocking`'s, as `tokio_util::io::SyncIoBridge` is used (that crate's feature
/// is not in this build, and enabling it would rebuild most of the tree).
struct BlockingStream<S, B> {
    handle: Handle,
    stream: S,
    piece: Option<B>,
    offset: usize,
}

impl<S, B> BlockingStream<S, B> {
    fn new(handle: Handle, stream: S) -> Self {
        BlockingStream {
            handle,
            stream,
            piece: None,
            offset: 0,
        }
    }
}

impl<S, B> Read for BlockingStream<S, B>
where
    S: Stream<Item = std::io::Result<B>> + Unpin,
    B: AsRef<[u8]>,
{
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(piece) = &self.piece {
                let rest = &piece.as_ref()[self.offset..];
                if !rest.is_empty() {
                    let n = rest.len().min(buf.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.offset += n;
                    return Ok(n);
                }
            }
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(piece) => {
                    self.piece = Some(piece?);
                    self.offset = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_stream_reads_whole_across_pieces_and_passes_errors_on() {
        let pieces: Vec<std::io::Result<Vec<u8>>> =
            vec![Ok(b"ab".to_vec()), Ok(Vec::new()), Ok(b"cde".to_vec())];
        let mut reader = BlockingStream::new(Handle::current(), futures::stream::iter(pieces));
        let read = std::thread::spawn(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).map(|_| out)
        });
        assert_eq!(read.join().unwrap().unwrap(), b"abcde");

        let failing: Vec<std::io::Result<Vec<u8>>> = vec![
            Ok(b"ab".to_vec()),
            Err(std::io::Error::other("connection reset")),
        ];
        let mut reader = BlockingStream::new(Handle::current(), futures::stream::iter(failing));
        let read = std::thread::spawn(move || reader.read_to_end(&mut Vec::new()));
        assert!(read.join().unwrap().is_err());
    }

    #[tokio::test]
    async fn local_globs_expand_sorted_and_an_empty_match_is_an_error() {
        let dir = std::env::temp_dir().join(format!("lakehouse-glob-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for name in ["b.gz", "a.gz", "c.txt", "sub/d.gz"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let lake = Lake::parse(dir.join("lake").to_str().unwrap()).unwrap();
        let pattern = PathBuf::from(format!("{}/*.gz", dir.display()));
        let names: Vec<String> = resolve(&[pattern], &lake)
            .await
            .unwrap()
            .iter()
            .map(|i| i.name().rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(names, ["a.gz", "b.gz"]);
        let none = PathBuf::from(format!("{}/*.zst", dir.display()));
        let error = resolve(&[none], &lake).await.err().unwrap().to_string();
        assert!(error.contains("no file matches"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
