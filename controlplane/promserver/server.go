// Package promserver runs the Prometheus server — its service discovery,
// scrape manager, TSDB, PromQL engine, rule manager and HTTP API, from
// github.com/prometheus/prometheus — inside the control-plane node, set up
// to scrape the cluster the way kube-prometheus does.
package promserver

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	configutil "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/web"
)

// Options configure one run of the server.
type Options struct {
	Targets
	// DataDir holds the TSDB; it is kept across runs.
	DataDir string
	// Listener is where the HTTP API is served; ExternalURL is how users
	// reach it.
	Listener    net.Listener
	ExternalURL string
	// Retention bounds the TSDB by age and RetentionBytes by size.
	Retention      time.Duration
	RetentionBytes int64
	// RulesDir is searched for rule files (nodeconfig.IsPrometheusRuleFile): the manifests
	// folder; "" for none.
	RulesDir string
	// Allowed says which addresses scrapes may dial. Simulated pods'
	// addresses are fictional and must never be dialled.
	Allowed func(net.IP) bool
	// Logger receives the server's logs.
	Logger *slog.Logger
}

// Run serves until ctx is done, then stops every part and closes the TSDB.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	logger := o.Logger
	cfg, _, err := Config(o.Targets, logger)
	if err != nil {
		return err
	}
	external, err := url.Parse(o.ExternalURL)
	if err != nil {
		return fmt.Errorf("external URL %q: %w", o.ExternalURL, err)
	}
	// A registry per run: a server turned off and on again registers its
	// metrics afresh. It is also what the server scrapes of itself.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	dbOpts := tsdb.DefaultOptions()
	dbOpts.RetentionDuration = o.Retention.Milliseconds()
	dbOpts.MaxBytes = o.RetentionBytes
	stats := tsdb.NewDBStats()
	db, err := tsdb.Open(o.DataDir, logger.With("component", "tsdb"), reg, dbOpts, stats)
	if err != nil {
		return fmt.Errorf("open the prometheus TSDB in %s: %w", o.DataDir, err)
	}
	defer db.Close()
	local := &localStorage{DB: db, stats: stats}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		return fmt.Errorf("register discovery metrics: %w", err)
	}
	discoveryManager := discovery.NewManager(ctx, logger.With("component", "discovery"), reg, sdMetrics, discovery.Name("scrape"))
	if discoveryManager == nil {
		return errors.New("create the discovery manager")
	}
	scrapeManager, err := scrape.NewManager(&scrape.Options{
		HTTPClientOptions: []configutil.HTTPClientOption{configutil.WithDialContextFunc(allowedDialer(o.Allowed))},
	}, logger.With("component", "scrape"), nil, db, nil, reg)
	if err != nil {
		return fmt.Errorf("create the scrape manager: %w", err)
	}
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               logger.With("component", "query engine"),
		Reg:                  reg,
		MaxSamples:           50_000_000,
		Timeout:              2 * time.Minute,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
	notifierManager := notifier.NewManager(&notifier.Options{QueueCapacity: 1000, Registerer: reg}, model.UTF8Validation, logger.With("component", "notifier"))
	ruleManager := rules.NewManager(&rules.ManagerOptions{
		Appendable:  db,
		Queryable:   db,
		QueryFunc:   rules.EngineQueryFunc(engine, db),
		NotifyFunc:  rules.SendAlerts(notifierManager, external.String()),
		Context:     ctx,
		ExternalURL: external,
		Registerer:  reg,
		Logger:      logger.With("component", "rules"),
		GroupLoader: ruleLoader{parser: parser.NewParser(parser.Options{})},
		// As Prometheus' own defaults.
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
		ResendDelay:     time.Minute,
	})
	handler := web.New(logger.With("component", "web"), &web.Options{
		Context:               ctx,
		TSDBRetentionDuration: model.Duration(o.Retention),
		TSDBMaxBytes:          units.Base2Bytes(o.RetentionBytes),
		TSDBDir:               o.DataDir,
		LocalStorage:          local,
		Storage:               db,
		ExemplarStorage:       db,
		QueryEngine:           engine,
		ScrapeManager:         scrapeManager,
		RuleManager:           ruleManager,
		Notifier:              notifierManager,
		Version:               &web.PrometheusVersion{Version: moduleVersion(), GoVersion: goVersion()},
		Flags:                 map[string]string{},
		ReadTimeout:           5 * time.Minute,
		MaxConnections:        512,
		ExternalURL:           external,
		ListenAddresses:       []string{o.Listener.Addr().String()},
		RoutePrefix:           "/",
		PageTitle:             "Prometheus (minik)",
		AppName:               "Prometheus",
		Gatherer:              reg,
		Registerer:            reg,
	})

	if err := applyConfig(cfg, db, handler, scrapeManager, discoveryManager, notifierManager); err != nil {
		return err
	}

	failed := make(chan error, 3)
	go func() {
		if err := discoveryManager.Run(); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("prometheus discovery: %w", err)
		}
	}()
	go func() {
		if err := scrapeManager.Run(discoveryManager.SyncCh()); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("prometheus scrapes: %w", err)
		}
	}()
	defer scrapeManager.Stop()
	go ruleManager.Run()
	defer ruleManager.Stop()
	rulesDone := make(chan struct{})
	go func() {
		defer close(rulesDone)
		watchRules(ctx, ruleManager, o.RulesDir, time.Duration(cfg.GlobalConfig.EvaluationInterval), cfg.GlobalConfig.ExternalLabels, external.String(), logger.With("component", "rules"))
	}()
	defer func() { <-rulesDone }()
	// Prometheus' own handler serves on loopback; the front (below) on
	// the node's address.
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for prometheus' handler: %w", err)
	}
	webDone := make(chan struct{})
	go func() {
		defer close(webDone)
		if err := handler.Run(ctx, []net.Listener{inner}, ""); err != nil && ctx.Err() == nil {
			failed <- fmt.Errorf("prometheus web: %w", err)
		}
	}()
	defer func() { <-webDone }()
	front := &http.Server{Handler: frontHandler(inner.Addr().String(), moduleVersion()), ReadHeaderTimeout: time.Minute}
	frontDone := make(chan struct{})
	go func() {
		defer close(frontDone)
		if err := front.Serve(o.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("prometheus front: %w", err)
		}
	}()
	defer func() { <-frontDone }()
	defer front.Close()
	defer cancel()
	handler.SetReady(web.Ready)
	logger.Info("prometheus ready", "url", o.ExternalURL)

	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// applyConfig hands cfg to each part, in the order Prometheus itself does:
