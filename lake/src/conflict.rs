//! The lake's own conflict rules, checked against every commit that landed between the
//! version a commit was planned on and the version it takes.
//!
//! delta-rs lets two rewrites (`dataChange=false`) remove the same file: two overlapping
//! bin-packings then both commit, and every row of that file is live twice. Here removing
//! a file that a concurrent commit already removed is always a conflict, whatever either
//! commit's `dataChange` says.

use std::collections::HashSet;

use deltalake::kernel::{Action, Transaction};

use crate::keys::CARRIED_TAG;
use crate::ranges::{RunRange, SplitBy};
use crate::schema::EVENT_TYPE;

/// The data a commit was planned on.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) enum Reads {
    /// Nothing: a blind append or a rewrite.
    #[default]
    Nothing,
    /// The whole table (a merge).
    Table,
    /// One range of a fanned-out merge. By type: data changes in other types' partitions
    /// leave its plan true. By key: so do the new files and removes of a merge of keys
    /// disjoint from its own (a sibling's, tagged), and anyone's carried files (rows
    /// staged before, unchanged: the removes beside them decide); a remove of a file this
    /// plan rewrites conflicts as a remove.
    Range(RunRange),
}

type Tags = std::collections::HashMap<String, Option<String>>;

impl Reads {
    /// Whether a data change in a file with these partition values and tags touches what
    /// was read (`add`: the file was added, not removed).
    fn touched_by(self, partition_values: &Tags, tags: Option<&Tags>, add: bool) -> bool {
        match self {
            Reads::Nothing => false,
            Reads::Table => true,
            Reads::Range(range) => match range.by() {
                // A file without a type partition (raw by date) may hold any type.
                SplitBy::Types => match partition_values.get(EVENT_TYPE) {
                    Some(Some(t)) => range.holds_type(t),
                    _ => true,
                },
                // A file tagged with a key range holds only its events; a remove tagged with
                // one is that range's merge's, whose rows of ours it carried.
                SplitBy::Keys => {
                    let carried = add && tags.is_some_and(|t| t.contains_key(CARRIED_TAG));
                    !carried && range.may_be_in_file(tags)
                }
            },
        }
    }
}

/// What a commit depends on not having changed under it.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    /// Files the commit removes: they must still be live when it lands.
    removes: HashSet<String>,
    /// Application ids whose progress the commit records (`txn`): another commit recording
    /// progress for one of them means this commit's plan is stale.
    app_ids: HashSet<String>,
    /// What of the table's data the commit was planned on (a merge read it): a concurrent
    /// data change there invalidates the plan. Blind appends and rewrites read nothing.
    reads: Reads,
}

impl Claims {
    pub(crate) fn new(actions: &[Action], transactions: &[Transaction], reads: Reads) -> Self {
        Claims {
            removes: actions
                .iter()
                .filter_map(|a| match a {
                    Action::Remove(r) => Some(r.path.clone()),
                    _ => None,
                })
                .collect(),
            app_ids: transactions.iter().map(|t| t.app_id.clone()).collect(),
            reads,
        }
    }

