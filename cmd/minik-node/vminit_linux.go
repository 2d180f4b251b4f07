package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	vmimage "minik.dev/minik/node-image/vm"
	"minik.dev/minik/node-image/vm/guest"
)

// Kernel command line keys the kvm driver sets besides guest.Network's.
const (
	// cmdlineConfig is the node config's path inside the VM.
	cmdlineConfig = "minik.config"
	// cmdlineDisk is the data disk's device and cmdlineData where it is
	// mounted: the node's state across stop and start.
	cmdlineDisk = "minik.disk"
	cmdlineData = "minik.data"
)

// vmInit is minik-node as process 1 of a VM node: it prepares the machine,
// runs the node until the VM's power button is pressed or the node fails,
// and powers the VM off. What went wrong is on the serial console, which
// the driver keeps as the node's log.
func vmInit() {
	if err := bootVM(); err != nil {
		fmt.Fprintln(os.Stderr, "minik-node:", err)
	}
	klog.Flush()
	if err := guest.PowerOff(); err != nil {
		fmt.Fprintln(os.Stderr, "minik-node: power off:", err)
	}
}

func bootVM() error {
	if err := guest.Setup(); err != nil {
		return err
	}
	// The kernel starts init with no PATH; the node runs runc by name.
	if os.Getenv("PATH") == "" {
		_ = os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if _, err := guest.LoadModules(vmimage.ModulesOrderPath); err != nil {
		return err
	}
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	cmdline := string(raw)
	nw, ok, err := guest.ParseCmdline(cmdline)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the kernel command line gives no minik.ip: this initramfs boots only as a minik VM node")
	}
	// The NIC appears once virtio_net has probed it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err = guest.ConfigureNetwork(nw); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	configPath, disk, data := guest.CmdlineValue(cmdline, cmdlineConfig), guest.CmdlineValue(cmdline, cmdlineDisk), guest.CmdlineValue(cmdline, cmdlineData)
	if configPath == "" || disk == "" || data == "" {
		return fmt.Errorf("the kernel command line needs %s, %s and %s", cmdlineConfig, cmdlineDisk, cmdlineData)
	}
	mountCtx, cancelMount := context.WithTimeout(context.Background(), 30*time.Second)
	err = guest.MountDisk(mountCtx, disk, data)
	cancelMount()
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pressed, err := guest.PowerButton(ctx)
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-pressed:
			klog.InfoS("power button pressed: stopping the node")
			cancel()
		case <-ctx.Done():
		}
	}()
	runErr := runNode(ctx, configPath)
	return errors.Join(runErr, guest.Unmount(data))
}
