//! The event rules: what is valid and how an event is transformed ([`event`]), and the
//! verdict on one record ([`verdict`]).

pub mod event;
pub mod verdict;
