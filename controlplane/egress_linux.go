package controlplane

import (
	"fmt"
	"os"

	"minik.dev/minik/nodeconfig"
)

// egressSocket is an abstract unix socket: no path length limit, and the
// kernel removes it when the process ends.
func egressSocket(cfg *nodeconfig.Config) string {
	return fmt.Sprintf("@minik-egress-%s-%d", cfg.Cluster, os.Getpid())
}
