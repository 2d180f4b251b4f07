package drivers

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeDriver is a Driver whose health is set by the test.
type fakeDriver struct {
	name     string
	priority int
	health   error
}

func (f *fakeDriver) Info() Info                             { return Info{Name: f.name, Priority: f.priority} }
func (f *fakeDriver) Health(context.Context) error           { return f.health }
func (f *fakeDriver) StartNode(context.Context, Node) error  { return nil }
func (f *fakeDriver) StopNode(context.Context, Node) error   { return nil }
func (f *fakeDriver) DeleteNode(context.Context, Node) error { return nil }
func (f *fakeDriver) NodeState(context.Context, Node) (string, error) {
	return StateStopped, nil
}

func TestSelect(t *testing.T) {
	unhealthy := &HealthError{Driver: "docker", Problem: "no engine answers at unix:///var/run/docker.sock", Fix: "start Docker or set DOCKER_HOST"}
	cases := []struct {
		name    string
		drivers []Driver
		ask     string
		want    string
		wantErr string
	}{
		{"auto prefers priority", []Driver{&fakeDriver{name: "process"}, &fakeDriver{name: "docker", priority: 10}}, "", "docker", ""},
		{"auto falls back", []Driver{&fakeDriver{name: "process"}, &fakeDriver{name: "docker", priority: 10, health: unhealthy}}, "", "process", ""},
		{"named", []Driver{&fakeDriver{name: "process"}, &fakeDriver{name: "docker", priority: 10}}, "process", "process", ""},
		{"named unhealthy", []Driver{&fakeDriver{name: "docker", health: unhealthy}}, "docker", "", "start Docker or set DOCKER_HOST"},
		{"unknown", []Driver{&fakeDriver{name: "process"}, &fakeDriver{name: "docker"}}, "kvm", "", `unknown driver "kvm": known drivers are docker, process`},
		{"none usable", []Driver{&fakeDriver{name: "docker", health: unhealthy}}, "", "", "none is usable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewRegistry(tc.drivers...).Select(context.Background(), tc.ask)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, d.Info().Name)
		})
	}
}

func TestUnknownDriverIsTyped(t *testing.T) {
	_, err := NewRegistry().Get("x")
	require.True(t, errors.Is(err, ErrUnknownDriver))
}

func TestHealthErrorMessage(t *testing.T) {
	err := &HealthError{Driver: "docker", Problem: "no engine", Fix: "start it", Doc: "docs/drivers/docker.md"}
	assert.Equal(t, "driver docker is not usable: no engine; start it (see docs/drivers/docker.md)", err.Error())
}
