//! The Parquet reader for files in the lake's object store.
//!
//! delta-rs's `ParquetObjectReader` leaves `get_byte_ranges` to Parquet's default, which
//! fetches the ranges one after another: a row group's column chunks, or the pages a point
//! read selects, cost one sequential GET each. On S3 that is a request round trip per page.
//! This reader hands the ranges to `ObjectStore::get_ranges` at once, which coalesces nearby
//! ranges and fetches the rest concurrently.

use std::ops::Range;
use std::sync::Arc;

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
}

impl ObjectReader {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64) -> Self {
        ObjectReader {
            inner: ParquetObjectReader::new(store.clone(), path.clone()).with_file_size(size),
            store,
            path,
        }
    }
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
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
