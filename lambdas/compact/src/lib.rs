//! The compaction Lambda's coordination, over the compaction stage: [`lease`] keeps one
//! compaction at a time per lake (or per range) and fences each of its commits; [`range`]
//! reads which range an event asks for; [`sweep`] answers the sweep state machine's events,
//! [`keys_build`] the keys-build state machine's; [`erase`] processes the erasure requests
//! waiting in the lake.

pub mod erase;
pub mod keys_build;
pub mod lease;
pub mod range;
pub mod sweep;
