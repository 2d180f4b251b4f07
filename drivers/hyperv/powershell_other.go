//go:build !windows

package hyperv

import (
	"context"
	"errors"
)

// ErrNotWindows is what the default executor returns off Windows.
var ErrNotWindows = errors.New("Hyper-V runs only on Windows")

type noPowerShell struct{}

// DefaultExecutor off Windows runs nothing.
func DefaultExecutor() Executor { return noPowerShell{} }

func (noPowerShell) Run(context.Context, string) ([]byte, error) { return nil, ErrNotWindows }
