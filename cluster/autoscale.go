package cluster

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"minik.dev/minik/background"
	"minik.dev/minik/nodeconfig"
)

// AutoscaleOptions turn on cluster autoscaling: the control plane asks for
// workers when pods do not fit and removes idle ones, between Min and Max
// workers (nodes other than the control plane).
type AutoscaleOptions struct {
	Min, Max int
	// ScaleDownAfter is how long a worker stays underused before it goes;
	// 0 is nodeconfig.DefaultScaleDownAfter.
	ScaleDownAfter time.Duration
}

// Validate returns an *InvalidOptionError for bounds out of range.
func (o AutoscaleOptions) Validate() error {
	value := fmt.Sprintf("%d:%d", o.Min, o.Max)
	switch {
	case o.Min < 0 || o.Max < 1:
		return &InvalidOptionError{Field: "Autoscale", Value: value, Reason: "use MIN:MAX workers, MIN 0 or more and MAX 1 or more"}
	case o.Min > o.Max:
		return &InvalidOptionError{Field: "Autoscale", Value: value, Reason: "MIN is more than MAX"}
	case o.Max >= MaxNodes:
		return &InvalidOptionError{Field: "Autoscale", Value: value, Reason: fmt.Sprintf("a cluster has at most %d nodes, the control plane included", MaxNodes)}
	case o.ScaleDownAfter != 0 && o.ScaleDownAfter < time.Second:
		return &InvalidOptionError{Field: "ScaleDownAfter", Value: o.ScaleDownAfter.String(), Reason: "use at least 1s"}
	}
	return nil
}

// ProfileAutoscale is a profile's autoscaling, kept for every start.
type ProfileAutoscale struct {
	Min                   int `json:"min"`
	Max                   int `json:"max"`
	ScaleDownAfterSeconds int `json:"scaleDownAfterSeconds"`
}

func (o AutoscaleOptions) profile() *ProfileAutoscale {
	after := o.ScaleDownAfter
	if after == 0 {
		after = nodeconfig.DefaultScaleDownAfter
	}
	return &ProfileAutoscale{Min: o.Min, Max: o.Max, ScaleDownAfterSeconds: int(after.Seconds())}
}

// settings is what the control plane's autoscaler reads.
func (p *Profile) autoscaleSettings() nodeconfig.Autoscale {
	a := p.Autoscale
	return nodeconfig.Autoscale{Min: a.Min, Max: a.Max, ScaleDownAfter: time.Duration(a.ScaleDownAfterSeconds) * time.Second,
		CPUMillis: p.NodeDefaults.CPUMillis, MemoryBytes: p.NodeDefaults.MemoryBytes, MaxPods: p.NodeDefaults.MaxPods}
}

// checkAutoscaleMemory refuses a MAX whose workers, each given the
// profile's node memory, would need more memory than this machine has.
func checkAutoscaleMemory(p *Profile, o AutoscaleOptions) error {
	total := totalMemory()
	if total <= 0 {
		return nil
	}
	need := int64(o.Max) * p.NodeDefaults.MemoryBytes
	if need <= total {
		return nil
	}
	fit := total / max(p.NodeDefaults.MemoryBytes, 1)
	return &InvalidOptionError{Field: "Autoscale", Value: fmt.Sprintf("%d:%d", o.Min, o.Max),
		Reason: fmt.Sprintf("%d workers of %s each need %s, and this machine has %s: use a MAX of at most %d, or create the cluster with --autoscale (its nodes are then sized for MAX) or a smaller --memory",
			o.Max, gib(p.NodeDefaults.MemoryBytes), gib(need), gib(total), fit)}
}

