//! Masking keys for client frames: unpredictable, as RFC 6455 section 10.3
//! requires, from a CSPRNG seeded by the OS once per connection.

use clarion_proto::connection::MaskSource;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub(crate) fn mask_source() -> MaskSource {
    let mut rng = StdRng::from_os_rng();
    Box::new(move || rng.random())
}
