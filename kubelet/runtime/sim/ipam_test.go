package sim

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIPAM(t *testing.T) {
	a, err := newIPAM("10.244.1.0/24")
	require.NoError(t, err)
	ip1, err := a.Allocate("a")
	require.NoError(t, err)
	assert.Equal(t, "10.244.1.2", ip1)
	again, err := a.Allocate("a")
	require.NoError(t, err)
	assert.Equal(t, ip1, again, "an owner keeps its IP")
	ip2, _ := a.Allocate("b")
	assert.Equal(t, "10.244.1.3", ip2)

	a.Reserve("c", "10.244.1.4")
	ip3, _ := a.Allocate("d")
	assert.Equal(t, "10.244.1.5", ip3, "reserved IPs are skipped")
	a.Reserve("x", "192.168.0.1") // outside the CIDR: ignored

	seen := map[string]bool{ip1: true, ip2: true, "10.244.1.4": true, ip3: true}
	for i := 0; i < 249; i++ {
		ip, err := a.Allocate(fmt.Sprintf("pod-%d", i))
		require.NoError(t, err)
		require.False(t, seen[ip], ip)
		seen[ip] = true
	}
	_, err = a.Allocate("overflow")
	require.ErrorContains(t, err, "exhausted")
	a.Release("a")
	ip, err := a.Allocate("overflow")
	require.NoError(t, err)
	assert.Equal(t, ip1, ip)

	_, err = newIPAM("nope")
	require.Error(t, err)
}

func TestIPAMv6(t *testing.T) {
	a, err := newIPAM("fd00:10:244:1::/64")
	require.NoError(t, err)
	ip, err := a.Allocate("a")
	require.NoError(t, err)
	assert.Equal(t, "fd00:10:244:1::2", ip)
}
