package nodeconfig

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// IsPrometheusRuleFile says whether a file of the manifests folder holds
// Prometheus rules (NAME.rules.yaml or .yml: a rule file, or a
// PrometheusRule object) for the Prometheus server, rather than objects
// to apply.
func IsPrometheusRuleFile(name string) bool {
	return strings.HasSuffix(name, ".rules.yaml") || strings.HasSuffix(name, ".rules.yml")
}

// The Prometheus server runs in the control-plane node while the ConfigMap
// PrometheusSettings exists in kube-system; the CLI writes and deletes it.
// The server is reached through the Service PrometheusService in
// kube-system, whose endpoint is the control-plane node's own address.
const (
	PrometheusSettings = "minik-prometheus"
	PrometheusService  = "prometheus"
	// PrometheusPort is the Service's port and, when free on the node's
	// address, the port the server listens on.
	PrometheusPort = 9090
	// NodeServedLabel marks a Service whose endpoints are node addresses
	// served by minik itself: this machine reaches it on every driver, at
	// the URL in the annotation NodeURLAnnotation (an EndpointSlice cannot
	// hold the loopback addresses of process-driver nodes).
	NodeServedLabel   = "minik.dev/node-served"
	NodeURLAnnotation = "minik.dev/node-url"
)

// Defaults bound the TSDB: a day of history, as kube-prometheus keeps, and
// never more than 1 GiB of a laptop's disk.
const (
	DefaultPrometheusRetention      = 24 * time.Hour
	DefaultPrometheusRetentionBytes = 1 << 30
	DefaultPrometheusScrapeInterval = 15 * time.Second
)

// Prometheus is the Prometheus server's settings.
type Prometheus struct {
	// Retention and RetentionBytes bound the TSDB; the oldest data goes first.
	Retention      time.Duration
	RetentionBytes int64
	// ScrapeInterval is how often every target is scraped.
	ScrapeInterval time.Duration
}

// DefaultPrometheus is the settings `minik start --prometheus` writes.
func DefaultPrometheus() Prometheus {
	return Prometheus{
		Retention:      DefaultPrometheusRetention,
		RetentionBytes: DefaultPrometheusRetentionBytes,
		ScrapeInterval: DefaultPrometheusScrapeInterval,
	}
}

// Validate checks the bounds.
func (p Prometheus) Validate() error {
	switch {
	case p.Retention < time.Hour:
		return fmt.Errorf("retention %s: keep at least 1h", p.Retention)
	case p.RetentionBytes < 64<<20:
		return fmt.Errorf("retention size %d bytes: allow at least 64 MiB", p.RetentionBytes)
	case p.ScrapeInterval < time.Second || p.ScrapeInterval > 5*time.Minute:
		return fmt.Errorf("scrape interval %s: use 1s to 5m", p.ScrapeInterval)
	}
	return nil
}

// Data is p as the settings ConfigMap's data.
func (p Prometheus) Data() map[string]string {
	return map[string]string{
		"retention":      p.Retention.String(),
		"retentionBytes": strconv.FormatInt(p.RetentionBytes, 10),
		"scrapeInterval": p.ScrapeInterval.String(),
	}
}

// ParsePrometheus reads the settings ConfigMap's data; a missing key takes
// its default.
func ParsePrometheus(data map[string]string) (Prometheus, error) {
	p := DefaultPrometheus()
	var err error
	if s, ok := data["retention"]; ok {
		if p.Retention, err = time.ParseDuration(s); err != nil {
			return Prometheus{}, fmt.Errorf("prometheus setting retention=%q: %w", s, err)
		}
	}
	if s, ok := data["retentionBytes"]; ok {
		if p.RetentionBytes, err = strconv.ParseInt(s, 10, 64); err != nil {
			return Prometheus{}, fmt.Errorf("prometheus setting retentionBytes=%q: %w", s, err)
		}
	}
	if s, ok := data["scrapeInterval"]; ok {
		if p.ScrapeInterval, err = time.ParseDuration(s); err != nil {
			return Prometheus{}, fmt.Errorf("prometheus setting scrapeInterval=%q: %w", s, err)
		}
	}
	return p, p.Validate()
}
