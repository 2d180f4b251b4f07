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

const benchGateway = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bench}
spec:
  gatewayClassName: minik
  listeners: [{name: http, port: 80, protocol: HTTP}]
`

const benchRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bench}
spec:
  parentRefs: [{name: bench}]
  hostnames: [bench.example]
  rules: [{backendRefs: [{name: app-lb, port: 80}]}]
`

// benchHTTPRoute times an HTTPRoute, from kubectl apply to the first HTTP
// 200 through its (already programmed) Gateway from this machine. It
// uses the Service app-lb of benchLoadBalancer.
func benchHTTPRoute(ctx context.Context, mk minikCmd, dir, profile string) error {
	write := func(name, body string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(body), 0o644)
	}
	gw, err := write("gateway.yaml", benchGateway)
	if err != nil {
		return err
	}
	route, err := write("route.yaml", benchRoute)
	if err != nil {
		return err
	}
	if out, err := mk("kubectl", "-p", profile, "--", "apply", "-f", gw).CombinedOutput(); err != nil {
		return fmt.Errorf("apply the gateway: %w: %s", err, out)
	}
	if out, err := mk("kubectl", "-p", profile, "--", "wait", "gateway/bench", "--for=condition=Programmed", "--timeout=2m").CombinedOutput(); err != nil {
		return fmt.Errorf("wait for the gateway: %w: %s", err, out)
	}
	out, err := mk("kubectl", "-p", profile, "--", "get", "gateway", "bench", "-o", "jsonpath={.status.addresses[0].value}").Output()
	if err != nil {
		return fmt.Errorf("the gateway's address: %w", err)
	}
	addr := strings.TrimSpace(string(out))
	began := time.Now()
	if out, err := mk("kubectl", "-p", profile, "--", "apply", "-f", route).CombinedOutput(); err != nil {
		return fmt.Errorf("apply the route: %w: %s", err, out)
	}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	last := "no answer yet"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			return err
		}
		req.Host = "bench.example"
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Since(began) > time.Minute {
			return fmt.Errorf("the HTTPRoute did not answer within a minute: %s", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Printf("an HTTPRoute, kubectl apply to the first HTTP 200 through its Gateway from this machine (docker): %.2fs\n\n", time.Since(began).Seconds())
	return nil
}
