//go:build !linux

package main

import (
	"fmt"
	"os"
)

// vmInit: VM nodes run Linux.
func vmInit() {
	fmt.Fprintln(os.Stderr, "minik-node: runs as a VM's init on Linux only")
	os.Exit(1)
}
