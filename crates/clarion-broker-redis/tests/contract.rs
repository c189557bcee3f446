//! The broker contract suite, unchanged, against the Redis broker on a
//! private redis-server per test.

mod common;

use common::RedisHarness;

clarion_hub::broker_contract_tests!(#[tokio::test], RedisHarness::new());
