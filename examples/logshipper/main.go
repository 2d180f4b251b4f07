// Command logshipper is an example log shipper for minik, in the shape of
// fluentd or fluent-bit: a DaemonSet that reads the node's
// /var/log/containers/*.log (the CRI log format the node keeps), and a
// collector Deployment it forwards each line to, with the line's
// namespace, pod and container. logshipper.yaml runs both.
//
//	logshipper ship      tail LOG_DIR/containers/*.log (LOG_DIR: /var/log),
//	                     POST lines to COLLECTOR_URL/lines; NODE_NAME tags them
//	logshipper collect   keep the lines POSTed to :8080/lines; GET /lines
//	                     returns them as JSON (?namespace=&pod=&container= filter)
//	logshipper say WORDS print the words, to stdout: a pod with something to log
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nxadm/tail"
)

// Line is one log line with where it came from.
type Line struct {
	Node      string    `json:"node"`
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Container string    `json:"container"`
	Stream    string    `json:"stream"`
	Time      time.Time `json:"time"`
	Text      string    `json:"text"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == "ship":
		err = ship(ctx, envOr("LOG_DIR", "/var/log"), os.Getenv("COLLECTOR_URL"), os.Getenv("NODE_NAME"))
	case len(os.Args) == 2 && os.Args[1] == "collect":
		err = collect(ctx, ":8080")
	case len(os.Args) >= 2 && os.Args[1] == "say":
		fmt.Println(strings.Join(os.Args[2:], " "))
	default:
		err = errors.New("usage: logshipper ship|collect|say WORDS")
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "logshipper:", err)
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ship tails every container log of the node, new ones as they appear,
// and forwards their lines in batches.
func ship(ctx context.Context, logDir, collector, node string) error {
	if collector == "" {
		return errors.New("COLLECTOR_URL is not set")
	}
	lines := make(chan Line, 1024)
	go forward(ctx, collector+"/lines", lines)
	tailing := map[string]bool{}
	for {
		files, err := filepath.Glob(filepath.Join(logDir, "containers", "*.log"))
		if err != nil {
			return err
		}
		for _, f := range files {
			if !tailing[f] {
				tailing[f] = true
				go follow(ctx, f, node, lines)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// follow reads one container's log from its start, across rotations,
// until the file is gone or ctx ends.
func follow(ctx context.Context, path, node string, out chan<- Line) {
	ns, pod, container, ok := parseName(filepath.Base(path))
	if !ok {
		return
	}
	t, err := tail.TailFile(path, tail.Config{Follow: true, ReOpen: true, MustExist: true, Poll: true, Logger: tail.DiscardingLogger})
	if err != nil {
		return
	}
	defer t.Cleanup()
	defer func() { _ = t.Stop() }()
	var partial strings.Builder
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-t.Lines:
			if !ok {
				return
			}
			ts, stream, full, text, ok := parseCRI(l.Text)
			if !ok {
				continue
			}
			// A long line comes in parts (P); the last one is F.
			partial.WriteString(text)
			if !full {
				continue
			}
			out <- Line{Node: node, Namespace: ns, Pod: pod, Container: container, Stream: stream, Time: ts, Text: partial.String()}
			partial.Reset()
		case <-time.After(10 * time.Second):
			if _, err := os.Stat(path); err != nil {
				return // the pod is gone
			}
		}
	}
}

// parseName reads POD_NAMESPACE_CONTAINER-ID.log, the kubelet's name of
// a container log link.
func parseName(name string) (namespace, pod, container string, ok bool) {
	name, ok = strings.CutSuffix(name, ".log")
	if !ok {
		return "", "", "", false
	}
	parts := strings.SplitN(name, "_", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	i := strings.LastIndexByte(parts[2], '-')
	if i <= 0 {
		return "", "", "", false
	}
	return parts[1], parts[0], parts[2][:i], true
}

// parseCRI reads "TIME STREAM F|P TEXT".
func parseCRI(s string) (ts time.Time, stream string, full bool, text string, ok bool) {
	parts := strings.SplitN(s, " ", 4)
	if len(parts) < 3 {
		return time.Time{}, "", false, "", false
	}
	ts, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return time.Time{}, "", false, "", false
	}
	if len(parts) == 4 {
		text = parts[3]
	}
	return ts, parts[1], parts[2] == "F", text, true
}

// forward POSTs lines in batches of up to a second's worth, retrying a
// batch until the collector takes it.
func forward(ctx context.Context, url string, lines <-chan Line) {
	var batch []Line
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-lines:
			batch = append(batch, l)
			if len(batch) < 500 {
				continue
			}
		case <-tick.C:
		}
		if len(batch) == 0 {
			continue
		}
		if err := post(ctx, url, batch); err != nil {
			fmt.Fprintln(os.Stderr, "logshipper: forward:", err)
			continue
		}
		batch = nil
	}
}

func post(ctx context.Context, url string, batch []Line) error {
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("collector answered %s", resp.Status)
	}
	return nil
}

// collect serves the collector on addr until ctx ends.
func collect(ctx context.Context, addr string) error {
	srv := &http.Server{Addr: addr, Handler: newCollector(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Println("collector listening on", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newCollector keeps the lines shippers POST, in memory, and serves them.
func newCollector() http.Handler {
	var mu sync.Mutex
	var kept []Line
	mux := http.NewServeMux()
	mux.HandleFunc("POST /lines", func(w http.ResponseWriter, r *http.Request) {
		var batch []Line
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		kept = append(kept, batch...)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /lines", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		out := []Line{}
		mu.Lock()
		for _, l := range kept {
			if match(q.Get("namespace"), l.Namespace) && match(q.Get("pod"), l.Pod) && match(q.Get("container"), l.Container) {
				out = append(out, l)
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return mux
}

func match(want, got string) bool { return want == "" || want == got }
