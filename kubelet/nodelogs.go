package kubelet

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// agentService is the name the node log query knows the agent's own log
// by; "kubelet" is an alias, for tools written for real nodes.
const agentService = "minik-node"

// nodeLogs serves /logs/ as the kubelet does: the node's log folder (files
// and folder listings), and with ?query= the node log query (`kubectl get
// --raw /api/v1/nodes/NODE/proxy/logs/?query=minik-node`).
func (s *server) nodeLogs(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("query") {
		s.nodeLogQuery(w, r)
		return
	}
	if s.cfg.LogDir == "" {
		http.Error(w, "this node keeps no log folder (its pods are simulated); ?query="+agentService+" returns the node agent's log", http.StatusNotFound)
		return
	}
	http.StripPrefix("/logs/", http.FileServer(http.Dir(s.cfg.LogDir))).ServeHTTP(w, r)
}

// logQuery is the node log query's parameters (KEP 2258).
type logQuery struct {
	sources      []string
	since, until time.Time
	tail         int
	pattern      *regexp.Regexp
}

func parseLogQuery(q map[string][]string) (logQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	lq := logQuery{tail: -1}
	for _, v := range q["query"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				lq.sources = append(lq.sources, name)
			}
		}
	}
	if len(lq.sources) == 0 {
		return lq, fmt.Errorf("query names no log: use ?query=%s or a file of /logs/", agentService)
	}
	for k, t := range map[string]*time.Time{"sinceTime": &lq.since, "untilTime": &lq.until} {
		if v := get(k); v != "" {
			parsed, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return lq, fmt.Errorf("%s must be an RFC 3339 time: %w", k, err)
			}
			*t = parsed
		}
	}
	if v := get("tailLines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return lq, fmt.Errorf("tailLines must be a non-negative integer")
		}
		lq.tail = n
	}
	if v := get("pattern"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			return lq, fmt.Errorf("pattern: %w", err)
		}
		lq.pattern = re
	}
	if v := get("boot"); v != "" && v != "0" {
		return lq, fmt.Errorf("boot %s: this node keeps the current boot's log only", v)
	}
	return lq, nil
}

// nodeLogQuery answers the node log query: each source is the agent's own
// log (minik-node, or its alias kubelet) or a file of the log folder.
func (s *server) nodeLogQuery(w http.ResponseWriter, r *http.Request) {
	lq, err := parseLogQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	paths := make([]string, 0, len(lq.sources))
	for _, src := range lq.sources {
		p, err := s.logSource(src)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		paths = append(paths, p)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	for _, p := range paths {
		if err := lq.write(w, p, s.now().Year()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
}

// logSource resolves a query's source to a file of this node.
func (s *server) logSource(name string) (string, error) {
	if name == agentService || name == "kubelet" {
		if s.cfg.AgentLog == "" {
			return "", fmt.Errorf("this node keeps no file of the %s log", agentService)
		}
		return s.cfg.AgentLog, nil
	}
	if s.cfg.LogDir != "" && filepath.IsLocal(name) {
		p := filepath.Join(s.cfg.LogDir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no log named %q on this node: query %s or a file listed under /logs/", name, agentService)
}

// write copies the lines of one file that the query selects.
func (lq logQuery) write(w io.Writer, path string, year int) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	var kept []string
	var last time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// A line without a time of its own (a stack trace) goes with the
		// line before it.
		if t, ok := lineTime(line, year); ok {
			last = t
		}
		if !lq.since.IsZero() && !last.IsZero() && last.Before(lq.since) {
			continue
		}
		if !lq.until.IsZero() && last.After(lq.until) {
			continue
		}
		if lq.pattern != nil && !lq.pattern.MatchString(line) {
			continue
		}
		kept = append(kept, line)
		if lq.tail >= 0 && len(kept) > lq.tail {
			kept = kept[1:]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	for _, line := range kept {
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// lineTime reads the time of a klog line ("I1202 15:04:05.000000 ...") or
// of a CRI log line ("2026-12-02T15:04:05.123Z stdout F ...").
func lineTime(line string, year int) (time.Time, bool) {
	if len(line) >= 21 && strings.ContainsRune("IWEF", rune(line[0])) && line[5] == ' ' {
		t, err := time.Parse("0102 15:04:05.000000", line[1:21])
		if err == nil {
			return time.Date(year, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), true
		}
	}
	if ts, _, ok := strings.Cut(line, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
