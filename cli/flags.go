package cli

import (
	"errors"
	"fmt"

	"minik.dev/minik/cluster"
)

// optionFlags names the flag that sets each option the cluster library
// checks (cluster.InvalidOptionError.Field), so that an invalid value is
// reported in the words the user typed it with.
var optionFlags = map[string]string{
	"Nodes":                  "--nodes",
	"APIServerPort":          "--apiserver-port",
	"Wait":                   "--wait",
	"CPUMillis":              "--cpus",
	"MemoryBytes":            "--memory",
	"MaxPods":                "--max-pods",
	"NodeMonitorGracePeriod": "--node-monitor-grace-period",
	"PodEvictionTimeout":     "--pod-eviction-timeout",
	"Role":                   "--role",
	"ManifestsDir":           "--manifests",
	"ListenAddress":          "--listen-address",
	"TTL":                    "--ttl",
	"Tail":                   "--tail",
	"VMKernel":               "--vm-kernel",
	"VMAccel":                "--vm-accel",
	"VMFirmware":             "--vm-firmware",
	"Autoscale":              "--autoscale",
	"ScaleDownAfter":         "--autoscale-idle",
}

// invalidFlagError is a cluster.InvalidOptionError told in flag names:
// invalid --nodes 0: a cluster needs at least 1 node.
type invalidFlagError struct {
	flag, value string
	err         *cluster.InvalidOptionError
}

func (e *invalidFlagError) Error() string {
	return fmt.Sprintf("invalid %s %s: %s", e.flag, e.value, e.err.Reason)
}

func (e *invalidFlagError) Unwrap() error { return e.err }

// asFlagError returns err as an *invalidFlagError when it is about an
// option a flag sets, else nil. A non-empty typed replaces the library's
// rendering of the value with the text the user typed.
func asFlagError(err error, typed string) error {
	var invalid *cluster.InvalidOptionError
	if !errors.As(err, &invalid) {
		return nil
	}
	flag, ok := optionFlags[invalid.Field]
	if !ok {
		return nil
	}
	value := invalid.Value
	if typed != "" {
		value = typed
	}
	return &invalidFlagError{flag: flag, value: value, err: invalid}
}

// commandError is err from the library as a command reports it: an invalid
// option in the words of its flag, anything else after what failed
// ("start dev: ...").
func commandError(err error, format string, args ...any) error {
	if fe := asFlagError(err, ""); fe != nil {
		return fe
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
