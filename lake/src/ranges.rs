//! Ranges of fanned-out compaction: N runs, each merging one range of the events, that do
//! not fail each other's commits.
//!
//! - **By type** (`types I/N`): the event types whose stable hash falls in slice I. Staging
//!   is partitioned by type, so ranges touch different files; an event staged under two
//!   types keeps one row per range.
//! - **By key** (`keys I/N`): the `event_uuid`s whose key (see [`crate::keys`]) has its top
//!   bits equal to I. Every copy of an event falls in one range, so uniqueness holds across
//!   types, and a range reads 1/N of the key index. Ranges share staging's partitions: the
//!   files a merge adds with new events, and the removes it makes, carry [`KEY_RANGE_TAG`],
//!   by which a sibling's commit is told apart from one that changed the rows this range
//!   planned on, and by which a range reads only files that may hold its events.

use std::collections::HashMap;
use std::ops::Range;

use deltalake::kernel::Add;

use crate::keys::{KEY_BUCKETS, Key};
use crate::schema::EVENT_TYPE;

/// What the events are split by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SplitBy {
    Types,
    Keys,
}

impl SplitBy {
    pub fn name(self) -> &'static str {
        match self {
            SplitBy::Types => "types",
            SplitBy::Keys => "keys",
        }
    }
}

/// Range `index` of `count`, split by types or by keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunRange {
    by: SplitBy,
    index: u32,
    count: u32,
}

/// A key range's [`RunRange::name`], as a tag. On an `add`: the file holds only that
/// range's events (its merge's new rows, and what rewrites and optimize made of such files
/// alone). On a `remove`: that range's merge made it. Readers ignore tags.
pub const KEY_RANGE_TAG: &str = "lakehouse.keyRange";

impl RunRange {
    /// Type range `index` of `count` (`index < count`).
    pub fn types(index: u32, count: u32) -> Option<RunRange> {
        (index < count).then_some(RunRange {
            by: SplitBy::Types,
            index,
            count,
        })
    }

    /// Key range `index` of `count`: `count` is a power of two up to [`KEY_BUCKETS`], so
    /// each range holds whole buckets of the index, as many as every other.
    pub fn keys(index: u32, count: u32) -> Option<RunRange> {
        (index < count && count.is_power_of_two() && count <= KEY_BUCKETS).then_some(RunRange {
            by: SplitBy::Keys,
            index,
            count,
        })
    }

    /// `"I/N"`, as the CLI and the Lambda's event take it, with the reason when it is not
    /// a range.
    pub fn parse(by: SplitBy, text: &str) -> Result<RunRange, String> {
        let range = text.split_once('/').and_then(|(index, count)| {
            let (index, count) = (index.trim().parse().ok()?, count.trim().parse().ok()?);
            match by {
                SplitBy::Types => RunRange::types(index, count),
                SplitBy::Keys => RunRange::keys(index, count),
            }
        });
        range.ok_or_else(|| match by {
            SplitBy::Types => format!("{text:?}: expected I/N with 0 <= I < N, e.g. 2/4"),
            SplitBy::Keys => format!(
                "{text:?}: expected I/N with 0 <= I < N and N a power of two up to \
                 {KEY_BUCKETS}, e.g. 2/4"
            ),
        })
    }

