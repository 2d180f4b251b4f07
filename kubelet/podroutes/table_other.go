//go:build !linux

package podroutes

import (
	"errors"
	"runtime"
)

// unsupportedTable fails: only Linux's routing table is kept so far.
type unsupportedTable struct{}

// NewTable is this machine's main routing table.
func NewTable() Table { return unsupportedTable{} }

var errUnsupported = errors.New("routes to joined nodes' pods are made on Linux only, not on " + runtime.GOOS)

func (unsupportedTable) Replace(Route) error { return errUnsupported }
func (unsupportedTable) Delete(Route) error  { return nil }
