package simload

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

type podOpt func(*corev1.Pod)

func pod(name, app string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{AppLabel: app}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func pending(p *corev1.Pod)  { p.Status.Phase = corev1.PodPending }
func deleting(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} }
func annotated(v string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{CPUAnnotation: v} }
}

func TestParseLoads(t *testing.T) {
	loads, bad := ParseLoads(map[string]string{"web": "800m", "api": " 2 ", "db": "lots", "neg": "-1"})
	assert.Equal(t, int64(800), ptr(loads["web"]).MilliValue())
	assert.Equal(t, int64(2000), ptr(loads["api"]).MilliValue())
	assert.Len(t, loads, 2)
	assert.Contains(t, bad["db"], `"lots" is not a CPU quantity`)
	assert.Contains(t, bad["neg"], "must not be negative")
}

func ptr(q resource.Quantity) *resource.Quantity { return &q }

func TestShares(t *testing.T) {
	loads := map[string]resource.Quantity{"web": resource.MustParse("800m"), "tiny": resource.MustParse("1m"), "idle": resource.MustParse("0")}
	cases := []struct {
		name string
		pods []*corev1.Pod
		want map[string]string
	}{
		{"even split", []*corev1.Pod{pod("w1", "web"), pod("w2", "web")}, map[string]string{"w1": "400m", "w2": "400m"}},
		{"rounded to millicores", []*corev1.Pod{pod("w1", "web"), pod("w2", "web"), pod("w3", "web")}, map[string]string{"w1": "267m", "w2": "267m", "w3": "267m"}},
		{"only ready, running, not terminating pods share", []*corev1.Pod{
			pod("w1", "web"), pod("w2", "web", notReady), pod("w3", "web", pending), pod("w4", "web", deleting),
		}, map[string]string{"w1": "800m"}},
		{"other apps and unlabelled pods are left alone", []*corev1.Pod{pod("w1", "web"), pod("o", "other"), pod("n", "")}, map[string]string{"w1": "800m"}},
		{"never below 1m", []*corev1.Pod{pod("t1", "tiny"), pod("t2", "tiny"), pod("i", "idle")}, map[string]string{"t1": "1m", "t2": "1m", "i": "1m"}},
		{"no pods", nil, map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Shares(loads, tc.pods))
		})
	}
}

func TestControllerWritesShares(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		pod("w1", "web", annotated("10m")), pod("w2", "web", annotated("400m")), pod("w3", "web", notReady),
		pod("x", "other", annotated("5m")),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: "default"}, Data: map[string]string{"web": "800m", "bad": "x"}},
	)
	pods := informers.NewSharedInformerFactory(client, 0)
	maps := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(ConfigMapSelector))
	events := record.NewFakeRecorder(10)
	c, err := New(client, pods, maps, events)
	require.NoError(t, err)
	pods.Start(ctx.Done())
	maps.Start(ctx.Done())
	go c.Run(ctx)

	annotation := func(name string) string {
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return p.Annotations[CPUAnnotation]
	}
	require.Eventually(t, func() bool { return annotation("w1") == "400m" }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "400m", annotation("w2"))
	assert.Equal(t, "", annotation("w3"), "a pod that is not ready gets no share")
	assert.Equal(t, "5m", annotation("x"), "pods of other apps keep theirs")
	assert.Equal(t, "Warning InvalidLoad key bad: \"x\" is not a CPU quantity (e.g. 800m or 2)", <-events.Events)

	// The third pod becomes ready: everyone's share shrinks.
	w3, err := client.CoreV1().Pods("default").Get(ctx, "w3", metav1.GetOptions{})
	require.NoError(t, err)
	w3.Status.Conditions[0].Status = corev1.ConditionTrue
	_, err = client.CoreV1().Pods("default").UpdateStatus(ctx, w3, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return annotation("w1") == "267m" && annotation("w2") == "267m" && annotation("w3") == "267m"
	}, 5*time.Second, 10*time.Millisecond)

	// The load drops.
	cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, ConfigMapName, metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["web"] = "30m"
	_, err = client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return annotation("w1") == "10m" && annotation("w3") == "10m" }, 5*time.Second, 10*time.Millisecond)
	select {
	case ev := <-events.Events:
		t.Fatalf("a bad value is reported once, got again: %s", ev)
	default:
	}
}
