package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
)

func TestDriverList(t *testing.T) {
	h := newHarness(t)
	h.driver.HealthErr = &drivers.HealthError{Driver: "fake", Problem: "the fake engine is off", Fix: "turn it on"}

	r := h.run("driver", "list")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "fake")
	assert.Contains(t, r.stdout, "unavailable")
	assert.Contains(t, r.stdout, "the fake engine is off; turn it on")

	r = h.run("driver", "list", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var got []drivers.Availability
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	require.Len(t, got, 1)
	assert.Equal(t, drivers.Availability{Name: "fake", Description: got[0].Description, Problem: "the fake engine is off", Fix: "turn it on"}, got[0])

	h.driver.HealthErr = nil
	r = h.run("driver", "list", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got))
	assert.True(t, got[0].Available)

	assert.Equal(t, 2, h.run("driver", "list", "extra").code, "stray arguments are bad input")
	h.homeIsUntouched()
}
