package cluster

import "golang.org/x/sys/windows"

// freeBytes is what this user may still write on path's disk.
func freeBytes(path string) (int64, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, err
	}
	var free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, nil, nil); err != nil {
		return 0, err
	}
	return int64(free), nil
}

// writable is not checked on Windows: its permissions are ACLs, and a
// refusal shows when the state is written.
func writable(string) error { return nil }
