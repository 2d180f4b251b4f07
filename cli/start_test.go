package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCPUs(t *testing.T) {
	cases := map[string]int64{"": 0, "2": 2000, "1500m": 1500, "0.5": 500}
	for in, want := range cases {
		got, err := parseCPUs(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"lots", "50m", "-1"} {
		_, err := parseCPUs(bad)
		assert.ErrorContains(t, err, "invalid --cpus", bad)
	}
}

func TestParseMemory(t *testing.T) {
	cases := map[string]int64{"": 0, "4Gi": 4 << 30, "4096": 4 << 30, "512Mi": 512 << 20}
	for in, want := range cases {
		got, err := parseMemory(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"big", "1Mi", "10"} {
		_, err := parseMemory(bad)
		assert.ErrorContains(t, err, "invalid --memory", bad)
	}
}

func TestSplitKubectlArgs(t *testing.T) {
	cases := []struct {
		in      []string
		profile string
		rest    []string
		err     string
	}{
		{[]string{"get", "pods"}, "", []string{"get", "pods"}, ""},
		{[]string{"--", "get", "pods"}, "", []string{"get", "pods"}, ""},
		{[]string{"-p", "dev", "--", "get", "pods", "-p", "x"}, "dev", []string{"get", "pods", "-p", "x"}, ""},
		{[]string{"--profile=dev", "--", "version"}, "dev", []string{"version"}, ""},
		{[]string{"-p", "--"}, "", nil, "needs a profile name"},
		{[]string{"-n", "x", "--", "get"}, "", nil, "only -p/--profile"},
	}
	for _, tc := range cases {
		profile, rest, err := splitKubectlArgs(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.profile, profile, tc.in)
		assert.Equal(t, tc.rest, rest, tc.in)
	}
}

func TestHasFlag(t *testing.T) {
	assert.True(t, hasFlag([]string{"get", "--kubeconfig=/x"}, "kubeconfig"))
	assert.True(t, hasFlag([]string{"--kubeconfig", "/x"}, "kubeconfig"))
	assert.False(t, hasFlag([]string{"exec", "p", "--", "--kubeconfig"}, "kubeconfig"))
}
