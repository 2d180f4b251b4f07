//go:build !linux

package cluster

// totalMemory is unknown here; callers fall back to a default.
func totalMemory() int64 { return 0 }
