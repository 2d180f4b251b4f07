package promserver

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/config"
	// Registers the kubernetes_sd_configs section with the config parser.
	_ "github.com/prometheus/prometheus/discovery/kubernetes"
)

// Targets says what the server scrapes and how it authenticates.
type Targets struct {
	// Cluster becomes the external label cluster.
	Cluster string
	// Self is this server's own host:port.
	Self string
	// APIServer is the apiserver's URL.
	APIServer string
	// Kubeconfig is what Kubernetes service discovery lists and watches with.
	Kubeconfig string
	// CAFile verifies the apiserver and the kubelets; CertFile and KeyFile
	// are the client certificate scrapes of both present.
	CAFile, CertFile, KeyFile string
	// Interval is the scrape and rule evaluation interval.
	Interval time.Duration
}

// kubeletPaths are the kubelet endpoints scraped, each its own scrape
// config; all carry job="kubelet" and a metrics_path label, as in
// kube-prometheus, so its dashboards and rules work unchanged.
var kubeletPaths = []string{"/metrics", "/metrics/cadvisor", "/metrics/resource", "/metrics/probes"}

// Config is the server's configuration for t, in Prometheus' own file
// format, parsed by Prometheus' own loader.
func Config(t Targets, logger *slog.Logger) (*config.Config, string, error) {
	text, err := configText(t)
	if err != nil {
		return nil, "", err
	}
	c, err := config.Load(text, logger)
	if err != nil {
		return nil, text, fmt.Errorf("load prometheus config: %w", err)
	}
	return c, text, nil
}

func configText(t Targets) (string, error) {
	api, err := url.Parse(t.APIServer)
	if err != nil || api.Host == "" {
		return "", fmt.Errorf("apiserver URL %q: not a URL with a host", t.APIServer)
	}
	if t.Interval <= 0 {
		return "", fmt.Errorf("scrape interval %s: use more than 0", t.Interval)
	}
	q := strconv.Quote
	tls := fmt.Sprintf("  tls_config: {ca_file: %s, cert_file: %s, key_file: %s}\n", q(t.CAFile), q(t.CertFile), q(t.KeyFile))
	sd := func(role string) string {
		return fmt.Sprintf("  kubernetes_sd_configs: [{role: %s, kubeconfig_file: %s}]\n", role, q(t.Kubeconfig))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n  external_labels: {cluster: %s}\n", promDuration(t.Interval), promDuration(t.Interval), q(t.Cluster))
	b.WriteString("scrape_configs:\n")
	fmt.Fprintf(&b, "- job_name: prometheus\n  static_configs: [{targets: [%s]}]\n", q(t.Self))
	fmt.Fprintf(&b, "- job_name: apiserver\n  scheme: https\n%s  static_configs: [{targets: [%s]}]\n", tls, q(api.Host))
	for _, p := range kubeletPaths {
		name := "kubelet"
		if p != "/metrics" {
			name += "-" + strings.TrimPrefix(p, "/metrics/")
		}
		fmt.Fprintf(&b, "- job_name: %s\n  scheme: https\n  metrics_path: %s\n  honor_labels: true\n  honor_timestamps: false\n%s%s", name, p, tls, sd("node"))
		b.WriteString("  relabel_configs:\n" +
			"  - {target_label: job, replacement: kubelet}\n" +
			"  - {source_labels: [__metrics_path__], target_label: metrics_path}\n" +
			"  - {source_labels: [__meta_kubernetes_node_name], target_label: node}\n")
	}
	// The annotations every Prometheus Helm chart and example honours.
	b.WriteString("- job_name: kubernetes-pods\n" + sd("pod") + "  relabel_configs:\n" +
		annotated("pod") +
		"  - {source_labels: [__meta_kubernetes_pod_phase], regex: 'Pending|Succeeded|Failed', action: drop}\n" +
		"  - {action: labelmap, regex: '__meta_kubernetes_pod_label_(.+)'}\n" +
		"  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}\n" +
		"  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}\n" +
		"  - {source_labels: [__meta_kubernetes_pod_node_name], target_label: node}\n")
	b.WriteString("- job_name: kubernetes-service-endpoints\n" + sd("endpointslice") + "  relabel_configs:\n" +
		annotated("service") +
		"  - {action: labelmap, regex: '__meta_kubernetes_service_label_(.+)'}\n" +
		"  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}\n" +
		"  - {source_labels: [__meta_kubernetes_service_name], target_label: service}\n" +
		"  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}\n" +
		"  - {source_labels: [__meta_kubernetes_pod_node_name], target_label: node}\n")
	return b.String(), nil
}

// annotated keeps the targets whose object (pod or service) says
// prometheus.io/scrape: "true" and applies its scheme, path and port.
func annotated(object string) string {
	a := "__meta_kubernetes_" + object + "_annotation_prometheus_io_"
	return "  - {source_labels: [" + a + "scrape], regex: \"true\", action: keep}\n" +
		"  - {source_labels: [" + a + "scheme], regex: '(https?)', target_label: __scheme__}\n" +
		"  - {source_labels: [" + a + "path], regex: '(.+)', target_label: __metrics_path__}\n" +
		"  - {source_labels: [__address__, " + a + "port], regex: '([^:]+)(?::\\d+)?;(\\d+)', replacement: '$1:$2', target_label: __address__}\n"
}

// promDuration writes d as Prometheus durations are written (1m30s, 15s).
func promDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
