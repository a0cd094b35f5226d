//! An object store with S3-like request latency: each request waits its kind's base latency
//! times a uniform factor in [1 - j/2, 1 + j/2], and one request in 100 four times that (S3's
//! tail), before the inner store serves it. Waits overlap: concurrent requests are not
//! queued, as on S3.

use std::fmt;
use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use deltalake::logstore::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result, path::Path,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, Default)]
pub struct LatencyModel {
    pub put: Duration,
    pub get: Duration,
    pub list: Duration,
    pub delete: Duration,
    /// Width of the uniform factor around 1 (0.5: from 0.75 to 1.25).
    pub jitter: f64,
}

impl fmt::Display for LatencyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PUT {} ms, GET {} ms, LIST {} ms, DELETE {} ms per request, each x U({:.2},{:.2}); \
             1% of requests x4; concurrent requests overlap",
            self.put.as_millis(),
            self.get.as_millis(),
            self.list.as_millis(),
            self.delete.as_millis(),
            1.0 - self.jitter / 2.0,
            1.0 + self.jitter / 2.0,
        )
    }
}

pub struct LatencyStore<T> {
    inner: T,
    model: LatencyModel,
    rng: Mutex<ChaCha8Rng>,
    /// GET requests (as S3 would count them) and the bytes they returned.
    gets: AtomicU64,
    get_bytes: AtomicU64,
}

/// Ranges of one `get_ranges` within this gap are one GET, as object_store coalesces them
/// for S3.
const COALESCE_GAP: u64 = 1024 * 1024;

impl<T> LatencyStore<T> {
    pub fn new(inner: T, model: LatencyModel, seed: u64) -> Self {
        LatencyStore {
            inner,
            model,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            gets: AtomicU64::new(0),
            get_bytes: AtomicU64::new(0),
        }
    }

    /// GET requests served so far, and their bytes.
    #[allow(dead_code)] // read by bench_dedup_scale, not by bench_scale
    pub fn gets(&self) -> (u64, u64) {
        (
            self.gets.load(Ordering::Relaxed),
            self.get_bytes.load(Ordering::Relaxed),
        )
    }

    fn count_get(&self, requests: u64, bytes: u64) {
        self.gets.fetch_add(requests, Ordering::Relaxed);
        self.get_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn delay(&self, base: Duration) -> Duration {
        let (factor, tail) = match self.rng.lock() {
            Ok(mut rng) => (rng.random::<f64>(), rng.random_bool(0.01)),
            Err(_) => (0.5, false),
        };
        let factor = 1.0 - self.model.jitter / 2.0 + self.model.jitter * factor;
        base.mul_f64(if tail { factor * 4.0 } else { factor })
    }

    async fn wait(&self, base: Duration) {
        tokio::time::sleep(self.delay(base)).await;
    }
}

impl<T: fmt::Display> fmt::Display for LatencyStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LatencyStore({})", self.inner)
    }
}

impl<T: fmt::Debug> fmt::Debug for LatencyStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LatencyStore({:?})", self.inner)
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for LatencyStore<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.wait(self.model.put).await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.wait(self.model.put).await;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.wait(self.model.get).await;
        let got = self.inner.get_opts(location, options).await?;
        self.count_get(1, got.range.end - got.range.start);
        Ok(got)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.wait(self.model.get).await;
        let mut sorted: Vec<&Range<u64>> = ranges.iter().collect();
        sorted.sort_by_key(|r| r.start);
        let (mut requests, mut bytes) = (0, 0);
        let mut open: Option<Range<u64>> = None;
        for r in sorted {
            open = match open {
                Some(o) if r.start <= o.end + COALESCE_GAP => Some(o.start..o.end.max(r.end)),
                Some(o) => {
                    requests += 1;
                    bytes += o.end - o.start;
                    Some(r.clone())
                }
                None => Some(r.clone()),
            };
        }
        if let Some(o) = open {
            requests += 1;
            bytes += o.end - o.start;
        }
        self.count_get(requests, bytes);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // One batched DELETE request per call, as S3's DeleteObjects.
        let wait = self.delay(self.model.delete);
        let deleted = self.inner.delete_stream(locations);
        futures::stream::once(async move {
            tokio::time::sleep(wait).await;
            deleted
        })
        .flatten()
        .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let wait = self.delay(self.model.list);
        let listed = self.inner.list(prefix);
        futures::stream::once(async move {
            tokio::time::sleep(wait).await;
            listed
        })
        .flatten()
        .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let wait = self.delay(self.model.list);
        let listed = self.inner.list_with_offset(prefix, offset);
        futures::stream::once(async move {
            tokio::time::sleep(wait).await;
            listed
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.wait(self.model.list).await;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.wait(self.model.put).await;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.wait(self.model.put).await;
        self.inner.rename_opts(from, to, options).await
    }
}
