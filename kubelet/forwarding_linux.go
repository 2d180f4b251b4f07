package kubelet

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// allowPodForwarding lets other machines' traffic be forwarded to the
// pods on podCIDR: the engine's own rules forward only what a published
// port asks for, and hosts where it enabled forwarding drop the rest.
// The rule goes in DOCKER-USER, the chain the engine leaves to its users,
// through the same iptables command the engine uses.
func allowPodForwarding(ctx context.Context, podCIDR string) error {
	return iptablesRule(ctx, "-I", podCIDR)
}

// forbidPodForwarding removes the rule allowPodForwarding made.
func forbidPodForwarding(ctx context.Context, podCIDR string) error {
	return iptablesRule(ctx, "-D", podCIDR)
}

func iptablesRule(ctx context.Context, op, podCIDR string) error {
	rule := []string{"DOCKER-USER", "-d", podCIDR, "-m", "comment", "--comment", "minik joined node pods", "-j", "ACCEPT"}
	check := exec.CommandContext(ctx, "iptables", append([]string{"-w", "-C"}, rule...)...)
	present := check.Run() == nil
	if present == (op == "-I") {
		return nil
	}
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", op}, rule...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s %s: %w: %s", op, strings.Join(rule, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
