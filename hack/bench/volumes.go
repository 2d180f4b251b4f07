package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// benchClaims times a 100-replica StatefulSet (pods started in parallel)
// on 3 process-driver nodes, from create to all 100 claims bound.
func benchClaims(ctx context.Context, mk minikCmd, dir string, replicas int) error {
	if out, err := mk("start", "-p", "claims", "--nodes", "3").CombinedOutput(); err != nil {
		return fmt.Errorf("start: %w: %s", err, out)
	}
	defer func() { _ = mk("delete", "-p", "claims").Run() }()
	manifest := filepath.Join(dir, "claims.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(claimsManifest, replicas)), 0o644); err != nil {
		return err
	}
	began := time.Now()
	if out, err := mk("kubectl", "-p", "claims", "--", "apply", "-f", manifest).CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %w: %s", err, out)
	}
	for {
		out, err := mk("kubectl", "-p", "claims", "--", "get", "pvc", "-o", "jsonpath={.items[*].status.phase}").Output()
		if err != nil {
			return fmt.Errorf("get claims: %w", err)
		}
		if strings.Count(string(out), "Bound") == replicas {
			break
		}
		if time.Since(began) > 5*time.Minute {
			return fmt.Errorf("claims not all bound after 5m: %s", out)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	took := time.Since(began)
	fmt.Printf("StatefulSet of %d replicas with a claim each on 3 nodes (sim runtime), create to all claims bound: %.2fs (%.0f claims/s)\n\n",
		replicas, took.Seconds(), float64(replicas)/took.Seconds())
	return nil
}

const claimsManifest = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: claims}
spec:
  serviceName: claims
  replicas: %d
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: claims}}
  template:
    metadata: {labels: {app: claims}}
    spec:
      containers: [{name: main, image: registry.invalid/claims:v1, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`

// benchClaimPod times, on a running docker cluster, a claim and a pod that
// mounts it, from create to the pod Running (its volume provisioned,
// attached and mounted).
func benchClaimPod(ctx context.Context, mk minikCmd, dir, profile, image string) error {
	manifest := filepath.Join(dir, "claim-pod.yaml")
	if err := os.WriteFile(manifest, []byte(strings.ReplaceAll(claimPodManifest, "IMAGE", image)), 0o644); err != nil {
		return err
	}
	began := time.Now()
	if out, err := mk("kubectl", "-p", profile, "--", "apply", "-f", manifest).CombinedOutput(); err != nil {
		return fmt.Errorf("apply: %w: %s", err, out)
	}
	if out, err := mk("kubectl", "-p", profile, "--", "wait", "pod/claim-pod", "--for=jsonpath={.status.phase}=Running", "--timeout=2m").CombinedOutput(); err != nil {
		return fmt.Errorf("wait: %w: %s", err, out)
	}
	fmt.Printf("a claim and a pod that mounts it, create to Running with the volume mounted (docker): %.2fs\n\n", time.Since(began).Seconds())
	return nil
}

const claimPodManifest = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim-pod}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
---
apiVersion: v1
kind: Pod
metadata: {name: claim-pod}
spec:
  containers: [{name: app, image: IMAGE, volumeMounts: [{name: data, mountPath: /data}]}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: claim-pod}}]
`

// benchLoadBalancer times, on a running docker cluster whose Deployment
// "app" serves on 8080, a LoadBalancer Service from create to the first
// successful request on its address from this machine.
func benchLoadBalancer(ctx context.Context, mk minikCmd, profile string) error {
	began := time.Now()
	if out, err := mk("kubectl", "-p", profile, "--", "expose", "deployment/app", "--name", "app-lb", "--type", "LoadBalancer", "--port", "80", "--target-port", "8080").CombinedOutput(); err != nil {
		return fmt.Errorf("expose: %w: %s", err, out)
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	last := "no address yet"
	for {
		out, err := mk("kubectl", "-p", profile, "--", "get", "svc", "app-lb", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}").Output()
		if ip := strings.TrimSpace(string(out)); err == nil && ip != "" {
			resp, err := client.Get("http://" + ip + "/")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				last = resp.Status
			} else {
				last = err.Error()
			}
		} else if err != nil {
			last = err.Error()
		}
		if time.Since(began) > time.Minute {
			return fmt.Errorf("the LoadBalancer did not answer within a minute: %s", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Printf("a LoadBalancer Service, create to the first HTTP 200 on its address from this machine (docker): %.2fs\n\n", time.Since(began).Seconds())
	return nil
}
