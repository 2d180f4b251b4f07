package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchDocker times the docker driver: 3 nodes to Ready from scratch and
// from stopped, and `kubectl apply` of a 10-replica Deployment of a locally
// built image to all Ready.
func benchDocker(ctx context.Context, mk minikCmd, dir string, runs int) error {
	if err := exec.CommandContext(ctx, "docker", "version").Run(); err != nil {
		fmt.Printf("docker: skipped, no Docker Engine answers (%v)\n\n", err)
		return nil
	}
	args := []string{"start", "-p", "dbench", "-o", "json", "--driver", "docker", "--nodes", "3"}
	var fresh, restart []sample
	for i := 0; i < runs; i++ {
		s, err := timeStart(mk(args...), "")
		if err != nil {
			return fmt.Errorf("fresh start %d: %w", i+1, err)
		}
		fresh = append(fresh, s)
		if out, err := mk("stop", "-p", "dbench").CombinedOutput(); err != nil {
			return fmt.Errorf("stop: %w: %s", err, out)
		}
		s, err = timeStart(mk("start", "-p", "dbench", "-o", "json"), "")
		if err != nil {
			return fmt.Errorf("restart %d: %w", i+1, err)
		}
		restart = append(restart, s)
		if i < runs-1 {
			if out, err := mk("delete", "-p", "dbench").CombinedOutput(); err != nil {
				return fmt.Errorf("delete: %w: %s", err, out)
			}
		}
	}
	defer func() { _ = mk("delete", "-p", "dbench").Run() }()
	fmt.Printf("minik start --driver docker --nodes 3 to ready (nodes Ready + default ServiceAccount), median of %d\n\n", runs)
	report("from scratch (node image already built)", fresh)
	report("restart of a stopped cluster", restart)

	image, err := buildBenchApp(ctx, dir)
	if err != nil {
		return err
	}
	defer func() { _ = exec.Command("docker", "rmi", "-f", image).Run() }()
	manifest := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(appManifest, "IMAGE", image)), 0o644); err != nil {
		return err
	}
	began := time.Now()
	if out, err := mk("kubectl", "-p", "dbench", "--", "apply", "-f", manifest).CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %w: %s", err, out)
	}
	if out, err := mk("kubectl", "-p", "dbench", "--", "rollout", "status", "deployment/app", "--timeout=5m").CombinedOutput(); err != nil {
		return fmt.Errorf("rollout: %w: %s", err, out)
	}
	fmt.Printf("kubectl apply of a 10-replica Deployment of a local image to all Ready (3 docker nodes): %.2fs\n\n", time.Since(began).Seconds())
	if err := benchLoadBalancer(ctx, mk, "dbench"); err != nil {
		return err
	}
	if err := benchHTTPRoute(ctx, mk, dir, "dbench"); err != nil {
		return err
	}
	return benchClaimPod(ctx, mk, dir, "dbench", image)
}

// buildBenchApp builds the integration tests' workload into a FROM scratch
// image, as a user's `docker build` would.
func buildBenchApp(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "app")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(out, "app"), "./test/integration/testdata/app")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build app: %w: %s", err, b)
	}
	if err := os.WriteFile(filepath.Join(out, "Dockerfile"), []byte("FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n"), 0o644); err != nil {
		return "", err
	}
	image := fmt.Sprintf("minik-bench-app:%d", time.Now().Unix())
	if b, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", image, out).CombinedOutput(); err != nil {
		return "", fmt.Errorf("docker build: %w: %s", err, b)
	}
	return image, nil
}

const appManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 10
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
      - name: app
        image: IMAGE
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: 8080}
          periodSeconds: 1
`
