//go:build !linux

package main

// keepAgentLog does nothing off Linux: nodes that keep a log folder (the
// docker driver's containers) run Linux.
func keepAgentLog(string) (stop func(), err error) { return func() {}, nil }
