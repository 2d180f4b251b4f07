package promserver

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minik.dev/minik/nodeconfig"
)

func testTargets() Targets {
	return Targets{
		Cluster: "dev", Self: "127.0.0.2:9090", APIServer: "https://127.0.0.1:6443",
		Kubeconfig: "/pki/admin.kubeconfig", CAFile: "/pki/ca.crt", CertFile: "/pki/c.crt", KeyFile: "/pki/c.key",
		Interval: 15 * time.Second,
	}
}

func jobs(t *testing.T, c *config.Config) map[string]*config.ScrapeConfig {
	t.Helper()
	scs, err := c.GetScrapeConfigs()
	require.NoError(t, err)
	m := map[string]*config.ScrapeConfig{}
	for _, sc := range scs {
		m[sc.JobName] = sc
	}
	return m
}

func TestConfigJobs(t *testing.T) {
	c, _, err := Config(testTargets(), nil)
	require.NoError(t, err)
	got := jobs(t, c)
	assert.ElementsMatch(t, []string{"prometheus", "apiserver", "kubelet", "kubelet-cadvisor", "kubelet-resource", "kubelet-probes", "kubernetes-pods", "kubernetes-service-endpoints"}, keys(got))
	assert.Equal(t, "/metrics/cadvisor", got["kubelet-cadvisor"].MetricsPath)
	assert.Equal(t, "https", got["apiserver"].Scheme)
	assert.Equal(t, "/pki/c.crt", got["kubelet"].HTTPClientConfig.TLSConfig.CertFile)
	assert.Equal(t, "/pki/ca.crt", got["apiserver"].HTTPClientConfig.TLSConfig.CAFile)
	assert.Equal(t, "dev", c.GlobalConfig.ExternalLabels.Get("cluster"))
	assert.Equal(t, "15s", c.GlobalConfig.ScrapeInterval.String())
}

func keys(m map[string]*config.ScrapeConfig) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

func TestConfigBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		change  func(*Targets)
		wantErr string
	}{
		{"no apiserver", func(t *Targets) { t.APIServer = "" }, "not a URL with a host"},
		{"no interval", func(t *Targets) { t.Interval = 0 }, "use more than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			targets := testTargets()
			tc.change(&targets)
			_, _, err := Config(targets, nil)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// The relabelling is what decides what is scraped: run Prometheus' own
// relabeller over what Kubernetes discovery reports.
func TestConfigRelabelling(t *testing.T) {
	c, _, err := Config(testTargets(), nil)
	require.NoError(t, err)
	got := jobs(t, c)
	cases := []struct {
		name string
		job  string
		in   map[string]string
		// want are labels of the kept target; nil: dropped.
		want map[string]string
	}{
		{
			name: "kubelet cadvisor", job: "kubelet-cadvisor",
			in:   map[string]string{"__address__": "127.0.0.2:10250", "__metrics_path__": "/metrics/cadvisor", "__scheme__": "https", "job": "kubelet-cadvisor", "__meta_kubernetes_node_name": "dev"},
			want: map[string]string{"job": "kubelet", "node": "dev", "metrics_path": "/metrics/cadvisor", "__address__": "127.0.0.2:10250"},
		},
		{
			name: "annotated pod, port from its annotation", job: "kubernetes-pods",
			in: map[string]string{
				"__address__": "10.244.1.5:8080", "__metrics_path__": "/metrics", "__scheme__": "http", "job": "kubernetes-pods",
				"__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
				"__meta_kubernetes_pod_annotation_prometheus_io_port":   "9102",
				"__meta_kubernetes_pod_annotation_prometheus_io_path":   "/stats",
				"__meta_kubernetes_pod_phase":                           "Running",
				"__meta_kubernetes_namespace":                           "shop", "__meta_kubernetes_pod_name": "web-1",
				"__meta_kubernetes_pod_label_app": "web", "__meta_kubernetes_pod_node_name": "dev-m02",
			},
			want: map[string]string{"__address__": "10.244.1.5:9102", "__metrics_path__": "/stats", "namespace": "shop", "pod": "web-1", "app": "web", "node": "dev-m02"},
		},
		{
			name: "pod without the annotation", job: "kubernetes-pods",
			in: map[string]string{"__address__": "10.244.1.5:8080", "job": "kubernetes-pods", "__meta_kubernetes_pod_phase": "Running"},
		},
		{
			name: "annotated pod that finished", job: "kubernetes-pods",
			in: map[string]string{"__address__": "10.244.1.5:8080", "job": "kubernetes-pods", "__meta_kubernetes_pod_phase": "Succeeded",
				"__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true"},
		},
		{
			name: "annotated service endpoint over https", job: "kubernetes-service-endpoints",
			in: map[string]string{"__address__": "10.244.2.7:8443", "__scheme__": "http", "job": "kubernetes-service-endpoints",
				"__meta_kubernetes_service_annotation_prometheus_io_scrape": "true", "__meta_kubernetes_service_annotation_prometheus_io_scheme": "https",
				"__meta_kubernetes_namespace": "shop", "__meta_kubernetes_service_name": "api", "__meta_kubernetes_pod_name": "api-0"},
			want: map[string]string{"__address__": "10.244.2.7:8443", "__scheme__": "https", "service": "api", "pod": "api-0", "namespace": "shop"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := got[tc.job]
			require.NotNil(t, sc)
			b := labels.NewBuilder(labels.FromMap(tc.in))
			keep := relabel.ProcessBuilder(b, sc.RelabelConfigs...)
			out := b.Labels()
			if tc.want == nil {
				assert.False(t, keep, "kept %s", out)
				return
			}
			require.True(t, keep)
			for k, v := range tc.want {
				assert.Equal(t, v, out.Get(k), k)
			}
		})
	}
}

func TestRuleFiles(t *testing.T) {
	for name, want := range map[string]bool{
		"alerts.rules.yaml": true, "alerts.rules.yml": true, "rules.yaml": false, "app.yaml": false, "x.rules.json": false,
	} {
		assert.Equal(t, want, nodeconfig.IsPrometheusRuleFile(name), name)
	}
	dir := t.TempDir()
	for _, f := range []string{"a.rules.yaml", "sub/b.rules.yml", ".hidden/c.rules.yaml", "app.yaml"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
	}
	files, err := ruleFiles(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{filepath.Join(dir, "a.rules.yaml"), filepath.Join(dir, "sub/b.rules.yml")}, files)
	files, err = ruleFiles(filepath.Join(dir, "absent"))
	require.NoError(t, err)
	assert.Empty(t, files)
}
