package drivers_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/drivers"
	"minik.dev/minik/drivers/fakedriver"
)

func TestSelect(t *testing.T) {
	unhealthy := &drivers.HealthError{Driver: "docker", Problem: "no engine answers at unix:///var/run/docker.sock", Fix: "start Docker or set DOCKER_HOST"}
	cases := []struct {
		name       string
		registered []drivers.Driver
		ask        string
		want       string
		wantErr    string
	}{
		{"auto prefers priority", []drivers.Driver{&fakedriver.Driver{Name: "process"}, &fakedriver.Driver{Name: "docker", Priority: 10}}, "", "docker", ""},
		{"auto falls back", []drivers.Driver{&fakedriver.Driver{Name: "process"}, &fakedriver.Driver{Name: "docker", Priority: 10, HealthErr: unhealthy}}, "", "process", ""},
		{"named", []drivers.Driver{&fakedriver.Driver{Name: "process"}, &fakedriver.Driver{Name: "docker", Priority: 10}}, "process", "process", ""},
		{"named unhealthy", []drivers.Driver{&fakedriver.Driver{Name: "docker", HealthErr: unhealthy}}, "docker", "", "start Docker or set DOCKER_HOST"},
		{"unknown", []drivers.Driver{&fakedriver.Driver{Name: "process"}, &fakedriver.Driver{Name: "docker"}}, "kvm", "", `unknown driver "kvm": known drivers are docker, process`},
		{"none usable", []drivers.Driver{&fakedriver.Driver{Name: "docker", HealthErr: unhealthy}}, "", "", "none is usable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := drivers.NewRegistry(tc.registered...).Select(context.Background(), tc.ask)
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
	_, err := drivers.NewRegistry().Get("x")
	require.True(t, errors.Is(err, drivers.ErrUnknownDriver))
}

func TestHealthErrorMessage(t *testing.T) {
	err := &drivers.HealthError{Driver: "docker", Problem: "no engine", Fix: "start it", Doc: "docs/drivers/docker.md"}
	assert.Equal(t, "driver docker is not usable: no engine; start it (see docs/drivers/docker.md)", err.Error())
}

func TestTailLogShowsACrashFromItsStart(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.log")
	require.NoError(t, os.WriteFile(plain, []byte("one\ntwo\nthree\n"), 0o644))
	assert.Equal(t, "  two\n  three", drivers.TailLog(plain, 2))

	crashed := filepath.Join(dir, "crashed.log")
	log := "started\nfatal error: concurrent map writes\n\ngoroutine 1 [running]:\nmain.f()\n"
	for i := 0; i < 50; i++ {
		log += fmt.Sprintf("goroutine %d [select]:\n", i+2)
	}
	require.NoError(t, os.WriteFile(crashed, []byte(log), 0o644))
	got := drivers.TailLog(crashed, 3)
	assert.Equal(t, "  fatal error: concurrent map writes\n  \n  goroutine 1 [running]:", got)

	// A crash of an earlier run is history: the last run's end is shown.
	again := filepath.Join(dir, "again.log")
	log = drivers.LogRunMarker + "2026-12-04T17:00:12Z ====\npanic: failed to open database\n\ngoroutine 9 [running]:\n" +
		drivers.LogRunMarker + "2026-12-04T17:00:15Z ====\nstarting node\nminik-node: etcd's data is corrupt\n"
	require.NoError(t, os.WriteFile(again, []byte(log), 0o644))
	assert.Equal(t, "  starting node\n  minik-node: etcd's data is corrupt", drivers.TailLog(again, 2))
}
