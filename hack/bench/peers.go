package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// A provider makes the clusters a comparison runs on: minik, or a peer.
type provider interface {
	name() string
	// create returns once nodes are Ready and the default ServiceAccount
	// exists, as `minik start` does.
	create(ctx context.Context, cluster string, nodes, maxPods int) (made, error)
	remove(ctx context.Context, cluster string) error
}

// made is a cluster a provider created.
type made struct {
	client kubernetes.Interface
	// procDir is named on the command line of every process of the
	// cluster, and of no other: CPU and memory are theirs.
	procDir string
}

// comparison is one figure on every provider.
type comparison struct {
	figure string
	values []float64
	unit   string
}

// comparePeers runs the start, pods and nodes scenarios on minik and the
// peers in turn, in this one run, and prints each figure with its ratio to
// the first provider's (minik's).
func comparePeers(ctx context.Context, providers []provider, runs, replicas, scaleNodes int, idleWindow time.Duration) error {
	var figures []comparison
	add := func(figure, unit string, values []float64) {
		figures = append(figures, comparison{figure: figure, unit: unit, values: values})
	}

	starts := make([][]time.Duration, len(providers))
	for i := 0; i < runs; i++ {
		for p, pr := range providers {
			// A name of its own each time: client-go caches TLS transports
			// by the kubeconfig's file names, and kwokctl may give the next
			// cluster the same port.
			cluster := fmt.Sprintf("peers-start-%d", i+1)
			began := time.Now()
			if _, err := pr.create(ctx, cluster, 3, 110); err != nil {
				return fmt.Errorf("%s: start %d: %w", pr.name(), i+1, err)
			}
			starts[p] = append(starts[p], time.Since(began))
			if err := pr.remove(ctx, cluster); err != nil {
				return fmt.Errorf("%s: %w", pr.name(), err)
			}
		}
	}
	var medians []float64
	for p := range providers {
		medians = append(medians, median(starts[p]).Seconds())
	}
	add(fmt.Sprintf("start to 3 nodes Ready + default SA (median of %d)", runs), "s", medians)

	var took, cpu, pss, idle, rate []float64
	for _, pr := range providers {
		r, busy, err := podsOn(ctx, pr, replicas, idleWindow)
		if err != nil {
			return fmt.Errorf("%s: pods: %w", pr.name(), err)
		}
		fmt.Printf("%s: %s", pr.name(), r.requests)
		took = append(took, r.took.Seconds())
		cpu = append(cpu, r.cpuPerThousand().Seconds())
		pss = append(pss, float64(r.pssKiB)/1024)
		idle = append(idle, 100*busy.Seconds()/idleWindow.Seconds())
		rate = append(rate, r.podsPerSecond())
	}
	add(fmt.Sprintf("Deployment of %d replicas on 3 nodes to all Ready", replicas), "s", took)
	add("pods per second", "pods/s", rate)
	add("CPU per 1,000 pods during the rollout", "CPU-s", cpu)
	add(fmt.Sprintf("PSS with %d pods", replicas), "MiB", pss)
	add(fmt.Sprintf("idle CPU with %d pods (over %s)", replicas, idleWindow), "% of a core", idle)

	var nodesTook, nodesPSS []float64
	for _, pr := range providers {
		began := time.Now()
		m, err := pr.create(ctx, "peers-nodes", scaleNodes, 110)
		if err != nil {
			return fmt.Errorf("%s: %d nodes: %w", pr.name(), scaleNodes, err)
		}
		nodesTook = append(nodesTook, time.Since(began).Seconds())
		time.Sleep(5 * time.Second) // settle, as the nodes scenario does
		_, p, err := nodeMemory(m.procDir)
		if rmErr := pr.remove(ctx, "peers-nodes"); err == nil {
			err = rmErr
		}
		if err != nil {
			return fmt.Errorf("%s: %w", pr.name(), err)
		}
		nodesPSS = append(nodesPSS, float64(p)/1024)
	}
	add(fmt.Sprintf("start to %d nodes Ready", scaleNodes), "s", nodesTook)
	add(fmt.Sprintf("PSS with %d nodes", scaleNodes), "MiB", nodesPSS)

	fmt.Println()
	printComparison(os.Stdout, providers, figures)
	return nil
}

// podsOn rolls a Deployment out on a fresh 3-node cluster of pr, then
// measures the cluster idling with the pods.
func podsOn(ctx context.Context, pr provider, replicas int, idleWindow time.Duration) (rolled, time.Duration, error) {
	m, err := pr.create(ctx, "peers-pods", 3, podsPerNode(replicas))
	if err != nil {
		return rolled{}, 0, err
	}
	defer func() { _ = pr.remove(ctx, "peers-pods") }()
	r, err := rollout(ctx, m.client, m.procDir, replicas)
	if err != nil {
		return rolled{}, 0, err
	}
	cost, err := measureIdle(m.procDir, 30*time.Second, idleWindow)
	if err != nil {
		return rolled{}, 0, err
	}
	return r, cost.busy, nil
}

func printComparison(w io.Writer, providers []provider, figures []comparison) {
	fmt.Fprintf(w, "%-58s", "figure")
	for _, pr := range providers {
		fmt.Fprintf(w, " %10s", pr.name())
	}
	for _, pr := range providers[1:] {
		fmt.Fprintf(w, " %12s", providers[0].name()+"/"+pr.name())
	}
	fmt.Fprintln(w)
	for _, f := range figures {
		fmt.Fprintf(w, "%-58s", f.figure+" ("+f.unit+")")
		for _, v := range f.values {
			fmt.Fprintf(w, " %10.2f", v)
		}
		for _, v := range f.values[1:] {
			if v == 0 {
				fmt.Fprintf(w, " %12s", "-")
				continue
			}
			fmt.Fprintf(w, " %12.2f", f.values[0]/v)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// minikProvider makes clusters with bin/minik, process driver.
type minikProvider struct {
	mk         minikCmd
	home       string
	kubeconfig string
}

func (minikProvider) name() string { return "minik" }

func (p minikProvider) create(ctx context.Context, cluster string, nodes, maxPods int) (made, error) {
	out, err := p.mk("start", "-p", cluster, "--nodes", strconv.Itoa(nodes), "--max-pods", strconv.Itoa(maxPods), "--wait", "10m").CombinedOutput()
	if err != nil {
		return made{}, fmt.Errorf("minik start: %w: %s", err, out)
	}
	client, err := clientFor(p.kubeconfig, cluster)
	if err != nil {
		return made{}, err
	}
	return made{client: client, procDir: filepath.Join(p.home, "profiles", cluster) + "/"}, nil
}

func (p minikProvider) remove(ctx context.Context, cluster string) error {
	if out, err := p.mk("delete", "-p", cluster).CombinedOutput(); err != nil {
		return fmt.Errorf("minik delete: %w: %s", err, out)
	}
	return nil
}

// waitReady waits until nodes Nodes are Ready and the default namespace's
// ServiceAccount exists: what `minik start` waits for.
func waitReady(ctx context.Context, client kubernetes.Interface, nodes int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ready := 0
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		last := err
		if err == nil {
			for _, n := range list.Items {
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
		}
		if ready >= nodes {
			_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			if err == nil {
				return nil
			}
			if !apierrors.IsNotFound(err) {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes Ready after %s (last error: %v)", ready, nodes, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runCmd runs cmd and returns its error with its output.
func runCmd(cmd *exec.Cmd) error {
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, out)
	}
	return nil
}

// userCacheDir is where built peers stay between runs.
func userCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "minik", "bench"), nil
}
