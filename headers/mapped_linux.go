//go:build linux

package headers

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// dropMappedPages takes the pages of bbolt's read-only memory map out of
// this process's resident set. They are clean pages of the file: the next
// read faults them back in from the page cache. Without this, every page
// a long sync ever read stays resident (15 MiB for a pruned store, most of
// the daemon's RSS), although the kernel could reclaim it at any time.
func (s *Store) dropMappedPages() {
	s.db.View(func(tx *bolt.Tx) error {
		// A read transaction holds bbolt's mmap lock: the map cannot be
		// moved or unmapped while we advise on it.
		syscall.Syscall(syscall.SYS_MADVISE, s.db.Info().Data, uintptr(tx.Size()), syscall.MADV_DONTNEED)
		return nil
	})
}
