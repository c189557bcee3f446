//! `clarion serve`: the real-time server.