    pub fn by(self) -> SplitBy {
        self.by
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Every range of this one's kind (split and count), this one included.
    pub fn siblings(self) -> impl Iterator<Item = RunRange> {
        (0..self.count).map(move |index| RunRange { index, ..self })
    }

    /// Whether `other` is of this range's kind: together the kind's ranges cover every
    /// event once.
    pub fn same_kind(self, other: RunRange) -> bool {
        self.by == other.by && self.count == other.count
    }

    /// Whether events of `event_type` may fall in this range (all do in a key range).
    pub fn holds_type(self, event_type: &str) -> bool {
        match self.by {
            SplitBy::Types => {
                fnv1a(event_type.as_bytes()) % u64::from(self.count) == u64::from(self.index)
            }
            SplitBy::Keys => true,
        }
    }

    /// Whether an event with this `event_uuid` may fall in this range (all do in a type
    /// range).
    pub fn holds_uuid(self, uuid: &str) -> bool {
        match self.by {
            SplitBy::Types => true,
            SplitBy::Keys => self.holds_bucket(Key::of(uuid).bucket()),
        }
    }

    /// Whether the key index's bucket `bucket` holds keys of this range.
    pub fn holds_bucket(self, bucket: u32) -> bool {
        match self.by {
            SplitBy::Types => true,
            SplitBy::Keys => bucket / (KEY_BUCKETS / self.count) == self.index,
        }
    }

    /// The buckets of the key index a key range holds (`None` for a type range).
    pub fn buckets(self) -> Option<Range<u32>> {
        let width = KEY_BUCKETS / self.count;
        (self.by == SplitBy::Keys).then(|| self.index * width..(self.index + 1) * width)
    }

    /// Whether this range and `other` may hold a common event: always, unless both are
    /// key ranges over disjoint buckets (of any N).
    pub fn overlaps(self, other: RunRange) -> bool {
        match (self.buckets(), other.buckets()) {
            (Some(a), Some(b)) => a.start < b.end && b.start < a.end,
            _ => true,
        }
    }

    /// Whether a staging file with these `tags` may hold events of this range: a file
    /// tagged with a key range holds only that range's events (see [`KEY_RANGE_TAG`]).
    pub fn may_be_in_file(self, tags: Option<&HashMap<String, Option<String>>>) -> bool {
        match tags.and_then(|t| t.get(KEY_RANGE_TAG)) {
            Some(Some(name)) => RunRange::of_name(name).is_none_or(|r| self.overlaps(r)),
            _ => true,
        }
    }

    /// Whether a data file may hold events of this range: by its `event_type` partition
    /// (a file without one, raw by date, may hold any type) and by its key-range tag.
    pub fn may_hold_file(self, add: &Add) -> bool {
        let of_type = match add.partition_values.get(EVENT_TYPE) {
            Some(Some(t)) => self.holds_type(t),
            _ => true,
        };
        of_type && self.may_be_in_file(add.tags.as_ref())
    }

    /// `types-I-of-N` or `keys-I-of-N`: the range in app ids, lease keys and tags.
    pub fn name(self) -> String {
        format!("{}-{}-of-{}", self.by.name(), self.index, self.count)
    }

    /// The inverse of [`RunRange::name`].
    pub fn of_name(name: &str) -> Option<RunRange> {
        let (by, rest) = name.split_once('-')?;
        let by = [SplitBy::Types, SplitBy::Keys]
            .into_iter()
            .find(|b| b.name() == by)?;
        let (index, count) = rest.split_once("-of-")?;
        RunRange::parse(by, &format!("{index}/{count}")).ok()
    }
}

/// The name of the key range whose events are all `add`'s, by its tag.
pub fn file_key_range(add: &Add) -> Option<&str> {
    add.tags.as_ref()?.get(KEY_RANGE_TAG)?.as_deref()
}

/// Tags `add` as holding only the events of the key range named `name` (a file made of
/// files tagged so alone).
pub fn tag_file_key_range(add: &mut Add, name: &str) {
    add.tags
        .get_or_insert_with(Default::default)
        .insert(KEY_RANGE_TAG.to_string(), Some(name.to_string()));
}

impl std::fmt::Display for RunRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.by.name(), self.index, self.count)
    }
}

