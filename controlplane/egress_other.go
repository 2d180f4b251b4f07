//go:build !linux

package controlplane

import (
	"fmt"
	"os"
	"path/filepath"

	"minik.dev/minik/nodeconfig"
)

// egressSocket lives in the temp folder, whose path is short enough for a
// unix socket; a stale one from a crashed node is removed first.
func egressSocket(cfg *nodeconfig.Config) string {
	p := filepath.Join(os.TempDir(), fmt.Sprintf("minik-egress-%s-%d.sock", cfg.Cluster, os.Getpid()))
	_ = os.Remove(p)
	return p
}
