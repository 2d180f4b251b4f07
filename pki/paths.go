// Package pki creates and refreshes the certificates and keys of a minik
// cluster, laid out like kubeadm's /etc/kubernetes/pki.
package pki

import "path/filepath"

// Paths gives the location of every file of a cluster's PKI.
type Paths struct {
	Dir string

	CACert string
	CAKey  string

	FrontProxyCACert     string
	FrontProxyCAKey      string
	FrontProxyClientCert string
	FrontProxyClientKey  string

	SAKey string
	SAPub string

	APIServerCert              string
	APIServerKey               string
	APIServerKubeletClientCert string
	APIServerKubeletClientKey  string

	AdminCert             string
	AdminKey              string
	ControllerManagerCert string
	ControllerManagerKey  string
	SchedulerCert         string
	SchedulerKey          string
}

// Layout returns the paths of the PKI in dir without touching the disk, for
// processes that only read the files.
func Layout(dir string) *Paths {
	j := func(name string) string { return filepath.Join(dir, name) }
	return &Paths{
		Dir: dir,

		CACert: j("ca.crt"),
		CAKey:  j("ca.key"),

		FrontProxyCACert:     j("front-proxy-ca.crt"),
		FrontProxyCAKey:      j("front-proxy-ca.key"),
		FrontProxyClientCert: j("front-proxy-client.crt"),
		FrontProxyClientKey:  j("front-proxy-client.key"),

		SAKey: j("sa.key"),
		SAPub: j("sa.pub"),

		APIServerCert:              j("apiserver.crt"),
		APIServerKey:               j("apiserver.key"),
		APIServerKubeletClientCert: j("apiserver-kubelet-client.crt"),
		APIServerKubeletClientKey:  j("apiserver-kubelet-client.key"),

		AdminCert:             j("admin.crt"),
		AdminKey:              j("admin.key"),
		ControllerManagerCert: j("controller-manager.crt"),
		ControllerManagerKey:  j("controller-manager.key"),
		SchedulerCert:         j("scheduler.crt"),
		SchedulerKey:          j("scheduler.key"),
	}
}

// KubeletClientCert is the certificate node uses to talk to the apiserver.
func (p *Paths) KubeletClientCert(node string) string {
	return filepath.Join(p.Dir, "kubelet-"+node+"-client.crt")
}

// KubeletClientKey is the key of KubeletClientCert.
func (p *Paths) KubeletClientKey(node string) string {
	return filepath.Join(p.Dir, "kubelet-"+node+"-client.key")
}

// KubeletServingCert is the certificate of node's kubelet HTTPS endpoint.
func (p *Paths) KubeletServingCert(node string) string {
	return filepath.Join(p.Dir, "kubelet-"+node+"-serving.crt")
}

// KubeletServingKey is the key of KubeletServingCert.
func (p *Paths) KubeletServingKey(node string) string {
	return filepath.Join(p.Dir, "kubelet-"+node+"-serving.key")
}
