package drivers

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCandidateSubnets(t *testing.T) {
	c := CandidateSubnets()
	require.Len(t, c, 12+55)
	assert.Equal(t, "172.20.0.0/16", c[0].String())
	assert.Equal(t, "172.31.0.0/16", c[11].String())
	assert.Equal(t, "10.200.0.0/16", c[12].String())
	assert.Equal(t, "10.254.0.0/16", c[len(c)-1].String())
}

func TestFreeSubnet(t *testing.T) {
	for _, tc := range []struct {
		used []string
		want string
	}{
		{nil, "172.20.0.0/16"},
		{[]string{"172.16.0.0/12"}, "10.200.0.0/16"},
		{[]string{"172.20.5.1/32"}, "172.21.0.0/16"},
		{[]string{"172.21.0.0/16"}, "172.20.0.0/16"},
	} {
		used, err := TakenPrefixes(tc.used)
		require.NoError(t, err)
		got, ok := FreeSubnet(used)
		require.True(t, ok)
		assert.Equal(t, tc.want, got.String(), tc.used)
	}
	_, ok := FreeSubnet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")})
	assert.False(t, ok)
	_, err := TakenPrefixes([]string{"nope"})
	assert.Error(t, err)
}
