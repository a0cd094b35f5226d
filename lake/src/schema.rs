//! The table contract: column names, types and partitioning of `raw`, `staging`,
//! `quarantine`, `staging_keys` (staging's key index) and `erasures` (erasure receipts). Everything that reads or writes a table takes its schema from here.

use std::sync::{Arc, LazyLock};

use deltalake::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::{DataType as DeltaType, StructField};
use deltalake::parquet::basic::{Compression, Encoding};
use deltalake::parquet::file::properties::{
    EnabledStatistics, WriterProperties, WriterPropertiesBuilder,
};
use deltalake::parquet::schema::types::ColumnPath;

pub const EVENT_UUID: &str = "event_uuid";
pub const EVENT_NAME: &str = "event_name";
pub const EVENT_TYPE: &str = "event_type";
pub const EVENT_SUBTYPE: &str = "event_subtype";
pub const CREATED_AT: &str = "created_at";
pub const CREATED_DATETIME: &str = "created_datetime";
pub const EVENT_DATE: &str = "event_date";
pub const INGESTED_AT: &str = "ingested_at";
pub const SOURCE: &str = "source";
pub const SOURCE_POSITION: &str = "source_position";
pub const INGEST_SEQ: &str = "ingest_seq";
pub const RAW_VERSION: &str = "raw_version";
pub const PAYLOAD: &str = "payload";
pub const RAW: &str = "raw";
pub const ERROR: &str = "error";
pub const INGEST_DATE: &str = "ingest_date";
pub const KEY_HI: &str = "key_hi";
pub const KEY_LO: &str = "key_lo";
pub const KEY_BUCKET: &str = "key_bucket";
pub const SUBJECT_ID: &str = "subject_id";
pub const REQUEST_ID: &str = "request_id";

/// Delta timestamps are UTC instants with microsecond precision (`timestamp`, not
/// `timestamp_ntz`, which would need writer version 7).
pub const UTC: &str = "UTC";

#[derive(Clone, Copy, Debug)]
enum ColumnType {
    String,
    Long,
    Timestamp,
    Date,
    Binary,
}

impl ColumnType {
    fn delta(self) -> DeltaType {
        match self {
            ColumnType::String => DeltaType::STRING,
            ColumnType::Long => DeltaType::LONG,
            ColumnType::Timestamp => DeltaType::TIMESTAMP,
            ColumnType::Date => DeltaType::DATE,
            ColumnType::Binary => DeltaType::BINARY,
        }
    }

    fn arrow(self) -> ArrowType {
        match self {
            ColumnType::String => ArrowType::Utf8,
            ColumnType::Long => ArrowType::Int64,
            ColumnType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::Date => ArrowType::Date32,
            ColumnType::Binary => ArrowType::Binary,
        }
    }
}

struct Column {
    name: &'static str,
    kind: ColumnType,
    nullable: bool,
}

const fn col(name: &'static str, kind: ColumnType, nullable: bool) -> Column {
    Column {
        name,
        kind,
        nullable,
    }
}

/// Columns of `raw`; `staging` adds [`RAW_VERSION`]. Columns with statistics come first
/// (see [`STATS_COLUMNS`]): the long `payload` last, so it never bloats the log with stats.
const EVENT_COLUMNS: &[Column] = &[
    col(EVENT_UUID, ColumnType::String, false),
    col(EVENT_NAME, ColumnType::String, false),
    col(EVENT_TYPE, ColumnType::String, false),
    col(EVENT_SUBTYPE, ColumnType::String, true),
    col(CREATED_AT, ColumnType::Long, true),
    col(CREATED_DATETIME, ColumnType::Timestamp, true),
    col(EVENT_DATE, ColumnType::Date, true),
    col(INGESTED_AT, ColumnType::Timestamp, true),
    col(SOURCE, ColumnType::String, true),
    col(SOURCE_POSITION, ColumnType::String, true),
    col(INGEST_SEQ, ColumnType::Long, true),
];

const STAGING_EXTRA: &[Column] = &[col(RAW_VERSION, ColumnType::Long, true)];
/// The payload, then the subject its paths name ([`crate::subject`]): added after the
/// first tables were written, so last (a nullable column added keeps older files readable;
/// their rows read it as null).
const PAYLOAD_COLUMNS: &[Column] = &[
    col(PAYLOAD, ColumnType::String, true),
    col(SUBJECT_ID, ColumnType::String, true),
];

/// Columns a table gained after tables were written: [`crate::Lake::open`] adds them to an
/// older table (a metadata commit) before anything writes to it.
pub const ADDED_COLUMNS: &[&str] = &[SUBJECT_ID];

