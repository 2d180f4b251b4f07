// Command bench measures `minik start` to ready: the median of several
// starts from scratch and of restarts of a stopped cluster, split by phase,
// and the peak RSS of the node processes; then pod throughput, many nodes,
// and the docker driver.
//
// It runs the real bin/minik, as a user would, in a private MINIK_HOME.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type sample struct {
	total  time.Duration
	phases map[string]time.Duration
	rssKiB int64
}

func run(ctx context.Context) error {
	runs := flag.Int("runs", 5, "starts of each kind")
	nodes := flag.Int("nodes", 1, "nodes per cluster")
	minik := flag.String("minik", "bin/minik", "minik binary")
	scenarios := flag.String("scenarios", "start,idle,prometheus,pods,nodes,claims,docker,kvm,autoscale", "what to measure: start, idle, prometheus (its cost when on), pods, nodes, claims (process driver), docker, kvm, autoscale (process and docker)")
	idleWindow := flag.Duration("idle-window", time.Minute, "idle scenario: how long CPU is measured, after 30 s of settling")
	replicas := flag.Int("replicas", 1000, "pods scenario: Deployment replicas on 3 nodes")
	scaleNodes := flag.Int("scale-nodes", 100, "nodes scenario: nodes in one cluster")
	peers := flag.String("peers", "", "instead of the scenarios, compare minik (process driver) with these tools in this one run: start, pods and nodes on each, and their ratios (known: kwok)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "minik-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Scenarios name their driver; the default for the rest is process.
	env := append(os.Environ(), "MINIK_HOME="+filepath.Join(dir, "home"), "KUBECONFIG="+filepath.Join(dir, "kubeconfig"), "MINIK_DRIVER=process")
	home := filepath.Join(dir, "home")
	mk := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, *minik, args...)
		cmd.Env = env
		return cmd
	}
	defer func() { _ = mk("delete", "--all").Run() }()

	if *peers != "" {
		providers := []provider{minikProvider{mk: mk, home: home, kubeconfig: filepath.Join(dir, "kubeconfig")}}
		for _, name := range strings.Split(*peers, ",") {
			switch name {
			case "kwok":
				kwok, err := newKwokProvider(ctx, dir)
				if err != nil {
					return fmt.Errorf("peer kwok: %w", err)
				}
				// The components outlive kwokctl: remove them even when
				// the run fails or is interrupted.
				defer func() { _ = kwok.removeAll(context.WithoutCancel(ctx)) }()
				providers = append(providers, kwok)
			default:
				return fmt.Errorf("unknown peer %q (known: kwok)", name)
			}
		}
		return comparePeers(ctx, providers, *runs, *replicas, *scaleNodes, *idleWindow)
	}

	for _, sc := range strings.Split(*scenarios, ",") {
		var err error
		switch sc {
		case "start":
			err = benchStart(ctx, mk, home, *runs, *nodes)
		case "idle":
			err = benchIdle(mk, home, 30*time.Second, *idleWindow)
		case "prometheus":
			err = benchPrometheus(mk, home, 30*time.Second, *idleWindow)
		case "pods":
			err = benchPods(ctx, mk, home, filepath.Join(dir, "kubeconfig"), *replicas)
		case "nodes":
			err = benchNodes(ctx, mk, home, *scaleNodes)
		case "claims":
			err = benchClaims(ctx, mk, dir, 100)
		case "docker":
			err = benchDocker(ctx, mk, dir, min(*runs, 3))
		case "kvm":
			err = benchKVM(ctx, *minik, env, dir, min(*runs, 3))
		case "autoscale":
			if err = benchAutoscale(ctx, mk, dir, "process", min(*runs, 3)); err == nil {
				err = benchAutoscale(ctx, mk, dir, "docker", min(*runs, 3))
			}
		default:
			err = fmt.Errorf("unknown scenario %q", sc)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
	}
	return nil
}

type minikCmd func(args ...string) *exec.Cmd

