package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// benchPrometheus measures what the Prometheus server costs when on: a
// 1-node cluster started with --prometheus, the time until the server
// answers ready, then its idle CPU and memory as the idle scenario
// measures them (compare with that scenario's line).
func benchPrometheus(mk minikCmd, home string, settle, window time.Duration) error {
	began := time.Now()
	if out, err := mk("start", "-p", "prom", "--prometheus").CombinedOutput(); err != nil {
		return fmt.Errorf("start: %w: %s", err, out)
	}
	started := time.Since(began)
	defer func() { _ = mk("delete", "-p", "prom").Run() }()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := mk("service", "prometheus", "-n", "kube-system", "-p", "prom").Output()
		if err == nil {
			resp, err := http.Get(strings.TrimSpace(string(out)) + "/-/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus not ready a minute after start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	ready := time.Since(began)
	cost, err := measureIdle(home+"/profiles/prom/", settle, window)
	if err != nil {
		return err
	}
	fmt.Printf("1-node cluster with --prometheus: started in %.2fs, prometheus ready %.2fs after the start began;\n"+
		"  idle (after %s settling, over %s): %s\n\n", started.Seconds(), ready.Seconds(), settle, window, cost)
	return nil
}