/// An erasure's receipt ([`Table::Erasures`]): no personal data, only a keyed hash of each
/// subject. `details` is a JSON object: per table, the versions written, files and rows
/// removed and purged, and the copies the lake does not control.
const ERASURE_COLUMNS: &[Column] = &[
    col(REQUEST_ID, ColumnType::String, false),
    col("subject_hashes", ColumnType::String, false),
    col("subjects", ColumnType::Long, false),
    col("requested_at", ColumnType::Timestamp, false),
    col("completed_at", ColumnType::Timestamp, false),
    col("files_rewritten", ColumnType::Long, false),
    col("rows_removed", ColumnType::Long, false),
    col("files_purged", ColumnType::Long, false),
    col("versions_checked", ColumnType::Long, false),
    col("residue_rows", ColumnType::Long, false),
    col("details", ColumnType::String, false),
];

const QUARANTINE_COLUMNS: &[Column] = &[
    col(RAW, ColumnType::Binary, true),
    col(ERROR, ColumnType::String, false),
    col(SOURCE, ColumnType::String, true),
    col(SOURCE_POSITION, ColumnType::String, true),
    col(INGEST_SEQ, ColumnType::Long, true),
    col(INGESTED_AT, ColumnType::Timestamp, true),
    col(INGEST_DATE, ColumnType::Date, true),
];

/// The key index: an `event_uuid`'s 128-bit key ([`crate::keys`]) as two longs, the staged
/// row's `created_datetime` and `event_type` (its partition with the date of that instant),
/// partitioned by the key's bucket.
const KEYS_COLUMNS: &[Column] = &[
    col(KEY_HI, ColumnType::Long, false),
    col(KEY_LO, ColumnType::Long, false),
    col(CREATED_DATETIME, ColumnType::Timestamp, true),
    col(EVENT_TYPE, ColumnType::String, false),
    col(KEY_BUCKET, ColumnType::String, false),
];

/// Number of leading columns Delta keeps min/max statistics for (`delta.dataSkippingNumIndexedCols`).
pub const STATS_COLUMNS: usize = 8;

/// Longest `event_type` partition value, in bytes of its escaped path segment
/// (`event_type=<value>`). A file name holds 255 bytes on common file systems and an S3 key
/// 1,024 in all; 200 leaves room for the lake's prefix, the date segment and the file name.
pub const MAX_PARTITION_VALUE_PATH_BYTES: usize = 200;

/// The bytes `value` takes as a partition path segment, counted as if every byte other than
/// an ASCII letter, digit or `-_.~` were percent-escaped (3 bytes). Delta escapes a subset
/// of those, so the real segment is never longer.
pub fn partition_value_path_bytes(value: &str) -> usize {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                1
            } else {
                3
            }
        })
        .sum()
}

/// How `raw` is partitioned, chosen when it is created (the table's metadata decides from
/// then on; every writer follows it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RawLayout {
    /// `event_date`, `event_type`: the design's layout; a batch writes a file per type.
    #[default]
    DateType,
    /// `event_date` only, rows sorted by key bucket, then `event_type`, inside each file: a
    /// batch writes one file per day it spans. For volume (docs/scaling.md); `staging` keeps date and type.
    Date,
}

impl RawLayout {
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            RawLayout::DateType => &[EVENT_DATE, EVENT_TYPE],
            RawLayout::Date => &[EVENT_DATE],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RawLayout::DateType => "date-type",
            RawLayout::Date => "date",
        }
    }

    pub fn parse(name: &str) -> Option<RawLayout> {
        [RawLayout::DateType, RawLayout::Date]
            .into_iter()
            .find(|l| l.name() == name)
    }

    /// The layout a table partitioned by `columns` has, if it is one.
    pub fn of_columns(columns: &[&str]) -> Option<RawLayout> {
        [RawLayout::DateType, RawLayout::Date]
            .into_iter()
            .find(|l| l.partition_columns() == columns)
    }
}

