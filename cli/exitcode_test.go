package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"minik.dev/minik/cluster"
	"minik.dev/minik/drivers"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code int
	}{
		{"anything else", errors.New("boom"), ExitError},
		{"invalid option", fmt.Errorf("start dev: %w", &cluster.InvalidOptionError{Field: "Nodes"}), ExitBadInput},
		{"unparsable flag", &usageError{err: errors.New("bad flag")}, ExitBadInput},
		{"unknown driver", fmt.Errorf("start dev: %w %q", drivers.ErrUnknownDriver, "kvm"), ExitBadInput},
		{"unknown node", fmt.Errorf("logs: %w", cluster.ErrNodeNotFound), ExitBadInput},
		{"unhealthy driver", fmt.Errorf("start dev: %w", &drivers.HealthError{Driver: "docker", Problem: "no engine"}), ExitDriverUnavailable},
		{"no usable driver", fmt.Errorf("select driver: none is usable: %w", errors.Join(&drivers.HealthError{Driver: "docker"}, &drivers.HealthError{Driver: "process"})), ExitDriverUnavailable},
		{"wait ran out", fmt.Errorf("start dev: wait for cluster: %w after 5m0s: node dev is not Ready", cluster.ErrWaitTimeout), ExitTimeout},
		{"wait ran out, rollback failed too", fmt.Errorf("%w; then rolling back failed: %w", fmt.Errorf("wait: %w", cluster.ErrWaitTimeout), errors.New("engine gone")), ExitTimeout},
		{"explicit", &exitError{code: 7, err: errors.New("x")}, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.code, exitCode(tc.err))
		})
	}
}

func TestStartExitCodes(t *testing.T) {
	cases := []struct {
		name   string
		health error
		args   []string
		code   int
		stderr string
	}{
		{"bad input", nil, []string{"start", "--nodes", "0"}, ExitBadInput, "invalid --nodes 0"},
		{"unparsable flag", nil, []string{"start", "--nodes", "many"}, ExitBadInput, `invalid argument "many" for "--nodes" flag`},
		{"unknown driver", nil, []string{"start", "--driver", "kvm"}, ExitBadInput, `unknown driver "kvm"`},
		{"driver unavailable", &drivers.HealthError{Driver: "fake", Problem: "no engine answers"}, []string{"start"}, ExitDriverUnavailable,
			"driver fake is not usable: no engine answers"},
		{"named driver unavailable", &drivers.HealthError{Driver: "fake", Problem: "no engine answers"}, []string{"start", "--driver", "fake"}, ExitDriverUnavailable,
			"driver fake is not usable: no engine answers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.driver.HealthErr = tc.health
			r := h.run(tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.stderr)
		})
	}
}
