//! The verdict of the event rules on one record: valid (the event), invalid (the reason),
//! or too large to read (quarantined by its first bytes).

use crate::rules::event::{DetachedEvent, Event, Rejection, parse_event};

/// What the ingestor does with a record; the event borrowed from the record (`Event`) or
/// apart from it, to cross threads ([`DetachedEvent`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<E> {
    /// Longer than the maximum record: quarantined by its first bytes.
    TooLarge,
    Valid(E),
    Invalid(Rejection),
}

/// Judges one record by the event rules and the maximum record size.
pub fn judge(data: &[u8], max_record_bytes: usize) -> Verdict<Event<'_>> {
    if data.len() > max_record_bytes {
        return Verdict::TooLarge;
    }
    match parse_event(data) {
        Ok(event) => Verdict::Valid(event),
        Err(rejection) => Verdict::Invalid(rejection),
    }
}

impl Verdict<Event<'_>> {
    pub fn detach(self) -> Verdict<DetachedEvent> {
        match self {
            Verdict::TooLarge => Verdict::TooLarge,
            Verdict::Valid(event) => Verdict::Valid(event.detach()),
            Verdict::Invalid(rejection) => Verdict::Invalid(rejection),
        }
    }
}

impl Verdict<DetachedEvent> {
    /// The verdict on `data`, the record it was given for (`None` for any other bytes).
    pub fn attach<'a>(&'a self, data: &'a [u8]) -> Option<Verdict<Event<'a>>> {
        Some(match self {
            Verdict::TooLarge => Verdict::TooLarge,
            Verdict::Valid(detached) => {
                Verdict::Valid(detached.attach(std::str::from_utf8(data).ok()?)?)
            }
            Verdict::Invalid(rejection) => Verdict::Invalid(rejection.clone()),
        })
    }
}
