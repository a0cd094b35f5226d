//! The compaction Lambda's coordination, over the compaction stage: [`lease`] keeps one
//! compaction at a time per lake and fences each of its commits; [`sweep`] answers the
//! sweep state machine's events.

pub mod lease;
pub mod sweep;
