package hyperv

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// PowerShell runs scripts with Windows PowerShell (5.1, part of every
// Windows the Hyper-V module runs on).
type PowerShell struct {
	// Path is powershell.exe; empty finds it on PATH.
	Path string
}

// DefaultExecutor is Windows PowerShell.
func DefaultExecutor() Executor { return PowerShell{} }

// Run runs the script read from standard input, with no profile (the
// user's could print or fail) and no prompts.
func (p PowerShell) Run(ctx context.Context, script string) ([]byte, error) {
	path := p.Path
	if path == "" {
		path = "powershell.exe"
	}
	cmd := exec.CommandContext(ctx, path, "-NoProfile", "-NonInteractive", "-Command", "-")
	cmd.Stdin = strings.NewReader(script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", path, err, tail(bytes.TrimSpace(stderr.Bytes()), 800))
	}
	return stdout.Bytes(), nil
}
