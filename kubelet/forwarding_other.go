//go:build !linux

package kubelet

import "context"

// allowPodForwarding has nothing to do where the engine runs in a VM of
// its own (Docker Desktop): no machine's traffic reaches its bridges.
func allowPodForwarding(context.Context, string) error { return nil }

func forbidPodForwarding(context.Context, string) error { return nil }
