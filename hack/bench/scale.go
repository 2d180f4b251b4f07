package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

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
	maxPods := strconv.Itoa(min(1000, replicas/3+replicas/10+10))
	if out, err := mk("start", "-p", "pods", "--nodes", "3", "--max-pods", maxPods).CombinedOutput(); err != nil {
		return fmt.Errorf("start: %w: %s", err, out)
	}
	defer func() { _ = mk("delete", "-p", "pods").Run() }()
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: "pods"}).ClientConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
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
	began := time.Now()
	if _, err := client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return err
	}
	var halfway time.Duration
	for {
		got, err := client.AppsV1().Deployments("default").Get(ctx, "scale", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if halfway == 0 && got.Status.ReadyReplicas >= int32(replicas/2) {
			halfway = time.Since(began)
		}
		if got.Status.ReadyReplicas == int32(replicas) {
			break
		}
		if time.Since(began) > 10*time.Minute {
			return fmt.Errorf("only %d of %d replicas ready after 10m", got.Status.ReadyReplicas, replicas)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	took := time.Since(began)
	rss, err := nodeRSS(home)
	if err != nil {
		return err
	}
	fmt.Printf("Deployment of %d replicas on 3 nodes, create to all Running and Ready: %.2fs (%.0f pods/s; half ready at %.2fs); node processes' peak RSS %d MiB\n\n",
		replicas, took.Seconds(), float64(replicas)/took.Seconds(), halfway.Seconds(), rss/1024)
	return nil
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
