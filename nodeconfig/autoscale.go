package nodeconfig

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cluster autoscaling is split three ways. The CLI writes the settings
// into the ConfigMap AutoscalerSettings; the control plane's autoscaler
// decides, with the scheduler's own filters, how many workers the cluster
// needs and which idle, drained workers go, and writes that into the
// ConfigMap AutoscalerDecision; a host-side agent (`minik autoscale
// serve`) makes and deletes the nodes through the cluster's driver. Both
// ConfigMaps are in kube-system.
const (
	AutoscalerSettings = "minik-autoscaler"
	AutoscalerDecision = "minik-autoscaler-decision"
	// AutoscaledLabel is on the Nodes the autoscaler made.
	AutoscaledLabel = "minik.dev/autoscaled"
)

// ControlPlaneLabel marks the control-plane node, as kubeadm does: the
// autoscaler never removes it.
const ControlPlaneLabel = "node-role.kubernetes.io/control-plane"

// DefaultScaleDownAfter is how long a worker stays underused before the
// autoscaler removes it: short, for a laptop.
const DefaultScaleDownAfter = time.Minute

// Autoscale is the autoscaler's settings.
type Autoscale struct {
	// Min and Max bound the workers (nodes other than the control plane).
	Min, Max int
	// ScaleDownAfter is how long a worker must be underused (and its
	// pods fit elsewhere) before it is drained and deleted.
	ScaleDownAfter time.Duration
	// The capacity of each new worker, as the driver makes it.
	CPUMillis   int64
	MemoryBytes int64
	MaxPods     int
}

// Validate checks the bounds.
func (a Autoscale) Validate() error {
	switch {
	case a.Min < 0:
		return fmt.Errorf("min %d: use 0 or more workers", a.Min)
	case a.Max < 1:
		return fmt.Errorf("max %d: use at least 1 worker", a.Max)
	case a.Min > a.Max:
		return fmt.Errorf("min %d is more than max %d", a.Min, a.Max)
	case a.ScaleDownAfter < time.Second:
		return fmt.Errorf("scale-down delay %s: use at least 1s", a.ScaleDownAfter)
	case a.CPUMillis <= 0 || a.MemoryBytes <= 0 || a.MaxPods <= 0:
		return errors.New("a new worker's capacity is missing")
	}
	return nil
}

// Data is a as the settings ConfigMap's data.
func (a Autoscale) Data() map[string]string {
	return map[string]string{
		"min":            strconv.Itoa(a.Min),
		"max":            strconv.Itoa(a.Max),
		"scaleDownAfter": a.ScaleDownAfter.String(),
		"cpuMillis":      strconv.FormatInt(a.CPUMillis, 10),
		"memoryBytes":    strconv.FormatInt(a.MemoryBytes, 10),
		"maxPods":        strconv.Itoa(a.MaxPods),
	}
}

// ParseAutoscale reads the settings ConfigMap's data.
func ParseAutoscale(data map[string]string) (Autoscale, error) {
	var a Autoscale
	var err error
	ints := []struct {
		key string
		dst *int
	}{{"min", &a.Min}, {"max", &a.Max}, {"maxPods", &a.MaxPods}}
	for _, f := range ints {
		if *f.dst, err = strconv.Atoi(data[f.key]); err != nil {
			return Autoscale{}, fmt.Errorf("autoscaler setting %s=%q: %w", f.key, data[f.key], err)
		}
	}
	if a.CPUMillis, err = strconv.ParseInt(data["cpuMillis"], 10, 64); err != nil {
		return Autoscale{}, fmt.Errorf("autoscaler setting cpuMillis=%q: %w", data["cpuMillis"], err)
	}
	if a.MemoryBytes, err = strconv.ParseInt(data["memoryBytes"], 10, 64); err != nil {
		return Autoscale{}, fmt.Errorf("autoscaler setting memoryBytes=%q: %w", data["memoryBytes"], err)
	}
	if a.ScaleDownAfter, err = time.ParseDuration(data["scaleDownAfter"]); err != nil {
		return Autoscale{}, fmt.Errorf("autoscaler setting scaleDownAfter=%q: %w", data["scaleDownAfter"], err)
	}
	return a, a.Validate()
}

// AutoscaleDecision is what the control plane's autoscaler asks of the
// host side.
type AutoscaleDecision struct {
	// Workers is how many workers the cluster should have, counting
	// neither the control plane nor the workers in Remove.
	Workers int
	// Remove names drained workers to delete.
	Remove []string
}

// Data is d as the decision ConfigMap's data.
func (d AutoscaleDecision) Data() map[string]string {
	return map[string]string{"workers": strconv.Itoa(d.Workers), "remove": strings.Join(d.Remove, ",")}
}

// ParseAutoscaleDecision reads the decision ConfigMap's data.
func ParseAutoscaleDecision(data map[string]string) (AutoscaleDecision, error) {
	n, err := strconv.Atoi(data["workers"])
	if err != nil || n < 0 {
		return AutoscaleDecision{}, fmt.Errorf("autoscaler decision workers=%q: not a count", data["workers"])
	}
	d := AutoscaleDecision{Workers: n}
	for _, name := range strings.Split(data["remove"], ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(d.Remove, name) {
			d.Remove = append(d.Remove, name)
		}
	}
	return d, nil
}
