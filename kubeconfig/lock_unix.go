//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package kubeconfig

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lock takes an exclusive flock on path+".lock" so concurrent minik processes
// serialise their read-modify-write of the kubeconfig. The kernel drops the
// lock if the process dies, so a crash never wedges later runs.
//
// The lock file is removed on unlock because kubectl uses the same name as an
// O_EXCL lock and would refuse to edit the kubeconfig while it exists.
// Removing it means a waiter may lock an inode that is no longer linked;
// checking that the locked file is still the one at the path catches that.
func lock(path string) (unlock func(), err error) {
	name := path + ".lock"
	deadline := time.Now().Add(lockTimeout)
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, fileMode)
		if err != nil {
			return nil, fmt.Errorf("lock kubeconfig: %w", err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if stillLinked(f, name) {
				return func() {
					// Best effort: the kernel releases the lock on close anyway.
					_ = os.Remove(name)
					_ = f.Close()
				}, nil
			}
			_ = f.Close()
			continue
		}
		_ = f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return nil, fmt.Errorf("lock kubeconfig: flock %s: %w", name, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock kubeconfig: %s still held after %s by another minik process", name, lockTimeout)
		}
		time.Sleep(lockRetry)
	}
}

func stillLinked(f *os.File, name string) bool {
	held, err := f.Stat()
	if err != nil {
		return false
	}
	current, err := os.Stat(name)
	return err == nil && os.SameFile(held, current)
}