func benchStart(ctx context.Context, mk minikCmd, home string, runs, nodes int) error {
	startArgs := []string{"start", "-p", "bench", "-o", "json", "--nodes", strconv.Itoa(nodes)}
	var fresh, restart []sample
	for i := 0; i < runs; i++ {
		s, err := timeStart(mk(startArgs...), home)
		if err != nil {
			return fmt.Errorf("fresh start %d: %w", i+1, err)
		}
		fresh = append(fresh, s)
		if err := mk("stop", "-p", "bench").Run(); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		s, err = timeStart(mk("start", "-p", "bench", "-o", "json"), home)
		if err != nil {
			return fmt.Errorf("restart %d: %w", i+1, err)
		}
		restart = append(restart, s)
		if out, err := mk("delete", "-p", "bench").CombinedOutput(); err != nil {
			return fmt.Errorf("delete: %w: %s", err, out)
		}
	}
	fmt.Printf("minik start to ready (%d node(s), process driver; nodes Ready + default ServiceAccount), median of %d\n\n", nodes, runs)
	report("from scratch", fresh)
	report("restart of a stopped cluster", restart)
	return nil
}

// timeStart runs one `minik start -o json`, reads its step events and then
// the peak RSS of the cluster's node processes.
func timeStart(cmd *exec.Cmd, home string) (sample, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("%w: %s", err, stderr.String())
	}
	s := sample{total: time.Since(began), phases: map[string]time.Duration{}}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var ev struct {
			Step      string `json:"step"`
			Status    string `json:"status"`
			ElapsedMs int64  `json:"elapsedMs"`
		}
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Status == "done" {
			s.phases[ev.Step] = time.Duration(ev.ElapsedMs) * time.Millisecond
		}
	}
	if home == "" {
		// Container nodes: their processes are the engine's, not ours.
		return s, nil
	}
	rss, err := nodeRSS(home)
	if err != nil {
		return sample{}, err
	}
	s.rssKiB = rss
	return s, nil
}

// nodeRSS sums VmHWM (peak RSS) of the minik-node processes under home.
func nodeRSS(home string) (int64, error) {
	hwm, _, err := nodeMemory(home)
	return hwm, err
}

// nodeMemory sums, over the processes whose command line names home (a
// cluster's nodes, or a peer's components), the peak RSS
// (VmHWM, which counts the shared binary's pages once per process) and the
// PSS (each shared page split among its users: the memory really used).
func nodeMemory(home string) (hwmKiB, pssKiB int64, err error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, errors.New("memory figures need /proc (Linux)")
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(home)) {
			continue
		}
		hwmKiB += procField(filepath.Join("/proc", e.Name(), "status"), "VmHWM:")
		pssKiB += procField(filepath.Join("/proc", e.Name(), "smaps_rollup"), "Pss:")
	}
	return hwmKiB, pssKiB, nil
}

func procField(path, key string) int64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func report(title string, samples []sample) {
	var totals []time.Duration
	var rss []time.Duration // reuse median on KiB values
	phases := map[string][]time.Duration{}
	var order []string
	for _, s := range samples {
		totals = append(totals, s.total)
		rss = append(rss, time.Duration(s.rssKiB))
		for name, d := range s.phases {
			if _, ok := phases[name]; !ok {
				order = append(order, name)
			}
			phases[name] = append(phases[name], d)
		}
	}
	sort.Slice(order, func(i, j int) bool { return stepRank(order[i]) < stepRank(order[j]) })
	fmt.Printf("%s: %.2fs total (runs: %s)\n", title, median(totals).Seconds(), list(totals))
	for _, name := range order {
		fmt.Printf("  %-45s %6.2fs\n", name, median(phases[name]).Seconds())
	}
	if m := median(rss); m > 0 {
		fmt.Printf("  %-45s %6.0f MiB\n", "peak RSS of node processes", float64(m)/1024)
	}
	fmt.Println()
}

func list(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(parts, " ")
}

func stepRank(name string) int {
	for i, s := range []string{"prepare profile", "prepare driver", "generate certificates", "start nodes", "wait for apiserver", "merge kubeconfig", "wait for nodes and default service account"} {
		if s == name {
			return i
		}
	}
	return 100
}
