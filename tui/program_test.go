package tui

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	metricsfake "k8s.io/metrics/pkg/client/clientset/versioned/fake"

	"minik.dev/minik/tui/kube"
)

// flakyCluster is a cluster whose /readyz the test switches off and on.
type flakyCluster struct {
	*kube.Client
	down atomic.Bool
}

func (f *flakyCluster) Healthy(ctx context.Context) error {
	if f.down.Load() {
		return errors.New("apiserver /readyz: connection refused")
	}
	return f.Client.Healthy(ctx)
}

func contains(s string) func([]byte) bool {
	return func(b []byte) bool { return bytes.Contains(b, []byte(s)) }
}

// TestProgram runs the whole program, Init included: informers on a fake
// clientset feed the screen, a change shows within a second, the status
// bar follows the connection, and q quits.
func TestProgram(t *testing.T) {
	kc := fake.NewClientset(clusterObjects()...)
	c := &flakyCluster{Client: kube.New(kc, metricsfake.NewSimpleClientset(), kube.Options{Namespace: "default"})}
	opts := testOptions("default")
	opts.HealthEvery = 50 * time.Millisecond
	tm := teatest.NewTestModel(t, New(t.Context(), c, opts), teatest.WithInitialTermSize(120, 30))
	out := tm.Output()

	teatest.WaitFor(t, out, contains("metrics.k8s.io not served"), teatest.WithDuration(5*time.Second))
	tm.Type("2")
	teatest.WaitFor(t, out, contains("CrashLoopBackOff"), teatest.WithDuration(5*time.Second))

	// Informer → debounced snapshot → screen, within a second.
	_, err := kc.CoreV1().Pods("default").Create(t.Context(),
		pod("default", "zz-new-pod", "minik", corev1.PodRunning, true, 0, time.Minute), metav1.CreateOptions{})
	require.NoError(t, err)
	teatest.WaitFor(t, out, contains("zz-new-pod"), teatest.WithDuration(time.Second))

	c.down.Store(true)
	teatest.WaitFor(t, out, contains("disconnected"), teatest.WithDuration(2*time.Second))
	c.down.Store(false)
	time.Sleep(300 * time.Millisecond)

	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	final := tm.FinalModel(t).(*Model)
	assert.Nil(t, final.connErr, "reconnected")
	assert.NotContains(t, final.render(), "disconnected")
}

func TestOnce(t *testing.T) {
	kc := fake.NewClientset(clusterObjects()...)
	c := kube.New(kc, metricsfake.NewSimpleClientset(), kube.Options{Namespace: "default"})
	var b bytes.Buffer
	require.NoError(t, Once(t.Context(), c, testOptions("default"), &b, 100))
	assert.NotContains(t, b.String(), "\x1b", "plain styles: no escape sequences for CI logs and NO_COLOR")
	assert.Contains(t, b.String(), "metrics.k8s.io not served: CPU/memory columns empty")
	golden.RequireEqual(t, b.String())

	opts := testOptions("")
	opts.Styles = ColorStyles()
	b.Reset()
	require.NoError(t, Once(t.Context(), kube.New(fake.NewClientset(clusterObjects()...), nil, kube.Options{}), opts, &b, 100))
	assert.Contains(t, b.String(), "\x1b[", "colour styles do colour")
	assert.Contains(t, b.String(), "all namespaces")
}

func TestOnceFailsFastWhenUnreachable(t *testing.T) {
	c := kube.New(fake.NewClientset(), nil, kube.Options{Readyz: func(context.Context) error {
		return errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	}})
	start := time.Now()
	err := Once(t.Context(), c, testOptions(""), &bytes.Buffer{}, 100)
	require.ErrorContains(t, err, "cluster not reachable: dial tcp 127.0.0.1:1: connect: connection refused")
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestRunRestoresOnCancel(t *testing.T) {
	// Run returns when its context ends (SIGTERM in the CLI), not only on q.
	kc := fake.NewClientset(clusterObjects()...)
	c := kube.New(kc, nil, kube.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, testOptions(""), strings.NewReader(""), &out) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}
