//! The stamped requests in flight in one VM, by stream context id, from
//! request headers to the end of the stream.
//!
//! Context ids are handed out in sequence, so a request is kept in the slot
//! its id picks (no hashing); one whose slot is still taken by an older
//! stream (a long one, or more streams in flight than slots) goes to an
//! overflow map. The overflow is bounded: past [`MAX_OVERFLOW`] records (streams
//! whose end never came) it is emptied.

use crate::fasthash::FastMap;

/// Slots (a power of two).
pub const SLOTS: usize = 1024;
/// Records kept in the overflow at most.
pub const MAX_OVERFLOW: usize = 1 << 16;

/// Records of type `T` by context id.
#[derive(Debug)]
pub struct InFlight<T> {
    slots: Vec<Option<(u32, T)>>,
    overflow: FastMap<u32, T>,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> InFlight<T> {
    /// Empty; the slots are made on the first insert (so a VM's state can
    /// be a `const`, with no lazy initialisation per access).
    pub const fn new() -> Self {
        InFlight {
            slots: Vec::new(),
            overflow: FastMap::with_hasher(std::hash::BuildHasherDefault::new()),
        }
    }

    fn slot(id: u32) -> usize {
        id as usize & (SLOTS - 1)
    }

    /// Keep `record` for stream `id` (replacing one kept for the same id).
    pub fn insert(&mut self, id: u32, record: T) {
        if self.slots.is_empty() {
            self.slots = std::iter::repeat_with(|| None).take(SLOTS).collect();
        }
        let Some(slot) = self.slots.get_mut(Self::slot(id)) else {
            return;
        };
        match slot {
            Some((held, _)) if *held != id => {
                if self.overflow.len() >= MAX_OVERFLOW {
                    self.overflow.clear();
                }
                self.overflow.insert(id, record);
            }
            _ => *slot = Some((id, record)),
        }
    }

    /// The record of stream `id`, taken out.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let slot = self.slots.get_mut(Self::slot(id))?;
        if matches!(slot, Some((held, _)) if *held == id) {
            return slot.take().map(|(_, record)| record);
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.remove(&id)
    }

    /// Records kept (walks every slot: for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count() + self.overflow.len()
    }

    /// No record kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_once_by_id() {
        let mut f = InFlight::default();
        for id in 1..=3000u32 {
            f.insert(id, id * 10);
        }
        // 3000 in flight over 1024 slots: the rest overflowed, none lost.
        assert_eq!(f.len(), 3000);
        for id in (1..=3000u32).rev() {
            assert_eq!(f.remove(id), Some(id * 10), "{id}");
            assert_eq!(f.remove(id), None, "taken twice: {id}");
        }
        assert!(f.is_empty());
        assert_eq!(f.remove(7), None);
    }

    #[test]
    fn a_long_stream_keeps_its_slot_while_ids_wrap_past_it() {
        let mut f = InFlight::default();
        f.insert(5, "long");
        for id in 6..6 + 4 * SLOTS as u32 {
            f.insert(id, "short");
            assert_eq!(f.remove(id), Some("short"));
        }
        assert_eq!(f.remove(5), Some("long"));
        // The same id again replaces its record.
        f.insert(9, "a");
        f.insert(9, "b");
        assert_eq!((f.remove(9), f.len()), (Some("b"), 0));
    }

    #[test]
    fn the_overflow_is_bounded() {
        let mut f = InFlight::default();
        // Streams whose end never comes, all colliding with slot 0's holder.
        f.insert(0, 0);
        for i in 1..=(MAX_OVERFLOW as u32 + 10) {
            f.insert(i * SLOTS as u32, i);
        }
        assert!(f.len() <= MAX_OVERFLOW + SLOTS);
        assert_eq!(f.remove(0), Some(0));
        assert_eq!(
            f.remove((MAX_OVERFLOW as u32 + 10) * SLOTS as u32),
            Some(MAX_OVERFLOW as u32 + 10)
        );
    }
}
