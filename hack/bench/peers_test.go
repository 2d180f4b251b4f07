package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

type namedProvider string

func (p namedProvider) name() string { return string(p) }
func (namedProvider) create(context.Context, string, int, int) (made, error) {
	return made{}, nil
}
func (namedProvider) remove(context.Context, string) error { return nil }

func TestPrintComparison(t *testing.T) {
	var b strings.Builder
	printComparison(&b, []provider{namedProvider("minik"), namedProvider("kwok")}, []comparison{
		{figure: "start", unit: "s", values: []float64{1, 4}},
		{figure: "idle", unit: "%", values: []float64{3, 0}},
	})
	lines := strings.Split(b.String(), "\n")
	assert.Equal(t, []string{"figure", "minik", "kwok", "minik/kwok"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"start", "(s)", "1.00", "4.00", "0.25"}, strings.Fields(lines[1]))
	assert.Equal(t, []string{"idle", "(%)", "3.00", "0.00", "-"}, strings.Fields(lines[2]), "no ratio to a zero")
}

func TestKubeVersionStamp(t *testing.T) {
	for _, tc := range []struct {
		version, major, minor string
	}{
		{"v1.37.2", "1", "37"},
		{"v1.36.0-rc.1", "1", "36"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			stamp := kubeVersionStamp(tc.version)
			assert.Contains(t, stamp, "k8s.io/component-base/version.gitVersion="+tc.version+" ")
			assert.Contains(t, stamp, "k8s.io/component-base/version.gitMajor="+tc.major+" ")
			assert.Contains(t, stamp, "k8s.io/client-go/pkg/version.gitMinor="+tc.minor+" ")
		})
	}
}
