// Package guest is the inside of a VM node image: what its init program
// does first, as process 1 of the initramfs. It mounts the kernel's
// filesystems, puts the console on the standard streams, loads the modules
// the image lists (package vmimage writes the list) and powers the VM off.
package guest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Setup mounts /proc, /sys, /dev (devtmpfs), /run, /tmp and the cgroup v2
// hierarchy (which runc puts containers in), and points
// stdin, stdout and stderr at the console: the kernel could not open one
// before /dev existed.
func Setup() error {
	mounts := []struct{ source, target, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/run", "tmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
		if err := unix.Mount(m.source, m.target, m.fstype, unix.MS_NOSUID, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	console, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open the console: %w", err)
	}
	for fd := 0; fd <= 2; fd++ {
		if err := unix.Dup3(int(console.Fd()), fd, 0); err != nil {
			return fmt.Errorf("open the console: %w", err)
		}
	}
	return nil
}

// LoadModules loads the modules listed in the file at list (one path per
// line, each after its dependencies) and returns how many it loaded; one
// already loaded counts as loaded.
func LoadModules(list string) (int, error) {
	f, err := os.Open(list)
	if err != nil {
		return 0, fmt.Errorf("load modules: %w", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path := strings.TrimSpace(sc.Text())
		if path == "" {
			continue
		}
		if err := loadModule(path); err != nil {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

// PowerOff flushes the disks and turns the VM off.
func PowerOff() error {
	unix.Sync()
	return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
