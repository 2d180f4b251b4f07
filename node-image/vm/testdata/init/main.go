// Command init is the VM node image tests' init program: it does what a
// VM node's init does first (package guest), reports on the console what
// it found, and powers the VM off. Given an address on the kernel command
// line (minik.ip=...), it configures the network and answers HTTP on :8080
// ("hello from HOSTNAME"; /poweroff ends it) for up to two minutes.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

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

	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	nw, ok, err := guest.ParseCmdline(string(cmdline))
	if err != nil || !ok {
		return err
	}
	// The NIC appears once virtio_net has probed it.
	var iface string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if iface, err = guest.ConfigureNetwork(nw); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return err
	}
	fmt.Printf("minik-init: network %s %s\n", iface, nw.Address)
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		host, _ := os.Hostname()
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	mux.HandleFunc("/poweroff", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "bye")
		close(done)
	})
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.ListenAndServe() }()
	select {
	case <-done:
		time.Sleep(100 * time.Millisecond) // let the answer leave
	case <-time.After(2 * time.Minute):
		fmt.Println("minik-init: nobody asked to power off")
	}
	return nil
}
