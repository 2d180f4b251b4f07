package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"minik.dev/minik/nodeconfig"
)

// hostPoll is how often a node host looks for changes without a signal.
const hostPoll = 500 * time.Millisecond

// RunHost runs the agents of many simulated nodes in this one process, so a
// hundred nodes cost megabytes, not a process each. It reconciles on every
// value from reload and every hostPoll, and stops every agent when ctx ends.
func RunHost(ctx context.Context, dir string, reload <-chan os.Signal) error {
	running := filepath.Join(dir, nodeconfig.HostRunningDir)
	if err := os.RemoveAll(running); err != nil {
		return fmt.Errorf("reset host state: %w", err)
	}
	if err := os.MkdirAll(running, 0o700); err != nil {
		return fmt.Errorf("reset host state: %w", err)
	}
	// Signals sent before the handler was installed would have killed this
	// process: tell the driver from when on it may send them.
	if err := os.WriteFile(filepath.Join(dir, nodeconfig.HostReadyFile), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return fmt.Errorf("mark host ready: %w", err)
	}
	h := &host{dir: dir, agents: map[string]*hostedAgent{}}
	defer h.stopAll()
	tick := time.NewTicker(hostPoll)
	defer tick.Stop()
	for {
		h.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-reload:
		case <-tick.C:
		}
	}
}

type host struct {
	dir    string
	mu     sync.Mutex
	agents map[string]*hostedAgent
}

type hostedAgent struct {
	config string
	cancel context.CancelFunc
	done   chan struct{}
}

func (h *host) marker(name string) string {
	return filepath.Join(h.dir, nodeconfig.HostRunningDir, name)
}

// desired reads which nodes should run: name -> config path.
func (h *host) desired() map[string]string {
	entries, err := os.ReadDir(filepath.Join(h.dir, nodeconfig.HostDesiredDir))
	want := map[string]string{}
	if err != nil {
		return want
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(h.dir, nodeconfig.HostDesiredDir, e.Name()))
		if err == nil {
			want[e.Name()] = strings.TrimSpace(string(data))
		}
	}
	return want
}

func (h *host) reconcile(ctx context.Context) {
	want := h.desired()
	h.mu.Lock()
	var stopping []*hostedAgent
	for name, a := range h.agents {
		if cfg, ok := want[name]; !ok || cfg != a.config {
			stopping = append(stopping, a)
			delete(h.agents, name)
		}
	}
	h.mu.Unlock()
	for _, a := range stopping {
		a.cancel()
		<-a.done
	}
	for name, cfgPath := range want {
		h.mu.Lock()
		_, ok := h.agents[name]
		h.mu.Unlock()
		if ok {
			continue
		}
		if err := h.start(ctx, name, cfgPath); err != nil {
			klog.ErrorS(err, "start hosted node", "node", name)
		}
	}
}

func (h *host) start(ctx context.Context, name, cfgPath string) error {
	cfg, err := nodeconfig.Load(cfgPath)
	if err != nil {
		return err
	}
	if cfg.Name != name {
		return fmt.Errorf("config %s is for node %s, not %s", cfgPath, cfg.Name, name)
	}
	agent, err := New(cfg)
	if err != nil {
		return err
	}
	// Mark first: an agent is registered only together with the goroutine
	// that closes its done channel, or stopping it would wait forever.
	if err := os.WriteFile(h.marker(name), []byte(cfgPath), 0o600); err != nil {
		return fmt.Errorf("mark node running: %w", err)
	}
	actx, cancel := context.WithCancel(ctx)
	a := &hostedAgent{config: cfgPath, cancel: cancel, done: make(chan struct{})}
	h.mu.Lock()
	h.agents[name] = a
	h.mu.Unlock()
	klog.InfoS("starting hosted node", "node", name)
	go func() {
		defer close(a.done)
		err := agent.Run(actx)
		_ = os.Remove(h.marker(name))
		if err != nil && !errors.Is(err, context.Canceled) && actx.Err() == nil {
			klog.ErrorS(err, "hosted node stopped", "node", name)
		}
		// A node that ended on its own is started again by a later
		// reconcile, as long as it is still desired.
		h.mu.Lock()
		if h.agents[name] == a {
			delete(h.agents, name)
		}
		h.mu.Unlock()
	}()
	return nil
}

func (h *host) stopAll() {
	h.mu.Lock()
	agents := h.agents
	h.agents = map[string]*hostedAgent{}
	h.mu.Unlock()
	for _, a := range agents {
		a.cancel()
	}
	for _, a := range agents {
		<-a.done
	}
}
