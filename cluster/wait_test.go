package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/fakedriver"
	"minik.dev/minik/nodeconfig"
)

func TestWaitForTimesOutWithErrWaitTimeout(t *testing.T) {
	d := &fakedriver.Driver{}
	d.SetState("dev", drivers.StateRunning)
	p := &Profile{Name: "dev", Driver: fakedriver.Name, Nodes: []ProfileNode{{Name: "dev", Role: nodeconfig.RoleControlPlane}}}
	m := New(Options{Home: t.TempDir(), Drivers: drivers.NewRegistry(d)})

	err := m.waitFor(context.Background(), d, p, fake.NewClientset(), readiness{what: "cluster", nodes: p.Nodes}, 100*time.Millisecond)
	require.ErrorIs(t, err, ErrWaitTimeout, "callers tell a timeout by its sentinel, not its text")
	assert.Equal(t, "wait for cluster: timed out after 100ms: node dev has not registered", err.Error())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = m.waitFor(ctx, d, p, fake.NewClientset(), readiness{what: "cluster", nodes: p.Nodes}, time.Minute)
	assert.NotErrorIs(t, err, ErrWaitTimeout, "an interrupted wait did not time out")
}