func gib(n int64) string { return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB" }

// AgentCommand is the command of a profile's autoscaler agent (the CLI's
// `minik autoscale serve`), which makes and deletes the nodes the
// control plane decides on, for as long as the cluster runs. marker must
// be one of its arguments: it is how the agent is found again.
type AgentCommand func(profile, marker string) *exec.Cmd

func (s Store) agentFiles(profile string) (pidFile, logFile string) {
	dir := filepath.Join(s.ProfileDir(profile), "autoscaler")
	return filepath.Join(dir, "pid"), filepath.Join(dir, "agent.log")
}

// agentMarker is an argument of the agent's command line, and of no
// other process's (the CLI's flag that names its profile).
func agentMarker(profile string) string { return "--agent-of=" + profile }

// SetAutoscale turns a running cluster's autoscaling on (o) or off (nil).
func (m *Manager) SetAutoscale(ctx context.Context, profile string, o *AutoscaleOptions) error {
	if o != nil {
		if err := o.Validate(); err != nil {
			return err
		}
	}
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := m.requireRunning(ctx, d, p); err != nil {
		return err
	}
	if o == nil {
		p.Autoscale = nil
	} else {
		if err := checkAutoscaleMemory(p, *o); err != nil {
			return err
		}
		if m.agent == nil {
			return errors.New("this build of minik cannot run the autoscaler's agent")
		}
		p.Autoscale = o.profile()
	}
	if err := m.store.Save(p); err != nil {
		return err
	}
	return m.applyAutoscale(ctx, p)
}

// applyAutoscale makes the cluster's autoscaling what the profile says:
// the settings in the API and the agent running, or neither.
func (m *Manager) applyAutoscale(ctx context.Context, p *Profile) error {
	pidFile, logFile := m.store.agentFiles(p.Name)
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return err
	}
	cms := client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	if p.Autoscale == nil {
		if err := background.Stop(pidFile, agentMarker(p.Name), 10*time.Second); err != nil {
			return fmt.Errorf("stop the autoscaler's agent: %w", err)
		}
		for _, name := range []string{nodeconfig.AutoscalerSettings, nodeconfig.AutoscalerDecision} {
			if err := cms.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("turn autoscaling off: %w", err)
			}
		}
		return nil
	}
	if err := writeConfigMap(ctx, client, nodeconfig.AutoscalerSettings, p.autoscaleSettings().Data()); err != nil {
		return fmt.Errorf("turn autoscaling on: %w", err)
	}
	if _, ok := background.Running(pidFile, agentMarker(p.Name)); ok {
		return nil
	}
	if m.agent == nil {
		return errors.New("this build of minik cannot run the autoscaler's agent")
	}
	if err := background.Start(m.agent(p.Name, agentMarker(p.Name)), pidFile, logFile, agentMarker(p.Name)); err != nil {
		return fmt.Errorf("start the autoscaler's agent: %w", err)
	}
	return nil
}

// stopAgent stops the profile's agent before the cluster stops, so that
// it does not make a node of a cluster going away.
func (m *Manager) stopAgent(profile string) error {
	pidFile, _ := m.store.agentFiles(profile)
	if err := background.Stop(pidFile, agentMarker(profile), 10*time.Second); err != nil {
		return fmt.Errorf("stop the autoscaler's agent: %w", err)
	}
	return nil
}

func writeConfigMap(ctx context.Context, client kubernetes.Interface, name string, data map[string]string) error {
	cms := client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem}, Data: data}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cm.Data = data
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}

// agentPoll is how often the agent reads the control plane's decision.
const agentPoll = 250 * time.Millisecond

// RunAutoscaleAgent makes and deletes the profile's workers as the
// control plane's autoscaler decides, until ctx is done: it adds workers
// while there are fewer than asked for and deletes those it is told to.
// Failures go to logf and are tried again at the next look.
func (m *Manager) RunAutoscaleAgent(ctx context.Context, profile string, logf func(format string, args ...any)) error {
	if err := ValidateName(profile); err != nil {
		return err
	}
	client, err := newAdminClient(m.store.AdminKubeconfig(profile))
	if err != nil {
		return err
	}
	t := time.NewTicker(agentPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, nodeconfig.AutoscalerDecision, metav1.GetOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) && ctx.Err() == nil {
				logf("read the decision: %v", err)
			}
			continue
		}
		d, err := nodeconfig.ParseAutoscaleDecision(cm.Data)
		if err != nil {
			logf("%v", err)
			continue
		}
		if err := m.actOn(ctx, profile, d, logf); err != nil && ctx.Err() == nil {
			logf("%v", err)
		}
	}
}

// actOn deletes the workers d removes, then adds workers up to d.Workers.
func (m *Manager) actOn(ctx context.Context, profile string, d nodeconfig.AutoscaleDecision, logf func(string, ...any)) error {
	p, err := m.store.Load(profile)
	if err != nil {
		return err
	}
	workers := 0
	for _, n := range p.Nodes {
		if n.Role != nodeconfig.RoleWorker {
			continue
		}
		if slices.Contains(d.Remove, n.Name) {
			logf("deleting idle worker %s", n.Name)
			if err := m.DeleteNode(ctx, profile, n.Name); err != nil {
				return fmt.Errorf("delete worker %s: %w", n.Name, err)
			}
			logf("deleted worker %s", n.Name)
			continue
		}
		workers++
	}
	for ; workers < d.Workers; workers++ {
		started := time.Now()
		info, err := m.AddNode(ctx, profile, AddNodeOptions{Autoscaled: true})
		if err != nil {
			return fmt.Errorf("add a worker (%d of %d): %w", workers+1, d.Workers, err)
		}
		logf("added worker %s in %s", info.Name, time.Since(started).Round(10*time.Millisecond))
	}
	return nil
}
