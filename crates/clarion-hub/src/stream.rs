//! Where this node stands in a history channel's stream, as its broker
//! delivered it: the cursor that turns a lost live publication into a
//! repair from history instead of a gap.
//!
//! Every live publication of a channel with history passes
//! [`StreamCursor::admit`]: the next offset is delivered, an old one is a
//! duplicate, and a jump past the next one holds the publication (and any
//! that follow) while the hub reads the missing ones from history
//! (`repair.rs`). A broker reconnect ([`StreamCursor::start_resync`])
//! holds live delivery the same way while the hub checks the stream's top.

use clarion_wire::{Publication, StreamPosition};

/// What to do with a live publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The next one (or the first of a new epoch): deliver it.
    Deliver,
    /// Already delivered: drop it.
    Skip,
    /// A repair is under way: held until it ends.
    Held,
    /// Publications are missing before this one (now held): read
    /// `since + 1 ..` up to the held one from history.
    Repair {
        /// The last position delivered.
        since: StreamPosition,
        /// The held publication's offset (the missing ones are before it).
        until: u64,
    },
}

/// A live publication held during a repair.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    pub(crate) publication: Publication,
    pub(crate) epoch: String,
}

/// One channel's position and, during a repair, what is held.
#[derive(Debug)]
pub(crate) struct StreamCursor {
    epoch: String,
    top: u64,
    held: Option<Vec<Held>>,
}

impl StreamCursor {
    /// Starts at `position` (nothing after it delivered yet).
    pub(crate) fn new(position: &StreamPosition) -> StreamCursor {
        StreamCursor {
            epoch: position.epoch.clone(),
            top: position.offset,
            held: None,
        }
    }

