package nodeconfig

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePrometheus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    map[string]string
		want    Prometheus
		wantErr string
	}{
		{"defaults", nil, DefaultPrometheus(), ""},
		{"round trip", Prometheus{Retention: 72 * time.Hour, RetentionBytes: 2 << 30, ScrapeInterval: 5 * time.Second}.Data(),
			Prometheus{Retention: 72 * time.Hour, RetentionBytes: 2 << 30, ScrapeInterval: 5 * time.Second}, ""},
		{"short retention", map[string]string{"retention": "10m"}, Prometheus{}, "keep at least 1h"},
		{"small size", map[string]string{"retentionBytes": "1024"}, Prometheus{}, "at least 64 MiB"},
		{"size not a number", map[string]string{"retentionBytes": "1Gi"}, Prometheus{}, "retentionBytes=\"1Gi\""},
		{"fast scrapes", map[string]string{"scrapeInterval": "100ms"}, Prometheus{}, "use 1s to 5m"},
		{"interval not a duration", map[string]string{"scrapeInterval": "often"}, Prometheus{}, "scrapeInterval=\"often\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePrometheus(tc.data)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
