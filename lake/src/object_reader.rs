//! The Parquet reader for files in the lake's object store.
//!
//! delta-rs's `ParquetObjectReader` leaves `get_byte_ranges` to Parquet's default, which
//! fetches the ranges one after another: a row group's column chunks, or the pages a point
//! read selects, cost one sequential GET each. On S3 that is a request round trip per page.
//! This reader hands the ranges to `ObjectStore::get_ranges` at once, which coalesces nearby
//! ranges and fetches the rest concurrently.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use deltalake::logstore::parquet_reader::ParquetObjectReader;
use deltalake::parquet::arrow::arrow_reader::ArrowReaderOptions;
use deltalake::parquet::arrow::async_reader::AsyncFileReader;
use deltalake::parquet::errors::{ParquetError, Result};
use deltalake::parquet::file::metadata::ParquetMetaData;
use deltalake::{ObjectStore, Path};
use futures::FutureExt;
use futures::future::BoxFuture;

/// Reads one Parquet file of `size` bytes at `path`, many ranges per request.
pub struct ObjectReader {
    inner: ParquetObjectReader,
    store: Arc<dyn ObjectStore>,
    path: Path,
    prefetched: Prefetched,
}

/// One span of a file's bytes fetched ahead, from which the reader serves the ranges it
/// holds: Parquet's reader fetches a row group at a time, a GET each, where the caller
/// knows every row group it will read.
#[derive(Clone, Default)]
pub struct Prefetched(Arc<Mutex<Option<Span>>>);

/// Bytes of a file and where in it they lie.
type Span = (Range<u64>, Bytes);

impl Prefetched {
    /// Serves `span` from `bytes` from now on.
    pub fn hold(&self, span: Range<u64>, bytes: Bytes) {
        if let Ok(mut held) = self.0.lock() {
            *held = Some((span, bytes));
        }
    }

    fn slice(&self, range: &Range<u64>) -> Option<Bytes> {
        let held = self.0.lock().ok()?;
        let (span, bytes) = held.as_ref()?;
        let whole = span.end - span.start == bytes.len() as u64;
        (whole && span.start <= range.start && range.end <= span.end).then(|| {
            bytes.slice((range.start - span.start) as usize..(range.end - span.start) as usize)
        })
    }
}

impl ObjectReader {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64) -> Self {
        ObjectReader {
            inner: ParquetObjectReader::new(store.clone(), path.clone()).with_file_size(size),
            store,
            path,
            prefetched: Prefetched::default(),
        }
    }

    /// A handle by which bytes fetched later are served to this reader.
    pub fn prefetched(&self) -> Prefetched {
        self.prefetched.clone()
    }

    /// Fetches the last `bytes` of the file first: a footer within them comes in one GET
    /// instead of two (its length, then itself).
    pub fn with_footer_size_hint(mut self, bytes: usize) -> Self {
        self.inner = self.inner.with_footer_size_hint(bytes);
        self
    }
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        match self.prefetched.slice(&range) {
            Some(bytes) => futures::future::ready(Ok(bytes)).boxed(),
            None => self.inner.get_bytes(range),
        }
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        let held: Option<Vec<Bytes>> = ranges.iter().map(|r| self.prefetched.slice(r)).collect();
        if let Some(bytes) = held {
            return futures::future::ready(Ok(bytes)).boxed();
        }
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        self.inner.get_metadata(options)
    }
}
