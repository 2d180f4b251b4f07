//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package kubeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lock creates path+".lock" exclusively, the same convention kubectl uses, so
// minik and kubectl exclude each other where flock is unavailable. A crashed
// holder leaves the file behind; the timeout error says how to recover.
func lock(path string) (unlock func(), err error) {
	name := path + ".lock"
	deadline := time.Now().Add(lockTimeout)
	for {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
		if err == nil {
			_ = f.Close()
			return func() { _ = os.Remove(name) }, nil
		}
		// Windows reports a file that is being deleted as access denied.
		if !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("lock kubeconfig: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock kubeconfig: %s still exists after %s (%v); remove it if no minik or kubectl is running",
				name, lockTimeout, err)
		}
		time.Sleep(lockRetry)
	}
}
