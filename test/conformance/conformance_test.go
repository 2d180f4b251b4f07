package conformance

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Slice is the fixed selection make test runs: pods, Services, DNS, a
// webhook, logs, and what the runtime does beyond running commands
// (security context, termination messages, hooks, ephemeral containers,
// trust bundles and pod certificates in projected volumes, host ports,
// admission, volume permissions) on the docker driver, a few minutes on
// 2 cores.
var Slice = []string{
	`Pods should get a host IP`,
	`Pods should be submitted and removed`,
	`Pods should support retrieving logs from the container over websockets`,
	`Kubelet when scheduling a busybox command in a pod should print the output to logs`,
	`Downward API should provide pod name, namespace and IP address as env vars`,
	`ConfigMap should be consumable from pods in volume \[`,
	// Its variable "data-1" is no shell identifier (BuildBusybox).
	`ConfigMap should be consumable via the environment`,
	`Services should serve a basic endpoint from pods`,
	`Services should be able to create a functioning NodePort service`,
	`DNS should provide DNS for the cluster`,
	`DNS should provide DNS for services`,
	`AdmissionWebhook .*should be able to deny pod and configmap creation`,
	`Kubectl logs logs should be able to retrieve and filter logs`,
	`Kubelet when scheduling a read only busybox container should not write to root filesystem`,
	`Container Runtime blackbox test on terminated container should report termination message if TerminationMessagePath is set as non-root user and at a non-default path`,
	// Not the Restartable Init Container Lifecycle Hook spec of the same name.
	`\[sig-node\] Container Lifecycle Hook when create a pod with lifecycle hook should execute prestop exec hook properly`,
	`Ephemeral Containers will start an ephemeral container in an existing pod`,
	`can combine multiple CTBs with signer name and label selector`,
	`Projected PodCertificate .*should allow server and client pods to establish an mTLS connection`,
	// Host ports, the kubelet's admission, a pod's own resolv.conf, and
	// volumes a non-root user writes or reads through its fsGroup.
	`HostPort validates that there is no conflict between pods with same hostPort but different hostIP and protocol`,
	`StatefulSet Basic StatefulSet functionality \[StatefulSetBasic\] Should recreate evicted statefulset`,
	`DNS should support configurable pod DNS nameservers`,
	`EmptyDir volumes should support \(non-root,0666,default\)`,
	`\[sig-storage\] Secrets should be consumable from pods in volume as non-root with defaultMode and fsGroup set`,
}

// TestSlice runs the slice against a fresh 3-node docker cluster with the
// built binaries and fails on any failed spec. hack/conformance runs all.
func TestSlice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and runs the upstream suite")
	}
	root := filepath.Join("..", "..")
	minik, node := os.Getenv("MINIK_BINARY"), os.Getenv("MINIK_NODE_BINARY")
	if minik == "" {
		minik = filepath.Join(root, "bin", "minik")
	}
	if node == "" {
		node = filepath.Join(root, "bin", "minik-node")
	}
	for _, p := range []*string{&minik, &node} {
		abs, err := filepath.Abs(*p)
		require.NoError(t, err)
		_, err = os.Stat(abs)
		require.NoError(t, err, "run `make build` first")
		*p = abs
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	api, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	require.NoError(t, err)
	defer api.Close()
	if _, err := api.Ping(ctx, client.PingOptions{}); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("no Docker Engine answers (%v); CI runs this", err)
		}
		require.NoError(t, err, "CI needs a Docker Engine")
	}

	dir := t.TempDir()
	suite, err := BuildSuite(ctx, filepath.Join(root, "hack", "conformance", "e2e"), filepath.Join(dir, "bin"))
	require.NoError(t, err)
	cache, err := CacheDir()
	require.NoError(t, err)
	busybox, err := BuildBusybox(ctx, cache)
	require.NoError(t, err)
	_, err = BuildImages(ctx, api, Inputs{Agnhost: suite.Agnhost, SampleAPIServer: suite.SampleAPIServer, Nonewprivs: suite.Nonewprivs, Etcd: suite.Etcd, KubernetesDir: suite.KubernetesDir, Busybox: busybox})
	require.NoError(t, err)

	var out bytes.Buffer
	s, err := Run(ctx, Options{
		Minik: minik, NodeBinary: node, Suite: suite, Dir: filepath.Join(dir, "run"),
		Driver: "docker", Nodes: 3, Focus: strings.Join(Slice, "|"), Output: &out,
	})
	if err != nil || s.Counts.Failed > 0 || s.Counts.Passed != len(Slice) {
		t.Log(tailLines(out.String(), 200))
	}
	require.NoError(t, err)
	t.Log("\n" + s.Markdown())
	assert.Empty(t, s.Failures)
	assert.Equal(t, len(Slice), s.Counts.Passed, "every spec of the slice runs and passes")
}

