//! Grouped mode on AWS: the manifest log in DynamoDB ([`manifests`]), written by the ingest
//! Lambda, and the committer Lambda (`main.rs`) its stream invokes.

pub mod manifests;
