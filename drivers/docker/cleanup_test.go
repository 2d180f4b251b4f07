package docker

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNetworkRemoveError(t *testing.T) {
	endpoints := errors.New("Error response from daemon: error while removing network: network minik-c id 8931 has active endpoints")
	tests := []struct {
		name     string
		attached int
		err      error
		restart  bool
	}{
		{name: "stale endpoint", attached: 0, err: endpoints, restart: true},
		{name: "a container is attached", attached: 1, err: endpoints},
		{name: "could not inspect", attached: -1, err: endpoints},
		{name: "other error", attached: 0, err: errors.New("connection refused")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := networkRemoveError("minik-c", tt.attached, tt.err)
			assert.ErrorIs(t, got, tt.err)
			assert.Contains(t, got.Error(), "remove network minik-c: ")
			if tt.restart {
				assert.Contains(t, got.Error(), "restart the Docker Engine")
			} else {
				assert.NotContains(t, got.Error(), "restart the Docker Engine")
			}
		})
	}
}
