package cluster

import (
	"context"
	"fmt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"minik.dev/minik/nodeconfig"
)

// Addon names.
const AddonPrometheus = "prometheus"

// Addons lists what can be turned on in a cluster.
var Addons = []string{AddonPrometheus}

// AddonStatus is an addon of a running cluster.
type AddonStatus struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// URLs are where this machine reaches it, once it serves.
	URLs []string `json:"urls,omitempty"`
	// Settings are its settings, when enabled.
	Settings map[string]string `json:"settings,omitempty"`
}

// SetPrometheus turns the Prometheus server of a running cluster on (s)
// or off (nil). Its data stays in the control-plane node either way.
func (m *Manager) SetPrometheus(ctx context.Context, profile string, s *nodeconfig.Prometheus) error {
	p, d, lock, err := m.openProfile(profile)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := m.requireRunning(ctx, d, p); err != nil {
		return err
	}
	return m.applyPrometheus(ctx, p, s)
}

// applyPrometheus writes or deletes the server's settings ConfigMap; the
// control plane starts or stops the server as it sees it.
func (m *Manager) applyPrometheus(ctx context.Context, p *Profile, s *nodeconfig.Prometheus) error {
	if s != nil {
		if err := s.Validate(); err != nil {
			return &InvalidOptionError{Field: "Prometheus", Value: fmt.Sprint(s.Data()), Reason: err.Error()}
		}
	}
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return err
	}
	if s == nil {
		err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Delete(ctx, nodeconfig.PrometheusSettings, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("turn prometheus off: %w", err)
		}
		return nil
	}
	if err := writeConfigMap(ctx, client, nodeconfig.PrometheusSettings, s.Data()); err != nil {
		return fmt.Errorf("turn prometheus on: %w", err)
	}
	return nil
}

// AddonStatuses says which addons a running cluster has on.
func (m *Manager) AddonStatuses(ctx context.Context, profile string) ([]AddonStatus, error) {
	if err := ValidateName(profile); err != nil {
		return nil, err
	}
	p, err := m.store.Load(profile)
	if err != nil {
		return nil, err
	}
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		return nil, err
	}
	if err := m.requireRunning(ctx, d, p); err != nil {
		return nil, err
	}
	client, err := newAdminClient(m.store.AdminKubeconfig(p.Name))
	if err != nil {
		return nil, err
	}
	prom := AddonStatus{Name: AddonPrometheus}
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, nodeconfig.PrometheusSettings, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("read cluster %s's addons: %w", p.Name, err)
	default:
		prom.Enabled, prom.Settings = true, cm.Data
		u, err := nodeServedURL(ctx, client, metav1.NamespaceSystem, nodeconfig.PrometheusService)
		if err != nil {
			return nil, err
		}
		if u != "" {
			prom.URLs = []string{u}
		}
	}
	return []AddonStatus{prom}, nil
}

// nodeServedURL is the URL of a Service whose endpoint is a node address
// served by minik itself (label NodeServedLabel): this machine reaches it
// on every driver, simulated pods or not.
func nodeServedURL(ctx context.Context, client kubernetes.Interface, namespace, name string) (string, error) {
	svc, err := client.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get service %s/%s: %w", namespace, name, err)
	}
	return svc.Annotations[nodeconfig.NodeURLAnnotation], nil
}
