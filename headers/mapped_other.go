//go:build !linux

package headers

// dropMappedPages is a no-op where it is not known to be safe.
func (s *Store) dropMappedPages() {}
