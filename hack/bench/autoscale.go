package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// benchAutoscale times cluster autoscaling on driver (process or docker):
// a 1-CPU control plane holds a 700m pod; a 600m pod then fits nowhere
// and the autoscaler adds a worker for it. It reports the medians of runs
// of: the pod Unschedulable to Running on the new worker, and the pod
// deleted to the idle worker gone (idle time 2s).
func benchAutoscale(ctx context.Context, mk minikCmd, dir, driver string, runs int) error {
	profile := "ascale-" + driver
	image := "minik-bench-none:1" // sim pods run no image
	if driver == "docker" {
		var err error
		if image, err = buildBenchApp(ctx, dir); err != nil {
			return err
		}
		defer func() { _ = exec.Command("docker", "rmi", "-f", image).Run() }()
	}
	start := mk("start", "-p", profile, "--driver", driver, "--cpus", "1", "--memory", "1Gi", "--autoscale", "0:1", "--autoscale-idle", "2s")
	if out, err := start.CombinedOutput(); err != nil {
		return fmt.Errorf("start: %w: %s", err, out)
	}
	defer func() { _ = mk("delete", "-p", profile).Run() }()
	kubectl := func(args ...string) (string, error) {
		out, err := mk(append([]string{"kubectl", "-p", profile, "--"}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	pod := func(name, cpu string) string {
		return strings.NewReplacer("NAME", name, "CPU", cpu, "IMAGE", image).Replace(autoscaleManifest)
	}
	apply := func(yaml string) error {
		cmd := mk("kubectl", "-p", profile, "--", "apply", "-f", "-")
		cmd.Stdin = strings.NewReader(yaml)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apply: %w: %s", err, out)
		}
		return nil
	}
	waitFor := func(what string, limit time.Duration, ok func() (bool, error)) error {
		deadline := time.Now().Add(limit)
		for {
			done, err := ok()
			if err != nil || done {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not after %s", what, limit)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	phase := func(name string) func() (string, error) {
		return func() (string, error) {
			return kubectl("get", "pod", name, "-o", "jsonpath={.status.phase} {.status.conditions[?(@.type==\"PodScheduled\")].reason}")
		}
	}
	if err := apply(pod("fill", "700m")); err != nil {
		return err
	}
	if err := waitFor("fill Running", 2*time.Minute, func() (bool, error) {
		s, err := phase("fill")()
		return strings.HasPrefix(s, "Running"), err
	}); err != nil {
		return err
	}
	var up, down []time.Duration
	for i := 0; i < runs; i++ {
		if err := apply(pod("grow", "600m")); err != nil {
			return err
		}
		var unschedulable time.Time
		if err := waitFor("grow Running", 3*time.Minute, func() (bool, error) {
			s, err := phase("grow")()
			if strings.Contains(s, "Unschedulable") && unschedulable.IsZero() {
				unschedulable = time.Now()
			}
			return strings.HasPrefix(s, "Running"), err
		}); err != nil {
			return err
		}
		if unschedulable.IsZero() {
			return fmt.Errorf("run %d: the pod was never seen Unschedulable", i+1)
		}
		up = append(up, time.Since(unschedulable))
		deleted := time.Now()
		if _, err := kubectl("delete", "pod", "grow", "--wait=false"); err != nil {
			return err
		}
		if err := waitFor("idle worker removed", 3*time.Minute, func() (bool, error) {
			out, err := mk("node", "list", "-p", profile).Output()
			return err == nil && !strings.Contains(string(out), "worker"), nil
		}); err != nil {
			return err
		}
		down = append(down, time.Since(deleted))
	}
	fmt.Printf("autoscaling, %s driver, median of %d: pod Unschedulable to Running on a new worker %.2fs; pod deleted to its idle worker gone (idle time 2s) %.2fs\n\n",
		driver, runs, median(up).Seconds(), median(down).Seconds())
	return nil
}

const autoscaleManifest = `apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: IMAGE
    resources: {requests: {cpu: CPU}}
`