// scrapes before discovery, so new targets meet their scrape config.
func applyConfig(cfg *config.Config, db *tsdb.DB, handler *web.Handler, scrapes *scrape.Manager, sd *discovery.Manager, n *notifier.Manager) error {
	if err := db.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("apply config to the TSDB: %w", err)
	}
	if err := handler.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("apply config to the web handler: %w", err)
	}
	if err := scrapes.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("apply scrape config: %w", err)
	}
	scrapeConfigs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return fmt.Errorf("read scrape configs: %w", err)
	}
	sdConfigs := make(map[string]discovery.Configs, len(scrapeConfigs))
	for _, c := range scrapeConfigs {
		sdConfigs[c.JobName] = c.ServiceDiscoveryConfigs
	}
	if err := sd.ApplyConfig(sdConfigs); err != nil {
		return fmt.Errorf("apply discovery config: %w", err)
	}
	if err := n.ApplyConfig(cfg); err != nil {
		return fmt.Errorf("apply notifier config: %w", err)
	}
	return nil
}

// uiPages are the pages of Prometheus' React UI. The module carries no
// built UI (it needs an npm build), so these answer with a page that says
// so and links the HTTP API, instead of Prometheus' "Error opening React
// index.html".
var uiPages = []string{"/{$}", "/query", "/graph", "/alerts", "/rules", "/tsdb-status", "/config", "/flags",
	"/service-discovery", "/alertmanager-discovery", "/status", "/targets"}

// frontHandler serves the UI pages and passes everything else to
// Prometheus' handler at inner.
func frontHandler(inner, version string) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: inner})
	page := []byte(`<!doctype html><html><head><meta charset="utf-8"><title>Prometheus (minik)</title></head><body>
<h1>Prometheus ` + html.EscapeString(version) + `, in minik</h1>
<p>This Prometheus server has no web UI: minik links Prometheus from its Go module, which does not carry
the UI's built files (they need an npm build). Everything else is here:</p>
<ul>
<li><a href="/api/v1/query?query=up">/api/v1/query?query=up</a>, <code>/api/v1/query_range</code>: PromQL</li>
<li><a href="/api/v1/targets">/api/v1/targets</a>: what is scraped, and how it went</li>
<li><a href="/api/v1/status/config">/api/v1/status/config</a>, <a href="/api/v1/rules">/api/v1/rules</a>,
<a href="/api/v1/alerts">/api/v1/alerts</a>, <a href="/api/v1/status/tsdb">/api/v1/status/tsdb</a></li>
<li><a href="/federate?match[]={job=~%22.%2B%22}">/federate</a>, <a href="/metrics">/metrics</a>, <a href="/-/ready">/-/ready</a></li>
</ul>
<p>Grafana's Prometheus data source works with this server's URL; <code>minik dashboard</code> draws the
last hour from it.</p>
</body></html>
`)
	mux := http.NewServeMux()
	for _, p := range uiPages {
		mux.HandleFunc("GET "+p, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(page)
		})
	}
	mux.Handle("/", proxy)
	return mux
}

// allowedDialer refuses addresses allowed rejects, with an error the
// target's page shows, before any packet is sent.
func allowedDialer(allowed func(net.IP) bool) configutil.DialContextFunc {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); allowed != nil && (ip == nil || !allowed(ip)) {
			return nil, fmt.Errorf("%s is not an address minik may dial (a simulated pod's address is fictional)", host)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// localStorage is the TSDB with the statistics the HTTP API's TSDB status
// page asks for.
type localStorage struct {
	*tsdb.DB
	stats *tsdb.DBStats
}

func (s *localStorage) BlockMetas() ([]tsdb.BlockMeta, error) { return s.DB.BlockMetas(), nil }

func (s *localStorage) Stats(statsByLabelName string, limit int) (*tsdb.Stats, error) {
	return s.Head().Stats(statsByLabelName, limit), nil
}

func (s *localStorage) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return s.stats.Head.WALReplayStatus.GetWALReplayStatus(), nil
}

var _ storage.Storage = (*localStorage)(nil)

// moduleVersion is the version of Prometheus linked in.
func moduleVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == "github.com/prometheus/prometheus" {
				return m.Version
			}
		}
	}
	return "unknown"
}

func goVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		return info.GoVersion
	}
	return ""
}
