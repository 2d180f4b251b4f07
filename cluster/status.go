package cluster

import (
	"context"
	"fmt"
	"time"

	"minik.dev/minik/drivers"
	"minik.dev/minik/pki"
)

// Status is what `minik status -o json` prints.
type Status struct {
	Name       string       `json:"name"`
	Driver     string       `json:"driver"`
	State      string       `json:"state"`
	APIServer  string       `json:"apiServer"`
	Kubeconfig string       `json:"kubeconfig"`
	Context    string       `json:"context"`
	Nodes      []NodeStatus `json:"nodes"`
	// Autoscale is the cluster's autoscaling, when it is on.
	Autoscale *ProfileAutoscale `json:"autoscale,omitempty"`
	// Certificates says when the first of the cluster's certificates
	// expires; unset when they cannot be read.
	Certificates *CertificatesStatus `json:"certificates,omitempty"`
}

// CertificatesStatus is when the first of a cluster's certificates
// expires. A start within pki.RenewBefore of that renews them.
type CertificatesStatus struct {
	First    string    `json:"first"`
	NotAfter time.Time `json:"notAfter"`
	// RenewedAtStart: the next `minik start` renews them (they are within
	// pki.RenewBefore of expiring, or expired).
	RenewedAtStart bool `json:"renewedAtStart"`
}

// NodeStatus is one node's line in a Status.
type NodeStatus struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	State string `json:"state"`
	IP    string `json:"ip"`
	// Host and Ready are set for a node that joined from another machine:
	// the machine it runs on and its Ready condition.
	Host  string `json:"host,omitempty"`
	Ready string `json:"ready,omitempty"`
}

// Status reports a profile's state as its driver sees it.
func (m *Manager) Status(ctx context.Context, name string) (*Status, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	p, err := m.store.Load(name)
	if err != nil {
		return nil, err
	}
	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		return nil, err
	}
	return m.status(ctx, d, p), nil
}

// List reports every profile; a profile that cannot be read is reported
// with state "Corrupt" rather than hiding the others.
func (m *Manager) List(ctx context.Context) ([]Status, error) {
	names, err := m.store.Names()
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(names))
	for _, name := range names {
		st, err := m.Status(ctx, name)
		if err != nil {
			out = append(out, Status{Name: name, State: "Corrupt", Nodes: []NodeStatus{}})
			continue
		}
		out = append(out, *st)
	}
	return out, nil
}

func (m *Manager) status(ctx context.Context, d drivers.Driver, p *Profile) *Status {
	st := &Status{
		Name:       p.Name,
		Driver:     p.Driver,
		State:      drivers.StateStopped,
		APIServer:  p.APIServerURL(),
		Kubeconfig: p.Kubeconfig,
		Context:    p.Name,
		Nodes:      []NodeStatus{},
		Autoscale:  p.Autoscale,
	}
	if first, at, err := pki.FirstExpiry(m.store.PKIDir(p.Name)); err == nil && first != "" {
		st.Certificates = &CertificatesStatus{First: first, NotAfter: at, RenewedAtStart: time.Until(at) < pki.RenewBefore}
	}
	for _, n := range p.Nodes {
		state, err := d.NodeState(ctx, m.driverNode(p, n))
		if err != nil {
			state = "Unknown"
		}
		if n.Role == p.ControlPlane().Role && n.Name == p.ControlPlane().Name && state == drivers.StateRunning {
			st.State = drivers.StateRunning
		}
		st.Nodes = append(st.Nodes, NodeStatus{Name: n.Name, Role: n.Role, State: state, IP: n.IP})
	}
	// Only a cluster that listens beyond loopback can have joined nodes:
	// the others' status asks the driver alone.
	if st.State == drivers.StateRunning && p.ListenAddress != "" {
		nodes, err := m.listNodeObjects(ctx, p)
		if err != nil {
			m.report.Note(fmt.Sprintf("the apiserver of %s does not answer, so nodes joined from other machines are not listed: %v", p.Name, err))
		}
		for _, n := range joinedNodes(nodes) {
			info := joinedInfo(n)
			st.Nodes = append(st.Nodes, NodeStatus{Name: info.Name, Role: info.Role, State: info.State, IP: info.IP, Host: info.Host, Ready: readyState(n)})
		}
	}
	return st
}
