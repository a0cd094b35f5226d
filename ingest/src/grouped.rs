//! Grouped mode: writers hand their files over as manifests (`lakehouse_lake::manifest`,
//! `manifest_log`), and one [`committer`] per table lands many in one commit.

pub mod committer;
