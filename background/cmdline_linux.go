package background

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// commandLine is the process's arguments while it runs.
func commandLine(pid int) ([]string, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00"), true
}
