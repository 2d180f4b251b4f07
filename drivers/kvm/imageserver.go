package kvm

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"minik.dev/minik/background"
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

// ensureImageServer starts the cluster's image server unless it runs. Its
// address, an argument of its command line, is how it is found again.
func (d *Driver) ensureImageServer(n drivers.Node) error {
	if d.imageServer == nil {
		return nil
	}
	addr, err := imageServerAddress(n.Subnet)
	if err != nil {
		return err
	}
	dir, pidFile := imageServerFiles(n)
	if _, ok := background.Running(pidFile, addr); ok {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("image server: %w", err)
	}
	if err := background.Start(d.imageServer(addr, dir), pidFile, filepath.Join(dir, "server.log"), addr); err != nil {
		return fmt.Errorf("image server: %w", err)
	}
	return nil
}

// stopImageServer stops the cluster's image server and removes its exports.
func (d *Driver) stopImageServer(n drivers.Node) error {
	addr, err := imageServerAddress(n.Subnet)
	if err != nil {
		return nil
	}
	dir, pidFile := imageServerFiles(n)
	if err := background.Stop(pidFile, addr, 5*time.Second); err != nil {
		return fmt.Errorf("image server: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image server: %w", err)
	}
	return nil
}
