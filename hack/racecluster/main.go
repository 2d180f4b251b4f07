// Command racecluster runs a cluster whose minik-node is built with Go's
// race detector, through a workload that exercises the components minik
// runs in one process (apiserver, controller-manager, scheduler, volume,
// load-balancer and autoscaling controllers, the node agent): workloads,
// a claim, an HPA, a Job, a node added, a stop and start. It then prints
// every data race the nodes reported, each with the first frames of both
// goroutines, and exits 1 if any race has a frame of minik's own code.
//
// A race between upstream packages alone is reported, not failed on: it
// is upstream's to fix (docs/reliability.md lists those seen).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "racecluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	minik := flag.String("minik", "bin/minik", "the minik binary")
	node := flag.String("node", "bin/minik-node-race", "minik-node built with -race")
	keep := flag.Bool("keep", false, "keep the cluster and its logs")
	flag.Parse()

	home, err := os.MkdirTemp("", "minik-race-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(home)
	}
	bin, err := filepath.Abs(*node)
	if err != nil {
		return err
	}
	env := append(os.Environ(), "MINIK_HOME="+home, "MINIK_NODE_BINARY="+bin, "KUBECONFIG="+filepath.Join(home, "kubeconfig"))
	sh := func(timeout time.Duration, args ...string) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, *minik, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("minik %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	kubectl := func(args ...string) error {
		return sh(2*time.Minute, append([]string{"kubectl", "-p", "race", "--"}, args...)...)
	}
	apply := func(yaml string) error {
		f := filepath.Join(home, "manifest.yaml")
		if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
			return err
		}
		return kubectl("apply", "-f", f)
	}
	defer func() {
		if !*keep {
			_ = sh(2*time.Minute, "delete", "-p", "race")
		}
	}()

	began := time.Now()
	steps := []struct {
		name string
		do   func() error
	}{
		{"start 2 nodes", func() error { return sh(5*time.Minute, "start", "-p", "race", "--driver", "process", "--nodes", "2") }},
		{"workloads", func() error {
			return apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx, resources: {requests: {cpu: 10m}}}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 8
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  containers: [{name: user, image: busybox, volumeMounts: [{name: d, mountPath: /d}]}]
  volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: once, image: busybox}]}}}
`)
		}},
		{"rollout", func() error { return kubectl("rollout", "status", "deployment/web", "--timeout", "2m") }},
		{"add a node", func() error { return sh(3*time.Minute, "node", "add", "-p", "race") }},
		{"let controllers work", func() error { time.Sleep(20 * time.Second); return nil }},
		{"delete the claim's pod and the claim", func() error {
			if err := kubectl("delete", "pod", "user", "--wait=false"); err != nil {
				return err
			}
			return kubectl("delete", "pvc", "data", "--wait=false")
		}},
		{"stop", func() error { return sh(3*time.Minute, "stop", "-p", "race") }},
		{"start again", func() error { return sh(5*time.Minute, "start", "-p", "race") }},
		{"let controllers work after the restart", func() error { time.Sleep(30 * time.Second); return nil }},
		{"delete the deployment", func() error { return kubectl("delete", "deployment", "web") }},
		{"stop at the end", func() error { return sh(3*time.Minute, "stop", "-p", "race") }},
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Printf("%-42s %6.1fs\n", s.name, time.Since(t).Seconds())
	}
	logs, _ := filepath.Glob(filepath.Join(home, "profiles", "race", "nodes", "*", "node.log"))
	if len(logs) == 0 {
		return errors.New("no node logs to read")
	}
	ours := 0
	total := 0
	for _, l := range logs {
		races, err := readRaces(l)
		if err != nil {
			return err
		}
		for _, r := range races {
			total++
			mark := "upstream"
			if strings.Contains(r, "minik.dev/minik/") && !onlyCreatedByMinik(r) {
				mark = "MINIK"
				ours++
			}
			fmt.Printf("\n== data race (%s) in %s\n%s\n", mark, l, r)
		}
	}
	fmt.Printf("\n%d data race(s), %d in minik's code, in %.0fs\n", total, ours, time.Since(began).Seconds())
	if ours > 0 {
		return fmt.Errorf("%d data race(s) in minik's code", ours)
	}
	return nil
}

// readRaces returns each race report of a log, trimmed to the frames.
func readRaces(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var races []string
	var cur []string
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "WARNING: DATA RACE":
			in, cur = true, nil
		case in && line == "==================":
			races = append(races, strings.Join(cur, "\n"))
			in = false
		case in:
			cur = append(cur, line)
		}
	}
	return races, sc.Err()
}

// onlyCreatedByMinik says whether minik's code shows in the report only as
// the place that started a goroutine of upstream code: the race itself is
// then in upstream code.
func onlyCreatedByMinik(report string) bool {
	section := ""
	for _, line := range strings.Split(report, "\n") {
		if strings.HasPrefix(line, "Read at") || strings.HasPrefix(line, "Write at") ||
			strings.HasPrefix(line, "Previous ") {
			section = "access"
		} else if strings.HasPrefix(line, "Goroutine ") {
			section = "created"
		}
		if section == "access" && strings.Contains(line, "minik.dev/minik/") {
			return false
		}
	}
	return true
}
