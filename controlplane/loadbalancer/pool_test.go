package loadbalancer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPool(t *testing.T) {
	p, err := NewPool("172.30.48.0/29") // 6 usable: .1 to .6
	require.NoError(t, err)

	a, err := p.Allocate("default/web", "")
	require.NoError(t, err)
	assert.Equal(t, "172.30.48.1", a)
	again, err := p.Allocate("default/web", "")
	require.NoError(t, err)
	assert.Equal(t, a, again, "a Service keeps its address")

	tests := []struct {
		name, service, requested, want, wantErr string
	}{
		{"requested and free", "default/db", "172.30.48.5", "172.30.48.5", ""},
		{"requested but taken", "default/other", "172.30.48.5", "", "loadBalancerIP 172.30.48.5 is taken by service default/db"},
		{"outside the pool", "default/other", "10.0.0.1", "", "loadBalancerIP 10.0.0.1 is outside the pool 172.30.48.0/29"},
		{"the broadcast address", "default/other", "172.30.48.7", "", "is not a usable address"},
		{"not an address", "default/other", "nope", "", "is outside the pool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Allocate(tt.service, tt.requested)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}

	for _, s := range []string{"a/1", "a/2", "a/3", "a/4"} {
		_, err := p.Allocate(s, "")
		require.NoError(t, err)
	}
	_, err = p.Allocate("a/5", "")
	require.ErrorIs(t, err, ErrPoolExhausted)
	require.ErrorContains(t, err, "6 addresses, all taken")
	p.Release("default/web")
	freed, err := p.Allocate("a/5", "")
	require.NoError(t, err)
	assert.Equal(t, "172.30.48.1", freed, "a released address is given again")

	_, err = NewPool("10.0.0.0/31")
	require.Error(t, err)
}
