package promserver

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"

	"minik.dev/minik/nodeconfig"
)

// ruleFiles lists the rule files under dir, skipping dot entries as the
// manifests folder does; none when dir is "" or absent.
func ruleFiles(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir && os.IsNotExist(err) {
				return filepath.SkipDir
			}
			return err
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && nodeconfig.IsPrometheusRuleFile(d.Name()) {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

// ruleLoader reads rule files in Prometheus' format, and the Prometheus
// Operator's PrometheusRule objects, whose spec is that format.
type ruleLoader struct{ parser parser.Parser }

func (l ruleLoader) Load(file string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, []error{err}
	}
	var object struct {
		Kind string    `yaml:"kind"`
		Spec yaml.Node `yaml:"spec"`
	}
	if yaml.Unmarshal(data, &object) == nil && object.Kind == "PrometheusRule" {
		if data, err = yaml.Marshal(&object.Spec); err != nil {
			return nil, []error{fmt.Errorf("%s: the PrometheusRule's spec: %w", file, err)}
		}
	}
	groups, errs := rulefmt.Parse(data, ignoreUnknownFields, scheme, l.parser)
	for i, e := range errs {
		errs[i] = fmt.Errorf("%s: %w", file, e)
	}
	return groups, errs
}

func (l ruleLoader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }

// rulesEvery is how often the rule files are looked at for changes.
const rulesEvery = 5 * time.Second

// watchRules loads the rule files under dir into m, and again whenever
// the set of files or any of them changes, until ctx is done. A file that
// does not load keeps the previous rules, and is logged.
func watchRules(ctx context.Context, m *rules.Manager, dir string, interval time.Duration, external labels.Labels, externalURL string, logger *slog.Logger) {
	var last string
	for {
		files, err := ruleFiles(dir)
		if err != nil {
			logger.Error("list rule files", "dir", dir, "err", err)
		}
		sig := signature(files)
		if err == nil && sig != last {
			if err := m.Update(interval, files, external, externalURL, nil); err != nil {
				logger.Error("rule files refused; the previous rules stay", "dir", dir, "err", err)
			} else {
				logger.Info("rules loaded", "files", len(files))
			}
			last = sig
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(rulesEvery):
		}
	}
}

// signature changes when a file is added, removed or written.
func signature(files []string) string {
	var b strings.Builder
	for _, f := range slices.Sorted(slices.Values(files)) {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}
