//! Tests of permessage-deflate, by RFC 7692 section, plus the offers and
//! answers of the Autobahn suite.

mod autobahn;
mod codec;
mod distances;
mod negotiation;