/// One of the lake's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Raw,
    Staging,
    Quarantine,
    /// Staging's key index, kept by compaction (`docs/dedup.md`).
    Keys,
    /// One receipt per erasure request (`docs/erasure.md`).
    Erasures,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Raw,
        Table::Staging,
        Table::Quarantine,
        Table::Keys,
        Table::Erasures,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Raw => "raw",
            Table::Staging => "staging",
            Table::Quarantine => "quarantine",
            Table::Keys => "staging_keys",
            Table::Erasures => "erasures",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn description(self) -> &'static str {
        match self {
            Table::Raw => "every valid event as received, append-only",
            Table::Staging => "one row per event_uuid: the latest created_at wins",
            Table::Quarantine => "every rejected record, byte for byte, with the reason",
            Table::Keys => "staging's key index: each event_uuid's key, created_datetime and type",
            Table::Erasures => "one receipt per erasure request, free of personal data",
        }
    }

    /// The partition columns a table is created with (raw: its default layout; see
    /// [`RawLayout`] for the other).
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            Table::Raw => RawLayout::default().partition_columns(),
            Table::Staging => &[EVENT_DATE, EVENT_TYPE],
            Table::Quarantine => &[INGEST_DATE],
            Table::Keys => &[KEY_BUCKET],
            Table::Erasures => &[],
        }
    }

    /// Whether a table partitioned by `columns` keeps the contract: raw in any
    /// [`RawLayout`], the others exactly as created.
    pub fn accepts_partitioning(self, columns: &[&str]) -> bool {
        match self {
            Table::Raw => RawLayout::of_columns(columns).is_some(),
            _ => columns == self.partition_columns(),
        }
    }

    /// Whether a writer puts the table's rows in key-bucket order, with where each bucket
    /// starts in the footer ([`crate::clustered`]): raw's, which every compaction range of
    /// keys reads, for its buckets only.
    pub fn clustered_by_key(self) -> bool {
        self == Table::Raw
    }

    /// Columns rows are sorted by inside each file a writer writes to a table partitioned by
    /// `partitions` (raw's within each key bucket, see [`Table::clustered_by_key`]): raw
    /// without `event_type` among them sorts by it, so a bucket's rows of one type lie
    /// together.
    pub fn sort_columns(self, partitions: &[&str]) -> &'static [&'static str] {
        match self {
            Table::Raw if !partitions.contains(&EVENT_TYPE) => &[EVENT_TYPE],
            // Sorted runs: a key is found by the pages' min/max, and sorted high halves
            // delta-encode to about 5 bytes.
            Table::Keys => &[KEY_HI, KEY_LO],
            _ => &[],
        }
    }

    fn columns(self) -> impl Iterator<Item = &'static Column> {
        let parts: [&'static [Column]; 3] = match self {
            Table::Raw => [EVENT_COLUMNS, &[], PAYLOAD_COLUMNS],
            Table::Staging => [EVENT_COLUMNS, STAGING_EXTRA, PAYLOAD_COLUMNS],
            Table::Quarantine => [QUARANTINE_COLUMNS, &[], &[]],
            Table::Keys => [KEYS_COLUMNS, &[], &[]],
            Table::Erasures => [ERASURE_COLUMNS, &[], &[]],
        };
        parts.into_iter().flatten()
    }

    /// The Delta schema, used when the table is created.
    pub fn delta_columns(self) -> Vec<StructField> {
        self.columns()
            .map(|c| StructField::new(c.name, c.kind.delta(), c.nullable))
            .collect()
    }

    /// How the table's Parquet files are written. Dictionary encoding is off for columns
    /// that are unique per row: it would only cost memory (one dictionary per file being
    /// written, and ingest and compaction write several at once) and time. No bloom
    /// filters but the key index's: the writer allocates each at full size per file being
    /// written, ~1 MB at the default size.
    pub fn writer_properties(self) -> WriterProperties {
        let unique: &[&str] = match self {
            Table::Raw | Table::Staging => &[
                EVENT_UUID,
                CREATED_AT,
                CREATED_DATETIME,
                SOURCE_POSITION,
                INGEST_SEQ,
                PAYLOAD,
            ],
            Table::Quarantine => &[RAW, SOURCE_POSITION, INGEST_SEQ],
            Table::Keys => &[KEY_HI, KEY_LO, CREATED_DATETIME],
            Table::Erasures => &[],
        };
        // Long free text no query filters by range: min/max statistics of it would cost a
        // comparison of every value (and bytes in every footer) and prune nothing.
        let no_statistics: &[&str] = match self {
            Table::Raw | Table::Staging => &[PAYLOAD, SOURCE_POSITION],
            Table::Quarantine => &[RAW, SOURCE_POSITION],
            Table::Keys => &[KEY_LO],
            Table::Erasures => &[],
        };
        let mut builder = WriterProperties::builder().set_compression(Compression::SNAPPY);
        for column in unique {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(*column), false);
        }
        for column in no_statistics {
            builder = builder
                .set_column_statistics_enabled(ColumnPath::from(*column), EnabledStatistics::None);
        }
        match self {
            Table::Keys => builder = keys_layout(builder),
            Table::Raw | Table::Staging => builder = subject_filter(builder),
            _ => {}
        }
        builder.build()
    }

    /// The Arrow schema of the table's rows, partition columns included.
    pub fn arrow_schema(self) -> SchemaRef {
        static RAW_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| build_arrow(Table::Raw));
        static STAGING_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| build_arrow(Table::Staging));
        static QUARANTINE_SCHEMA: LazyLock<SchemaRef> =
            LazyLock::new(|| build_arrow(Table::Quarantine));
        static KEYS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| build_arrow(Table::Keys));
        static ERASURES_SCHEMA: LazyLock<SchemaRef> =
            LazyLock::new(|| build_arrow(Table::Erasures));
        match self {
            Table::Raw => RAW_SCHEMA.clone(),
            Table::Staging => STAGING_SCHEMA.clone(),
            Table::Quarantine => QUARANTINE_SCHEMA.clone(),
            Table::Keys => KEYS_SCHEMA.clone(),
            Table::Erasures => ERASURES_SCHEMA.clone(),
        }
    }
}

