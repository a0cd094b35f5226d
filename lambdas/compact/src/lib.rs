//! The compaction Lambda's coordination, over the compaction stage: [`lease`] keeps one
//! compaction at a time per lake and fences each of its commits.

pub mod lease;
