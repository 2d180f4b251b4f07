package kvm

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"minik.dev/minik/drivers"
)

// imageServerPort is where the host's image server listens on the
// cluster network's gateway (the host's own address there).
const imageServerPort = 5000

// ImageServerCommand is the command that serves this machine's engine
// images on addr, keeping its exports in dir (the CLI's `minik image
// serve`); the driver runs it for as long as the cluster runs.
type ImageServerCommand func(addr, dir string) *exec.Cmd

// imageServerAddress is the server's address on the cluster's network.
func imageServerAddress(subnet string) (string, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return "", fmt.Errorf("cluster subnet %q: %w", subnet, err)
	}
	return net.JoinHostPort(p.Masked().Addr().Next().String(), strconv.Itoa(imageServerPort)), nil
}

func imageServerFiles(n drivers.Node) (dir, pidFile string) {
	dir = filepath.Join(n.ProfileDir, "image-server")
	return dir, filepath.Join(dir, "pid")
}

// runningImageServer is the pid of the cluster's server when it runs.
func runningImageServer(pidFile, addr string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	// The pid is the server's only while its command line says so.
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte(addr)) || !bytes.Contains(cmdline, []byte("serve")) {
		return 0, false
	}
	return pid, true
}

// ensureImageServer starts the cluster's image server unless it runs.
func (d *Driver) ensureImageServer(n drivers.Node) error {
	if d.imageServer == nil {
		return nil
	}
	addr, err := imageServerAddress(n.Subnet)
	if err != nil {
		return err
	}
	dir, pidFile := imageServerFiles(n)
	if _, ok := runningImageServer(pidFile, addr); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("image server: %w", err)
	}
	log, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("image server: %w", err)
	}
	defer log.Close()
	cmd := d.imageServer(addr, dir)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own session: it outlives the minik command that starts it.
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the image server: %w", err)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("image server: %w", err)
	}
	// Until it has exec'd, the child shows this process's command line:
	// wait for its own, so the next check finds it.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, ok := runningImageServer(pidFile, addr); ok {
			break
		}
	}
	return cmd.Process.Release()
}

// stopImageServer stops the cluster's image server and removes its exports.
func (d *Driver) stopImageServer(n drivers.Node) error {
	addr, err := imageServerAddress(n.Subnet)
	if err != nil {
		return nil
	}
	dir, pidFile := imageServerFiles(n)
	if pid, ok := runningImageServer(pidFile, addr); ok {
		terminate(pid, false)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, ok := runningImageServer(pidFile, addr); !ok {
				break
			}
			if time.Now().After(deadline) {
				terminate(pid, true)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image server: %w", err)
	}
	return nil
}
