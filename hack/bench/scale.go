package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// benchPods times a Deployment of many replicas on 3 nodes, from create to
// every replica Ready.
func benchPods(ctx context.Context, mk minikCmd, home, kubeconfig string, replicas int) error {
	maxPods := strconv.Itoa(podsPerNode(replicas))
	if out, err := mk("start", "-p", "pods", "--nodes", "3", "--max-pods", maxPods).CombinedOutput(); err != nil {
		return fmt.Errorf("start: %w: %s", err, out)
	}
	defer func() { _ = mk("delete", "-p", "pods").Run() }()
	client, err := clientFor(kubeconfig, "pods")
	if err != nil {
		return err
	}
	r, err := rollout(ctx, client, home+"/profiles/pods/", replicas)
	if err != nil {
		return err
	}
	fmt.Printf("Deployment of %d replicas on 3 nodes, create to all Running and Ready: %.2fs (%.0f pods/s; half ready at %.2fs); node processes' peak RSS %d MiB; %.1f CPU-s per 1,000 pods\n",
		replicas, r.took.Seconds(), r.podsPerSecond(), r.halfway.Seconds(), r.rssKiB/1024, r.cpuPerThousand().Seconds())
	fmt.Println(r.requests)
	return nil
}

// podsPerNode is the pod capacity each of 3 nodes needs for replicas, with
// room to spare so that the scheduler's spreading never runs out.
func podsPerNode(replicas int) int {
	return min(1000, replicas/3+replicas/10+10)
}

func clientFor(kubeconfig, context string) (kubernetes.Interface, error) {
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, err
	}
	// Polls for readiness must not wait on client-go's default 5 qps.
	rc.QPS, rc.Burst = 100, 200
	return kubernetes.NewForConfig(rc)
}

// rolled is what one Deployment rollout cost.
type rolled struct {
	replicas      int
	took, halfway time.Duration
	cpu           time.Duration // of the cluster's processes, during the rollout
	rssKiB        int64         // peak RSS of the cluster's processes, at the end
	pssKiB        int64
	requests      string
}

func (r rolled) podsPerSecond() float64 { return float64(r.replicas) / r.took.Seconds() }

func (r rolled) cpuPerThousand() time.Duration {
	return r.cpu * 1000 / time.Duration(r.replicas)
}

// rollout creates a Deployment of replicas and waits until all are Ready,
// measuring the processes whose command line names procDir.
func rollout(ctx context.Context, client kubernetes.Interface, procDir string, replicas int) (rolled, error) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "scale"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "scale"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.invalid/scale:v1"}}},
			},
		},
	}
	ticksBefore, err := nodeCPUTicks(procDir)
	if err != nil {
		return rolled{}, err
	}
	requestsBefore, err := apiRequests(ctx, client)
	if err != nil {
		return rolled{}, err
	}
	began := time.Now()
	if _, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return rolled{}, err
	}
	r := rolled{replicas: replicas}
	for {
		got, err := client.AppsV1().Deployments("default").Get(ctx, "scale", metav1.GetOptions{})
		if err != nil {
			return rolled{}, err
		}
		if r.halfway == 0 && got.Status.ReadyReplicas >= int32(replicas/2) {
			r.halfway = time.Since(began)
		}
		if got.Status.ReadyReplicas == int32(replicas) {
			break
		}
		if time.Since(began) > 10*time.Minute {
			return rolled{}, fmt.Errorf("only %d of %d replicas ready after 10m", got.Status.ReadyReplicas, replicas)
		}
		select {
		case <-ctx.Done():
			return rolled{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	r.took = time.Since(began)
	ticksAfter, err := nodeCPUTicks(procDir)
	if err != nil {
		return rolled{}, err
	}
	requestsAfter, err := apiRequests(ctx, client)
	if err != nil {
		return rolled{}, err
	}
	if r.rssKiB, r.pssKiB, err = nodeMemory(procDir); err != nil {
		return rolled{}, err
	}
	r.cpu = time.Duration(ticksAfter-ticksBefore) * time.Second / clockTicks
	r.requests = requestsPerPod(requestsBefore, requestsAfter, replicas)
	return r, nil
}

// apiRequests reads the apiserver's request counters, summed by verb,
// resource and subresource (the bench's own Gets included).
func apiRequests(ctx context.Context, client kubernetes.Interface) (map[string]float64, error) {
	data, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read apiserver metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parse apiserver metrics: %w", err)
	}
	counts := map[string]float64{}
	f := families["apiserver_request_total"]
	if f == nil {
		return nil, fmt.Errorf("the apiserver's metrics have no apiserver_request_total")
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		key := labels["verb"] + " " + labels["resource"]
		if labels["subresource"] != "" {
			key += "/" + labels["subresource"]
		}
		counts[key] += m.GetCounter().GetValue()
	}
	return counts, nil
}

// requestsPerPod says how many API requests each pod cost, in all and for
// the kinds that cost the most.
func requestsPerPod(before, after map[string]float64, pods int) string {
	type kind struct {
		key string
		n   float64
	}
	var kinds []kind
	var total float64
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			kinds = append(kinds, kind{k, d})
			total += d
		}
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].n > kinds[j].n })
	var b strings.Builder
	fmt.Fprintf(&b, "API requests per pod: %.2f (", total/float64(pods))
	for i, k := range kinds[:min(len(kinds), 8)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f", k.key, k.n/float64(pods))
	}
	b.WriteString(")\n")
	return b.String()
}

// benchNodes starts a cluster of many nodes and compares its node
// processes' RSS with a 1-node cluster's.
func benchNodes(ctx context.Context, mk minikCmd, home string, nodes int) error {
	base, err := startAndMeasure(mk, home, "nodes1", 1)
	if err != nil {
		return err
	}
	big, err := startAndMeasure(mk, home, "nodes-many", nodes)
	if err != nil {
		return err
	}
	fmt.Printf("%d-node cluster: ready in %.2fs; node processes use %d MiB (PSS), %d MiB more than a 1-node cluster (%d MiB, ready in %.2fs); peak RSS %d MiB vs %d MiB\n\n",
		nodes, big.took.Seconds(), big.pssKiB/1024, (big.pssKiB-base.pssKiB)/1024, base.pssKiB/1024, base.took.Seconds(), big.rssKiB/1024, base.rssKiB/1024)
	return nil
}

type measured struct {
	took           time.Duration
	rssKiB, pssKiB int64
}

func startAndMeasure(mk minikCmd, home, profile string, nodes int) (measured, error) {
	defer func() { _ = mk("delete", "-p", profile).Run() }()
	began := time.Now()
	if out, err := mk("start", "-p", profile, "--nodes", strconv.Itoa(nodes), "--wait", "10m").CombinedOutput(); err != nil {
		return measured{}, fmt.Errorf("start %d nodes: %w: %s", nodes, err, out)
	}
	took := time.Since(began)
	// Let the nodes settle into steady state before reading their peak.
	time.Sleep(5 * time.Second)
	hwm, pss, err := nodeMemory(home + "/profiles/" + profile + "/")
	return measured{took: took, rssKiB: hwm, pssKiB: pss}, err
}
