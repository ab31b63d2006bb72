//! LMDB (heed) raft log store. (being written)