/// FNV-1a, 64 bits: fixed by its definition, so a type's range never changes between
/// builds or machines (std's hasher promises no such thing).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ranges_split_every_type_into_exactly_one_range() {
        for count in [1, 2, 4, 7] {
            let ranges: Vec<_> = (0..count)
                .filter_map(|i| RunRange::types(i, count))
                .collect();
            for t in [
                "payment",
                "user",
                "cart",
                "",
                "ünï",
                "a/b",
                "x".repeat(300).as_str(),
            ] {
                assert_eq!(
                    ranges.iter().filter(|r| r.holds_type(t)).count(),
                    1,
                    "{t} {count}"
                );
            }
        }
        let four: Vec<_> = (0..4).filter_map(|i| RunRange::types(i, 4)).collect();
        let spread: Vec<usize> = four
            .iter()
            .map(|r| {
                (0..1000)
                    .filter(|i| r.holds_type(&format!("type{i}")))
                    .count()
            })
            .collect();
        assert!(spread.iter().all(|n| (150..350).contains(n)), "{spread:?}");
        // The hash is FNV-1a's: a type stays in its range across builds.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn key_ranges_split_every_uuid_into_exactly_one_range_of_whole_buckets() {
        for count in [1, 2, 4, 16, 64] {
            let ranges: Vec<_> = (0..count)
                .filter_map(|i| RunRange::keys(i, count))
                .collect();
            assert_eq!(ranges.len(), count as usize);
            for uuid in ["a", "", "ünï", "x".repeat(300).as_str()] {
                assert_eq!(ranges.iter().filter(|r| r.holds_uuid(uuid)).count(), 1);
            }
            for bucket in 0..KEY_BUCKETS {
                let holders = ranges.iter().filter(|r| r.holds_bucket(bucket)).count();
                assert_eq!(holders, 1, "{bucket} {count}");
            }
            // Every type may fall in any key range.
            assert!(ranges.iter().all(|r| r.holds_type("payment")));
        }
        let four: Vec<_> = (0..4).filter_map(|i| RunRange::keys(i, 4)).collect();
        let spread: Vec<usize> = four
            .iter()
            .map(|r| (0..4000).filter(|i| r.holds_uuid(&format!("u{i}"))).count())
            .collect();
        assert!(spread.iter().all(|n| (850..1150).contains(n)), "{spread:?}");
    }

    #[test]
    fn ranges_parse_and_name_round_trip() {
        assert_eq!(
            RunRange::parse(SplitBy::Types, "2/4"),
            Ok(RunRange::types(2, 4).expect("range"))
        );
        assert_eq!(
            RunRange::parse(SplitBy::Types, " 2 / 7 ").map(|r| r.count()),
            Ok(7)
        );
        for (by, bad) in [
            (SplitBy::Types, "4/4"),
            (SplitBy::Types, "x"),
            (SplitBy::Types, "1/0"),
            (SplitBy::Keys, "1/3"),
            (SplitBy::Keys, "0/128"),
            (SplitBy::Keys, "-1/4"),
        ] {
            let error = RunRange::parse(by, bad).expect_err(bad);
            assert!(error.contains("expected I/N"), "{error}");
        }
        for range in [RunRange::types(3, 7), RunRange::keys(5, 8)].map(Option::unwrap) {
            assert_eq!(RunRange::of_name(&range.name()), Some(range));
        }
        assert_eq!(
            RunRange::keys(5, 8).map(|r| r.name()),
            Some("keys-5-of-8".into())
        );
        assert_eq!(RunRange::of_name("keys-1-of-3"), None);
        assert_eq!(RunRange::of_name("other-1-of-2"), None);
    }

    proptest::proptest! {
        /// Any text, as the CLI or an event gives it: a range or the reason, never a
        /// panic, and a range's name gives it back.
        #[test]
        fn parsing_any_text_gives_a_range_or_a_reason(text in ".{0,12}", keys: bool) {
            let by = if keys { SplitBy::Keys } else { SplitBy::Types };
            if let Ok(range) = RunRange::parse(by, &text) {
                proptest::prop_assert!(range.index() < range.count());
                proptest::prop_assert_eq!(RunRange::of_name(&range.name()), Some(range));
            }
            let _ = RunRange::of_name(&text);
        }

        /// Two key ranges of any counts overlap exactly when some bucket is in both.
        #[test]
        fn key_ranges_overlap_as_their_buckets_do(a in 0u32..64, m in 0u32..7, b in 0u32..64, n in 0u32..7) {
            let (m, n) = (1 << m, 1 << n);
            let (a, b) = (RunRange::keys(a % m, m).unwrap(), RunRange::keys(b % n, n).unwrap());
            let common = (0..KEY_BUCKETS).any(|x| a.holds_bucket(x) && b.holds_bucket(x));
            proptest::prop_assert_eq!(a.overlaps(b), common);
        }
    }

    #[test]
    fn key_ranges_of_any_count_overlap_only_on_common_buckets() {
        let k = |i, n| RunRange::keys(i, n).expect("range");
        assert!(k(1, 4).overlaps(k(1, 4)));
        assert!(!k(1, 4).overlaps(k(2, 4)));
        assert!(k(1, 4).overlaps(k(0, 2)) && !k(1, 4).overlaps(k(1, 2)));
        assert!(k(1, 4).overlaps(k(3, 8)) && !k(1, 4).overlaps(k(4, 8)));
        assert!(k(0, 1).overlaps(k(63, 64)));
        assert!(k(1, 4).overlaps(RunRange::types(0, 4).expect("range")));
        // As the model: two ranges overlap when a bucket is in both.
        for (a, b) in [(k(1, 4), k(5, 16)), (k(1, 4), k(3, 16)), (k(3, 8), k(1, 2))] {
            let common = (0..KEY_BUCKETS).any(|x| a.holds_bucket(x) && b.holds_bucket(x));
            assert_eq!(a.overlaps(b), common, "{a} {b}");
        }
        let tagged = |name: &str| HashMap::from([(KEY_RANGE_TAG.to_string(), Some(name.into()))]);
        assert!(k(1, 4).may_be_in_file(None));
        assert!(k(1, 4).may_be_in_file(Some(&tagged("keys-0-of-2"))));
        assert!(!k(1, 4).may_be_in_file(Some(&tagged("keys-1-of-2"))));
        assert!(k(1, 4).may_be_in_file(Some(&tagged("unreadable"))));
    }
}
