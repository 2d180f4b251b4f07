// Command init is the vmimage boot test's init program: it does what a VM
// node's init does first (package guest), reports on the console what it
// found, and powers the VM off.
package main

import (
	"fmt"
	"os"
	"strings"

	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/guest"
)

func main() {
	if err := run(); err != nil {
		fmt.Println("minik-init: error:", err)
	}
	_ = guest.PowerOff()
}

func run() error {
	if err := guest.Setup(); err != nil {
		return err
	}
	n, err := guest.LoadModules(vmimage.ModulesOrderPath)
	if err != nil {
		return err
	}
	fmt.Printf("minik-init: loaded %d modules\n", n)
	data, err := os.ReadFile("/proc/modules")
	if err != nil {
		return err
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		names = append(names, strings.Fields(l)[0])
	}
	fmt.Printf("minik-init: /proc/modules: %s\n", strings.Join(names, " "))
	uname, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Printf("minik-init: kernel %s\n", strings.TrimSpace(string(uname)))
	return nil
}
