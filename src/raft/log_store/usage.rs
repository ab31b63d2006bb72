//! How big the log is, in bytes: the accessors the node uses to bound the
//! log by size (docs/log-bounds.md). Kept apart from the write path: the
//! store's trait methods only *report* what they appended, truncated or
//! purged once it is visible, and this module keeps the books.
//!
//! * [`Ledger`]: encoded bytes per live log entry, as running totals, so
//!   "bytes after index i" and "where to purge to keep K bytes" are binary
//!   searches, not scans.
//! * [`LogUsage::lmdb_used_bytes`]: pages the env really holds (B-tree and
//!   overflow pages of every database, free pages excluded), which is what
//!   an `MDB_MAP_FULL` is about; encoded bytes underestimate it (an 8 KB
//!   value takes three 4 KB overflow pages).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Shared;

/// Encoded bytes of every live entry, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// `(index, running total of bytes up to and including this entry)`.
    entries: VecDeque<(u64, u64)>,
    /// Running total before the first live entry.
    base: u64,
    /// The largest entry appended since open.
    largest: u64,
}

impl Ledger {
    fn end(&self) -> u64 {
        self.entries.back().map_or(self.base, |e| e.1)
    }

    /// Running total up to and including `index` (`base` before the first).
    fn total_at(&self, index: u64) -> u64 {
        match self.entries.partition_point(|e| e.0 <= index) {
            0 => self.base,
            n => self.entries[n - 1].1,
        }
    }

    /// Entry `index` of `len` encoded bytes is now in the log. An index at
    /// or below the last one replaces the tail from there (a truncation
    /// openraft did not announce separately).
    pub(crate) fn appended(&mut self, index: u64, len: u64) {
        self.truncated_from(index);
        self.largest = self.largest.max(len);
        let end = self.end() + len;
        self.entries.push_back((index, end));
    }

    /// Entries `from..` were deleted.
    pub(crate) fn truncated_from(&mut self, from: u64) {
        while self.entries.back().is_some_and(|e| e.0 >= from) {
            self.entries.pop_back();
        }
    }

    /// Entries `..=upto` were deleted.
    pub(crate) fn purged_upto(&mut self, upto: u64) {
        while let Some(&(index, total)) = self.entries.front() {
            if index > upto {
                break;
            }
            self.base = total;
            self.entries.pop_front();
        }
    }

    /// The largest entry appended since open, encoded.
    pub(crate) fn largest(&self) -> u64 {
        self.largest
    }

    /// Encoded bytes of all live entries.
    pub(crate) fn total(&self) -> u64 {
        self.end() - self.base
    }

    /// Encoded bytes of the live entries with an index above `index`.
    pub(crate) fn bytes_after(&self, index: u64) -> u64 {
        self.end() - self.total_at(index)
    }

    /// The index to purge up to (inclusive) so that at most `keep` bytes of
    /// entries at or below `upto_max` stay; `None` if they already fit.
    pub(crate) fn purge_point(&self, upto_max: u64, keep: u64) -> Option<u64> {
        let kept = self.total_at(upto_max) - self.base;
        if kept <= keep {
            return None;
        }
        // Purge the shortest prefix whose removal leaves <= keep bytes.
        let target = self.total_at(upto_max) - keep;
        let n = self.entries.partition_point(|e| e.1 < target);
        self.entries.get(n).map(|e| e.0).filter(|i| *i <= upto_max)
    }
}

/// Read-only view of the store's size, shared with the node's tasks.
#[derive(Clone)]
pub struct LogUsage {
    pub(super) shared: Arc<Shared>,
    pub(super) ledger: Arc<Mutex<Ledger>>,
}

/// One reading of [`LogUsage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageSample {
    /// Bytes of LMDB pages in use (all databases, free pages excluded).
    pub lmdb_used_bytes: u64,
    /// LMDB page size.
    pub page_size: u64,
}

impl LogUsage {
    /// The LMDB map size the env was opened with.
    pub fn map_size(&self) -> u64 {
        self.shared.map_size as u64
    }

    /// Encoded bytes of the live entries with an index above `index`.
    pub fn bytes_after(&self, index: u64) -> u64 {
        self.ledger.lock().bytes_after(index)
    }

    /// Encoded bytes of the live log, of the largest entry appended since
    /// open, and of the entries after `index`, read at one instant.
    pub fn ledger_view(&self, index: u64) -> (u64, u64, u64) {
        let l = self.ledger.lock();
        (l.total(), l.largest(), l.bytes_after(index))
    }

    /// See [`Ledger::purge_point`].
    pub fn purge_point(&self, upto_max: u64, keep: u64) -> Option<u64> {
        self.ledger.lock().purge_point(upto_max, keep)
    }

    /// LMDB pages in use now (one short read transaction).
    pub fn sample(&self) -> io::Result<UsageSample> {
        let s = &self.shared;
        let rtxn = s.read_txn()?;
        let main = s.env.unnamed_database_stat();
        let logs = s.logs.stat(&rtxn).map_err(|e| s.io_err(e))?;
        let meta = s.meta.stat(&rtxn).map_err(|e| s.io_err(e))?;
        // Two meta pages head every LMDB file.
        let pages =
            |st: &heed::DatabaseStat| (st.branch_pages + st.leaf_pages + st.overflow_pages) as u64;
        let page_size = u64::from(main.page_size);
        Ok(UsageSample {
            lmdb_used_bytes: (2 + pages(&main) + pages(&logs) + pages(&meta)) * page_size,
            page_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Ledger;

    fn ledger(sizes: &[(u64, u64)]) -> Ledger {
        let mut l = Ledger::default();
        for (i, n) in sizes {
            l.appended(*i, *n);
        }
        l
    }

    #[test]
    fn totals_follow_append_truncate_purge() {
        let mut l = ledger(&[(1, 10), (2, 20), (3, 30), (4, 40)]);
        assert_eq!(l.total(), 100);
        assert_eq!(l.largest(), 40);
        assert_eq!(l.bytes_after(0), 100);
        assert_eq!(l.bytes_after(2), 70);
        assert_eq!(l.bytes_after(4), 0);
        assert_eq!(l.bytes_after(9), 0);
        l.truncated_from(4);
        assert_eq!(l.total(), 60);
        // Overwriting index 3 replaces it (and anything after).
        l.appended(3, 5);
        assert_eq!(l.total(), 35);
        l.purged_upto(1);
        assert_eq!(l.total(), 25);
        assert_eq!(l.bytes_after(0), 25);
        assert_eq!(l.bytes_after(2), 5);
        l.purged_upto(3);
        assert_eq!(l.total(), 0);
        l.appended(4, 7);
        assert_eq!(l.total(), 7);
        assert_eq!(l.bytes_after(3), 7);
    }

    #[test]
    fn purge_point_keeps_at_most_the_budget() {
        let l = ledger(&[(5, 10), (6, 20), (7, 30), (8, 40), (9, 1000)]);
        // Up to 8: 100 bytes; keeping 100 or more needs no purge.
        assert_eq!(l.purge_point(8, 100), None);
        // Keep <= 70 of 5..=8: drop 5 and 6 (30 bytes) -> purge up to 6.
        assert_eq!(l.purge_point(8, 70), Some(6));
        assert_eq!(l.purge_point(8, 69), Some(7));
        // Keep nothing: purge everything up to 8, never past it.
        assert_eq!(l.purge_point(8, 0), Some(8));
        assert_eq!(l.purge_point(4, 0), None);
    }
}