/// Distinct subjects a row group's bloom filter on `subject_id` is sized for (1 % false
/// positives): the writer folds it down to what a small row group needs, so a file of a
/// few hundred rows carries a filter of a few hundred bytes.
const SUBJECT_FILTER_NDV: u64 = 64 * 1024;

/// Raw and staging files carry a bloom filter on `subject_id`: an erasure reads each row
/// group's filter (bytes, not the data) and only the files it may be in, and the row
/// group's null count, which says whether rows older than the column are in it
/// (`docs/erasure.md`).
fn subject_filter(builder: WriterPropertiesBuilder) -> WriterPropertiesBuilder {
    let subject = || ColumnPath::from(SUBJECT_ID);
    builder
        .set_column_statistics_enabled(subject(), EnabledStatistics::Chunk)
        .set_column_bloom_filter_enabled(subject(), true)
        .set_column_bloom_filter_fpp(subject(), 0.01)
        .set_column_bloom_filter_max_ndv(subject(), SUBJECT_FILTER_NDV)
}

/// Rows of a row group of the key index: its bloom filter is sized for this many keys.
const KEY_ROW_GROUP_ROWS: usize = 64 * 1024;

/// Rows of a page of the key index: what a point read reads for a key that may be there
/// (about 20 KB).
const KEY_PAGE_ROWS: usize = 1024;

/// The key index's files: sorted high halves delta-encoded (about 5 bytes instead of 8),
/// pages of [`KEY_PAGE_ROWS`] with min/max in the page index, and a bloom filter on
/// `key_hi` (0.1 % false positives, as a key is checked against every run of its bucket;
/// the writer folds the filter down to what a small file needs):
/// most keys a merge looks up are new, and the filter answers those without reading a page.
fn keys_layout(builder: WriterPropertiesBuilder) -> WriterPropertiesBuilder {
    let key = || ColumnPath::from(KEY_HI);
    builder
        .set_column_encoding(key(), Encoding::DELTA_BINARY_PACKED)
        .set_max_row_group_row_count(Some(KEY_ROW_GROUP_ROWS))
        .set_data_page_row_count_limit(KEY_PAGE_ROWS)
        .set_column_bloom_filter_enabled(key(), true)
        .set_column_bloom_filter_fpp(key(), 0.001)
        .set_column_bloom_filter_max_ndv(key(), KEY_ROW_GROUP_ROWS as u64)
}

fn build_arrow(table: Table) -> SchemaRef {
    Arc::new(Schema::new(
        table
            .columns()
            .map(|c| Field::new(c.name, c.kind.arrow(), c.nullable))
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_columns_exist_in_every_schema() {
        for table in Table::ALL {
            let schema = table.arrow_schema();
            for p in table.partition_columns() {
                assert!(
                    schema.field_with_name(p).is_ok(),
                    "{} lacks {p}",
                    table.name()
                );
            }
            assert_eq!(schema.fields().len(), table.delta_columns().len());
        }
    }

    #[test]
    fn staging_is_raw_plus_raw_version() {
        let raw = Table::Raw.arrow_schema();
        let staging = Table::Staging.arrow_schema();
        assert_eq!(staging.fields().len(), raw.fields().len() + 1);
        for f in raw.fields() {
            assert_eq!(staging.field_with_name(f.name()).ok(), Some(f.as_ref()));
        }
        assert_eq!(staging.field(STATS_COLUMNS - 1).name(), INGESTED_AT);
    }
}
