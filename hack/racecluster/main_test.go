package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const upstreamRace = `Read at 0x00c006cb4308 by goroutine 9699:
  k8s.io/cloud-provider/controllers/service.(*serviceCache).allServices()
Previous write at 0x00c006cb4308 by goroutine 9698:
  k8s.io/cloud-provider/controllers/service.(*Controller).processServiceCreateOrUpdate()
Goroutine 9699 (running) created at:
  minik.dev/minik/controlplane/loadbalancer.Run()`

const minikRace = `Write at 0x00c000123456 by goroutine 12:
  minik.dev/minik/kubelet.(*Agent).report()
Previous read at 0x00c000123456 by goroutine 13:
  k8s.io/client-go/tools/cache.(*Reflector).ListAndWatch()
Goroutine 12 (running) created at:
  minik.dev/minik/kubelet.(*Agent).Run()`

func TestReadRaces(t *testing.T) {
	log := filepath.Join(t.TempDir(), "node.log")
	content := "I1204 starting node\n==================\nWARNING: DATA RACE\n" + upstreamRace + "\n==================\n" +
		"I1204 more\n==================\nWARNING: DATA RACE\n" + minikRace + "\n==================\n"
	require.NoError(t, os.WriteFile(log, []byte(content), 0o644))
	races, err := readRaces(log)
	require.NoError(t, err)
	require.Equal(t, []string{upstreamRace, minikRace}, races)

	for _, tc := range []struct {
		name   string
		report string
		ours   bool
	}{
		{"minik only started the goroutine", upstreamRace, false},
		{"a minik frame accesses the memory", minikRace, true},
	} {
		assert.Equal(t, !tc.ours, onlyCreatedByMinik(tc.report), tc.name)
	}
}
