//go:build !linux

package background

import (
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// commandLine is the process's command line while it runs, split at
// spaces, from ps (or, on Windows, from PowerShell's process list): the
// markers minik looks for hold no space.
func commandLine(pid int) ([]string, bool) {
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.Command("powershell.exe", "-NoProfile", "-NonInteractive", "-Command",
			"(Get-CimInstance Win32_Process -Filter 'ProcessId = "+strconv.Itoa(pid)+"').CommandLine")
	} else {
		cmd = exec.Command("ps", "-o", "command=", "-p", strconv.Itoa(pid))
	}
	out, err := cmd.Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		return nil, false
	}
	return strings.Fields(string(out)), true
}
