package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// reporter renders cluster progress; Close stops any animation.
type reporter interface {
	Step(name string) func(error)
	Note(msg string)
	Close()
}

// newReporter picks JSON events for -o json, a spinner on a terminal and
// plain lines otherwise. Progress goes to stderr in text mode so stdout
// keeps only results; JSON events go to stdout, one object per line.
func newReporter(env Env, output string) reporter {
	if output == "json" {
		return &jsonReporter{w: env.Stdout}
	}
	if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && env.Getenv("TERM") != "dumb" {
		return newSpinner(f)
	}
	return &lineReporter{w: env.Stderr}
}

// lineReporter prints one line per finished step.
type lineReporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *lineReporter) Step(name string) func(error) {
	began := time.Now()
	return func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		mark := "✓"
		if err != nil {
			mark = "✗"
		}
		fmt.Fprintf(r.w, "%s %s (%s)\n", mark, name, roundDuration(time.Since(began)))
	}
}

func (r *lineReporter) Note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.w, "• "+msg)
}

func (r *lineReporter) Close() {}

// jsonReporter writes {"step","status","elapsedMs"} objects.
type jsonReporter struct {
	mu sync.Mutex
	w  io.Writer
}

type stepEvent struct {
	Step      string `json:"step"`
	Status    string `json:"status"`
	ElapsedMs int64  `json:"elapsedMs"`
	Error     string `json:"error,omitempty"`
}

func (r *jsonReporter) emit(v any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = json.NewEncoder(r.w).Encode(v)
}

func (r *jsonReporter) Step(name string) func(error) {
	began := time.Now()
	r.emit(stepEvent{Step: name, Status: "started"})
	return func(err error) {
		ev := stepEvent{Step: name, Status: "done", ElapsedMs: time.Since(began).Milliseconds()}
		if err != nil {
			ev.Status, ev.Error = "failed", err.Error()
		}
		r.emit(ev)
	}
}

func (r *jsonReporter) Note(msg string) { r.emit(map[string]string{"note": msg}) }

func (r *jsonReporter) Close() {}

// spinner animates the running step on a terminal.
type spinner struct {
	mu      sync.Mutex
	w       io.Writer
	step    string
	began   time.Time
	stop    chan struct{}
	stopped chan struct{}
}

var spinFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newSpinner(w io.Writer) *spinner {
	s := &spinner{w: w, stop: make(chan struct{}), stopped: make(chan struct{})}
	go s.run()
	return s
}

func (s *spinner) run() {
	defer close(s.stopped)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.step != "" {
			fmt.Fprintf(s.w, "\r\033[K%s %s %s", spinFrames[i%len(spinFrames)], s.step, roundDuration(time.Since(s.began)))
		}
		s.mu.Unlock()
	}
}

func (s *spinner) Step(name string) func(error) {
	s.mu.Lock()
	s.step, s.began = name, time.Now()
	s.mu.Unlock()
	began := s.began
	return func(err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		mark := "✓"
		if err != nil {
			mark = "✗"
		}
		fmt.Fprintf(s.w, "\r\033[K%s %s (%s)\n", mark, name, roundDuration(time.Since(began)))
		s.step = ""
	}
}

func (s *spinner) Note(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\r\033[K• %s\n", msg)
}

func (s *spinner) Close() {
	close(s.stop)
	<-s.stopped
}

func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Millisecond)
}
