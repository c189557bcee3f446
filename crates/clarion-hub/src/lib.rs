//! The real-time engine of `clarion serve`.
