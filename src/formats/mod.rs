//! File formats, streamed: what transfers read from and write to object stores.
//!
//! Each format is a writer and a reader that work chunk by chunk, so a transfer's
//! memory stays flat whatever the size of the data.

pub mod csv;