    /// Why a commit that landed first (its `actions`) invalidates this one; `None` when
    /// both can stand.
    pub(crate) fn conflict_with(&self, winner: &[Action]) -> Option<String> {
        for action in winner {
            let reason = match action {
                Action::Remove(r) if self.removes.contains(&r.path) => {
                    format!("removed {}, which this commit also removes", r.path)
                }
                Action::Txn(t) if self.app_ids.contains(&t.app_id) => {
                    format!("recorded progress for {}, as this commit does", t.app_id)
                }
                Action::Metadata(_) => "changed the table's metadata".to_string(),
                Action::Protocol(_) => "changed the table's protocol".to_string(),
                Action::Add(a)
                    if a.data_change
                        && self
                            .reads
                            .touched_by(&a.partition_values, a.tags.as_ref(), true) =>
                {
                    format!("added {}, to data this commit was planned on", a.path)
                }
                Action::Remove(r)
                    if r.data_change
                        && self.reads.touched_by(
                            r.partition_values.as_ref().unwrap_or(&Default::default()),
                            r.tags.as_ref(),
                            false,
                        ) =>
                {
                    format!("removed {}, from data this commit was planned on", r.path)
                }
                _ => continue,
            };
            return Some(reason);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranges::KEY_RANGE_TAG;
    use deltalake::kernel::{Add, Remove};

    fn add(path: &str, data_change: bool) -> Action {
        Action::Add(Add {
            path: path.into(),
            data_change,
            ..Default::default()
        })
    }

    fn remove(path: &str, data_change: bool) -> Action {
        Action::Remove(Remove {
            path: path.into(),
            data_change,
            ..Default::default()
        })
    }

    #[test]
    fn removing_a_file_twice_conflicts_whatever_data_change_says() {
        for (ours, theirs) in [(false, false), (false, true), (true, false), (true, true)] {
            let claims = Claims::new(&[remove("a", ours), add("b", ours)], &[], Reads::Nothing);
            let reason = claims.conflict_with(&[remove("a", theirs), add("c", theirs)]);
            assert!(
                reason.is_some_and(|r| r.contains("removed a")),
                "{ours} {theirs}"
            );
            assert_eq!(claims.conflict_with(&[remove("x", theirs)]), None);
        }
    }

    #[test]
    fn the_same_application_id_conflicts_and_another_does_not() {
        let ours = Transaction::new("shard-1", 4);
        let claims = Claims::new(&[add("a", true)], &[ours], Reads::Nothing);
        let same = Action::Txn(Transaction::new("shard-1", 4));
        let other = Action::Txn(Transaction::new("shard-2", 9));
        assert!(claims.conflict_with(&[same, add("b", true)]).is_some());
        assert_eq!(claims.conflict_with(&[other, add("b", true)]), None);
    }

    #[test]
    fn only_a_commit_that_read_the_table_conflicts_with_new_data() {
        let appends = [add("new", true)];
        let rewrite = [remove("old", false), add("packed", false)];
        let blind = Claims::new(&[add("a", true)], &[], Reads::Nothing);
        let merge = Claims::new(&[remove("s", true), add("t", true)], &[], Reads::Table);
        assert_eq!(blind.conflict_with(&appends), None);
        assert!(merge.conflict_with(&appends).is_some());
        // A rewrite keeps the rows the merge read, in other files.
        assert_eq!(merge.conflict_with(&rewrite), None);
    }

    fn add_of_type(path: &str, event_type: Option<&str>) -> Action {
        Action::Add(Add {
            path: path.into(),
            data_change: true,
            partition_values: event_type
                .map(|t| ("event_type".to_string(), Some(t.to_string())))
                .into_iter()
                .collect(),
            ..Default::default()
        })
    }

    #[test]
    fn a_merge_of_one_type_range_conflicts_only_with_data_in_its_types() {
        let range = RunRange::types(0, 4).expect("range");
        let (ours, theirs) =
            (0..100)
                .map(|i| format!("type{i}"))
                .fold((None, None), |(o, t), name| {
                    if range.holds_type(&name) {
                        (o.or(Some(name)), t)
                    } else {
                        (o, t.or(Some(name)))
                    }
                });
        let (ours, theirs) = (ours.expect("a type in range"), theirs.expect("one outside"));
        let merge = Claims::new(&[add("t", true)], &[], Reads::Range(range));
        assert!(
            merge
                .conflict_with(&[add_of_type("a", Some(&ours))])
                .is_some()
        );
        assert_eq!(
            merge.conflict_with(&[add_of_type("b", Some(&theirs))]),
            None
        );
        // No type partition (raw by date): it may hold the range's types.
        assert!(merge.conflict_with(&[add_of_type("c", None)]).is_some());
    }

    fn tagged(mut action: Action, range: Option<RunRange>) -> Action {
        let tags = range.map(|r| {
            std::collections::HashMap::from([(KEY_RANGE_TAG.to_string(), Some(r.name()))])
        });
        match &mut action {
            Action::Add(a) => a.tags = tags,
            Action::Remove(r) => r.tags = tags,
            _ => {}
        }
        action
    }

    #[test]
    fn a_merge_of_one_key_range_lets_only_its_siblings_merges_land_first() {
        let ours = RunRange::keys(1, 4).expect("range");
        let merge = Claims::new(
            &[remove("s", true), add("t", true)],
            &[],
            Reads::Range(ours),
        );
        let sibling = RunRange::keys(3, 4);
        // A sibling's new events and the rows it carried out of a file it rewrote.
        let theirs = [
            tagged(add("new", true), sibling),
            tagged(remove("old", true), sibling),
        ];
        assert_eq!(merge.conflict_with(&theirs), None);
        // A file both rewrite: the removes conflict, tagged or not.
        assert!(
            merge
                .conflict_with(&[tagged(remove("s", true), sibling)])
                .is_some()
        );
        // So does a merge of disjoint keys under another N.
        let disjoint = RunRange::keys(0, 8);
        assert_eq!(
            merge.conflict_with(&[tagged(add("n", true), disjoint)]),
            None
        );
        // Anything else that changed data: untagged (a whole-table merge, a sweep), our own
        // range (another run of it), overlapping keys under another N, or a type range.
        for other in [
            None,
            Some(ours),
            RunRange::keys(3, 8),
            RunRange::keys(0, 2),
            RunRange::types(3, 4),
        ] {
            assert!(
                merge
                    .conflict_with(&[tagged(add("x", true), other)])
                    .is_some(),
                "{other:?}"
            );
            assert!(
                merge
                    .conflict_with(&[tagged(remove("y", true), other)])
                    .is_some(),
                "{other:?}"
            );
        }
        // Rewrites that keep data (optimize) never touch a plan, nor carried rows from
        // anyone: the removes beside them decide.
        assert_eq!(merge.conflict_with(&[add("packed", false)]), None);
        let mut carried = add("kept", true);
        if let Action::Add(a) = &mut carried {
            crate::keys::mark_carried(a);
        }
        assert_eq!(merge.conflict_with(&[carried.clone()]), None);
        assert!(
            merge
                .conflict_with(&[carried, remove("old", true)])
                .is_some()
        );
    }

    #[test]
    fn metadata_and_protocol_changes_conflict_with_everything() {
        let claims = Claims::default();
        let metadata = Action::Metadata(
            serde_json::from_value(serde_json::json!({
                "id": "x", "format": {"provider": "parquet", "options": {}},
                "schemaString": "{\"type\":\"struct\",\"fields\":[]}",
                "partitionColumns": [], "configuration": {}
            }))
            .expect("metadata"),
        );
        assert!(claims.conflict_with(&[metadata]).is_some());
    }
}