    /// The last position delivered.
    pub(crate) fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.top,
            epoch: self.epoch.clone(),
        }
    }

    /// Whether a repair holds live delivery.
    #[cfg(test)]
    pub(crate) fn is_repairing(&self) -> bool {
        self.held.is_some()
    }

    /// Decides about a live publication at `offset` in `epoch`.
    pub(crate) fn admit(&mut self, publication: &Publication, offset: u64, epoch: &str) -> Admit {
        if let Some(held) = &mut self.held {
            held.push(Held {
                publication: publication.clone(),
                epoch: epoch.to_owned(),
            });
            return Admit::Held;
        }
        let admit = self.next(offset, epoch);
        if let Admit::Repair { .. } = admit {
            self.held = Some(vec![Held {
                publication: publication.clone(),
                epoch: epoch.to_owned(),
            }]);
        }
        admit
    }

    /// [`admit`](Self::admit) without the hold: where `offset` stands.
    fn next(&mut self, offset: u64, epoch: &str) -> Admit {
        if epoch != self.epoch {
            // A new stream: its subscribers end and recover (`recovered:
            // false`); delivering it lets later subscribers follow it.
            self.epoch = epoch.to_owned();
            self.top = offset;
            return Admit::Deliver;
        }
        if offset <= self.top {
            return Admit::Skip;
        }
        if offset == self.top + 1 {
            self.top = offset;
            return Admit::Deliver;
        }
        Admit::Repair {
            since: self.position(),
            until: offset,
        }
    }

    /// Holds live delivery to check the stream after a broker reconnect;
    /// `None` if a repair already holds it (it checks the held ones).
    pub(crate) fn start_resync(&mut self) -> Option<StreamPosition> {
        if self.held.is_some() {
            return None;
        }
        self.held = Some(Vec::new());
        Some(self.position())
    }

    /// A repaired publication at `offset` was delivered.
    pub(crate) fn repaired(&mut self, offset: u64) {
        self.top = self.top.max(offset);
    }

    /// Moves to `position` without delivering what lies between (the
    /// subscribers were told: `unsubscribe` 2500). Held publications of
    /// another epoch are dropped with the stream they belonged to.
    pub(crate) fn reset(&mut self, position: &StreamPosition) {
        self.epoch = position.epoch.clone();
        self.top = position.offset;
        if let Some(held) = &mut self.held {
            held.retain(|h| h.epoch == position.epoch);
        }
    }

    /// Gives up on the gap before the first held publication (history
    /// could not fill it; the subscribers were told): live delivery goes
    /// on from there.
    pub(crate) fn skip_gap(&mut self) {
        let first = self.held.as_ref().and_then(|h| h.first());
        let Some((offset, epoch)) = first.and_then(|h| Some((h.publication.offset?, &h.epoch)))
        else {
            return;
        };
        if *epoch != self.epoch || offset > self.top + 1 {
            self.epoch = epoch.clone();
            self.top = offset - 1;
        }
    }

    /// Goes through what was held, in order: `Ok(deliver)` when all of it
    /// was admitted (live delivery resumes), or `Err((deliver, since,
    /// until))` when another gap needs a repair first (the rest stays
    /// held). `deliver` is what to deliver now, in order.
    pub(crate) fn release(&mut self) -> Result<Vec<Held>, (Vec<Held>, StreamPosition, u64)> {
        let held = self.held.take().unwrap_or_default();
        let mut deliver = Vec::new();
        let mut rest = held.into_iter();
        while let Some(item) = rest.next() {
            let Some(offset) = item.publication.offset else {
                deliver.push(item);
                continue;
            };
            match self.next(offset, &item.epoch) {
                Admit::Deliver => deliver.push(item),
                Admit::Skip | Admit::Held => {}
                Admit::Repair { since, until } => {
                    let mut still = vec![item];
                    still.extend(rest);
                    self.held = Some(still);
                    return Err((deliver, since, until));
                }
            }
        }
        Ok(deliver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clarion_wire::Data;

    fn publication(offset: u64) -> Publication {
        Publication {
            offset: Some(offset),
            data: Data::from_json("1").unwrap(),
            info: None,
        }
    }

    fn at(offset: u64, epoch: &str) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.to_owned(),
        }
    }

    fn admit(cursor: &mut StreamCursor, offset: u64, epoch: &str) -> Admit {
        cursor.admit(&publication(offset), offset, epoch)
    }

    #[test]
    fn next_offsets_are_delivered_and_old_ones_skipped() {
        let mut cursor = StreamCursor::new(&at(3, "e"));
        assert_eq!(admit(&mut cursor, 4, "e"), Admit::Deliver);
        assert_eq!(admit(&mut cursor, 4, "e"), Admit::Skip);
        assert_eq!(admit(&mut cursor, 2, "e"), Admit::Skip);
        assert_eq!(admit(&mut cursor, 5, "e"), Admit::Deliver);
        assert_eq!(cursor.position(), at(5, "e"));
    }

    #[test]
    fn a_jump_holds_until_released() {
        let mut cursor = StreamCursor::new(&at(3, "e"));
        let repair = Admit::Repair {
            since: at(3, "e"),
            until: 6,
        };
        assert_eq!(admit(&mut cursor, 6, "e"), repair);
        assert_eq!(admit(&mut cursor, 7, "e"), Admit::Held);
        assert!(cursor.is_repairing());
        cursor.repaired(4);
        cursor.repaired(5);
        let released = cursor.release().unwrap();
        let offsets: Vec<_> = released.iter().map(|h| h.publication.offset).collect();
        assert_eq!(offsets, [Some(6), Some(7)]);
        assert!(!cursor.is_repairing());
        assert_eq!(admit(&mut cursor, 8, "e"), Admit::Deliver);
    }

    #[test]
    fn a_second_gap_among_the_held_keeps_the_rest_held() {
        let mut cursor = StreamCursor::new(&at(1, "e"));
        admit(&mut cursor, 3, "e");
        admit(&mut cursor, 6, "e");
        admit(&mut cursor, 7, "e");
        cursor.repaired(2);
        let (deliver, since, until) = cursor.release().unwrap_err();
        assert_eq!(deliver.len(), 1);
        assert_eq!((since, until), (at(3, "e"), 6));
        assert!(cursor.is_repairing());
        cursor.repaired(5);
        assert_eq!(cursor.release().unwrap().len(), 2);
    }

    #[test]
    fn a_new_epoch_is_delivered_and_followed() {
        let mut cursor = StreamCursor::new(&at(9, "old"));
        assert_eq!(admit(&mut cursor, 1, "new"), Admit::Deliver);
        assert_eq!(admit(&mut cursor, 2, "new"), Admit::Deliver);
    }

    #[test]
    fn giving_up_on_a_gap_resumes_at_the_held_one() {
        let mut cursor = StreamCursor::new(&at(1, "e"));
        admit(&mut cursor, 5, "e");
        cursor.skip_gap();
        assert_eq!(cursor.release().unwrap().len(), 1);
        assert_eq!(cursor.position(), at(5, "e"));
    }

    #[test]
    fn a_reset_to_a_new_epoch_drops_what_was_held_of_the_old_one() {
        let mut cursor = StreamCursor::new(&at(1, "old"));
        admit(&mut cursor, 5, "old");
        admit(&mut cursor, 1, "new");
        cursor.reset(&at(0, "new"));
        let released = cursor.release().unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].epoch, "new");
    }

    #[test]
    fn a_resync_holds_live_delivery_once() {
        let mut cursor = StreamCursor::new(&at(2, "e"));
        assert_eq!(cursor.start_resync(), Some(at(2, "e")));
        assert_eq!(cursor.start_resync(), None);
        assert_eq!(admit(&mut cursor, 3, "e"), Admit::Held);
        cursor.reset(&at(10, "e"));
        assert!(
            cursor.release().unwrap().is_empty(),
            "3 is before the reset"
        );
    }
}
