//! The client protocol of `clarion serve` (see `docs/protocol.md`).
