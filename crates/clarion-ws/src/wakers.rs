//! One waker for socket writes that wakes both halves of a split socket.
//!
//! Either half may need to write (the reader queues pongs and close replies),
//! but a socket keeps only the last write waker it was given. Polling writes
//! with this combined waker means neither half's wake-up is lost.

use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};

/// Which half is polling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Reader = 0,
    Writer = 1,
}

#[derive(Debug, Default)]
pub(crate) struct WriteWakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

impl WriteWakers {
    /// Remembers `waker` for `side` and returns a waker that wakes both.
    pub(crate) fn register(self: &Arc<Self>, side: Side, waker: &Waker) -> Waker {
        if let Ok(mut slots) = self.slots.lock() {
            let slot = &mut slots[side as usize];
            if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
        Waker::from(Arc::clone(self))
    }
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let taken = match self.slots.lock() {
            Ok(mut slots) => [slots[0].take(), slots[1].take()],
            Err(_) => return,
        };
        for waker in taken.into_iter().flatten() {
            waker.wake();
        }
    }
}