func TestParseJUnit(t *testing.T) {
	const report = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" failures="1">
  <testsuite name="Kubernetes e2e suite" tests="5">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="1"></testcase>
    <testcase name="[It] [sig-node] Pods should get a host IP [NodeConformance] [Conformance]" status="passed" time="3"></testcase>
    <testcase name="[It] [sig-network] DNS should provide DNS for services [Conformance]" status="failed" time="60">
      <failure message="&#xA;  timed out waiting for the condition&#xA;  more" type="failed">stack</failure>
    </testcase>
    <testcase name="[It] [sig-network] Services should serve a basic endpoint from pods [Conformance]" status="passed"></testcase>
    <testcase name="[It] [sig-storage] CSI something" status="skipped"><skipped message="skipped - Only supported for providers [gce] (not skeleton)"></skipped></testcase>
    <testcase name="[It] [sig-apps] not selected" status="skipped"><skipped message="skipped"></skipped></testcase>
  </testsuite>
</testsuites>`
	s, err := ParseJUnit(strings.NewReader(report))
	require.NoError(t, err)
	assert.Equal(t, Counts{Passed: 2, Failed: 1, Skipped: 1}, s.Counts)
	assert.Equal(t, map[string]Counts{
		"node": {Passed: 1}, "network": {Passed: 1, Failed: 1}, "storage": {Skipped: 1},
	}, s.SIGs)
	require.Len(t, s.Failures, 1)
	assert.Equal(t, Failure{Name: "[sig-network] DNS should provide DNS for services [Conformance]", Message: "timed out waiting for the condition"}, s.Failures[0])
	assert.Contains(t, s.Markdown(), "| network | 1 | 1 | 0 |")

	_, err = ParseJUnit(strings.NewReader("not xml"))
	assert.Error(t, err)
}

func TestPasses(t *testing.T) {
	for _, tc := range []struct {
		procs int
		want  []pass
	}{
		{0, []pass{{procs: 1}}},
		{1, []pass{{procs: 1}}},
		{4, []pass{{name: "parallel", procs: 4, labels: "!Serial"}, {name: "serial", procs: 1, labels: "Serial"}}},
	} {
		assert.Equal(t, tc.want, passes(tc.procs), "procs %d", tc.procs)
	}

	// A run of two passes counts both.
	var s Summary
	s.add(Summary{Counts: Counts{Passed: 2, Failed: 1}, SIGs: map[string]Counts{"network": {Passed: 1, Failed: 1}, "node": {Passed: 1}},
		Failures: []Failure{{Name: "a", Message: "x"}}})
	s.add(Summary{Counts: Counts{Passed: 1, Skipped: 1}, SIGs: map[string]Counts{"node": {Passed: 1, Skipped: 1}}})
	assert.Equal(t, Counts{Passed: 3, Failed: 1, Skipped: 1}, s.Counts)
	assert.Equal(t, map[string]Counts{"network": {Passed: 1, Failed: 1}, "node": {Passed: 2, Skipped: 1}}, s.SIGs)
	assert.Equal(t, []Failure{{Name: "a", Message: "x"}}, s.Failures)
	s.Procs = 4
	assert.Contains(t, s.Markdown(), "4 processes (Serial specs alone)")
}

func TestRootfsTar(t *testing.T) {
	r := newRootfs()
	r.file("/usr/bin/tool", []byte("x"), 0o755)
	r.symlink("/bin/sh", "/bin/busybox")
	r.users([]string{"app:x:1000:1000::/:/bin/sh"}, nil)
	var a, b bytes.Buffer
	require.NoError(t, r.writeTar(&a))
	require.NoError(t, r.writeTar(&b))
	assert.Equal(t, a.Bytes(), b.Bytes(), "the same tree gives the same bytes, so unchanged images are not rebuilt")

	got := map[string]*tar.Header{}
	var order []string
	tr := tar.NewReader(&a)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got[h.Name] = h
		order = append(order, h.Name)
	}
	require.Contains(t, got, "usr/")
	require.Contains(t, got, "usr/bin/")
	assert.Less(t, indexOf(order, "usr/bin/"), indexOf(order, "usr/bin/tool"), "parents come first")
	assert.Equal(t, "/bin/busybox", got["bin/sh"].Linkname)
	assert.Equal(t, int64(0o1777), got["tmp/"].Mode)
	assert.Equal(t, int64(1), got["usr/bin/tool"].Size)
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestBinaryCopiesItsLibraries(t *testing.T) {
	if _, err := os.Stat("/usr/bin/getent"); err != nil {
		t.Skip("needs Debian's getent (libc-bin)")
	}
	r := newRootfs()
	require.NoError(t, r.binary("/usr/bin/getent", "/usr/bin/getent"))
	var libc, loader bool
	for p := range r.entries {
		libc = libc || strings.HasSuffix(p, "/libc.so.6")
		loader = loader || strings.Contains(p, "ld-linux")
	}
	assert.True(t, libc, "libc is copied")
	assert.True(t, loader, "the dynamic loader is copied")

	assert.Error(t, r.binary("/x", filepath.Join(t.TempDir(), "missing")))
}

func TestRepoListNamesEveryRegistry(t *testing.T) {
	list := RepoList()
	for _, key := range []string{"promoterE2eRegistry", "gcRegistry", "invalidRegistry", "privateRegistry", "sigStorageRegistry"} {
		assert.Contains(t, list, key+": ")
	}
	for _, name := range ImageNames() {
		assert.True(t, strings.HasPrefix(name, Registry+"/"), name)
	}
}

func TestVersionFlags(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    []string
		wantErr bool
	}{
		{version: "v1.37.2", want: []string{"k8s.io/component-base/version.gitMajor=1", "k8s.io/component-base/version.gitMinor=37",
			"k8s.io/client-go/pkg/version.gitVersion=v1.37.2"}},
		{version: "v1.38.0-alpha.1", want: []string{"k8s.io/component-base/version.gitMinor=38"}},
		{version: "", wantErr: true},
		{version: "(devel)", wantErr: true},
	} {
		t.Run(tc.version, func(t *testing.T) {
			flags, err := versionFlags(tc.version)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			for _, w := range tc.want {
				assert.Contains(t, strings.Fields(flags), w)
			}
		})
	}
}
