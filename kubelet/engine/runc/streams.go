//go:build linux

package runc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"minik.dev/minik/kubelet/engine"
)

// logRecord is one line of a container's log, as the Docker Engine's
// json-file driver keeps it.
type logRecord struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// logFile is a container's log: its two streams' lines, in the order
// they came, one JSON record per line.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
	// changed is closed and replaced whenever a record is written or the
	// log ends, to wake followers.
	changed chan struct{}
	closed  bool
}

func openLog(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	return &logFile{path: path, f: f, changed: make(chan struct{})}, nil
}

// copy writes r's lines as records of stream until r ends.
func (l *logFile) copy(r io.Reader, stream string) {
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			l.write(logRecord{Log: line, Stream: stream, Time: time.Now().UTC()})
		}
		if err != nil {
			return
		}
	}
}

func (l *logFile) write(rec logRecord) {
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	_, _ = l.f.Write(append(b, '\n'))
	close(l.changed)
	l.changed = make(chan struct{})
}

// close ends the log: followers stop once they have read it all.
func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	_ = l.f.Close()
	close(l.changed)
}

// wait returns a channel closed at the next change, and whether the log
// has ended.
func (l *logFile) wait() (<-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed, l.closed
}

// Logs writes a container's log records, each in one Write, until the log
// ends (with Follow: until the container stops too) or ctx ends.
func (e *Engine) Logs(ctx context.Context, id string, o engine.LogOptions, stdout, stderr io.Writer) error {
	e.mu.Lock()
	c := e.containers[id]
	e.mu.Unlock()
	if c == nil || c.log == nil {
		return fmt.Errorf("read logs of %s: %w", id, engine.ErrNotFound)
	}
	f, err := os.Open(c.log.path)
	if err != nil {
		return fmt.Errorf("read logs of %s: %w", id, err)
	}
	defer f.Close()
	emit := func(rec logRecord) error {
		if !o.Since.IsZero() && rec.Time.Before(o.Since) {
			return nil
		}
		line := rec.Log
		if o.Timestamps {
			line = rec.Time.Format(time.RFC3339Nano) + " " + line
		}
		w := stdout
		if rec.Stream == "stderr" {
			w = stderr
		}
		_, err := io.WriteString(w, line)
		return err
	}
	br := bufio.NewReader(f)
	// The first pass reads what is there, to apply Tail.
	var first []logRecord
	pending := ""
	readAll := func() ([]logRecord, error) {
		var out []logRecord
		for {
			s, err := br.ReadString('\n')
			pending += s
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			var rec logRecord
			if json.Unmarshal([]byte(pending), &rec) == nil {
				out = append(out, rec)
			}
			pending = ""
		}
	}
	if first, err = readAll(); err != nil {
		return fmt.Errorf("read logs of %s: %w", id, err)
	}
	if o.Tail >= 0 && len(first) > o.Tail {
		first = first[len(first)-o.Tail:]
	}
	for _, rec := range first {
		if err := emit(rec); err != nil {
			return nil
		}
	}
	if !o.Follow {
		return nil
	}
	for {
		changed, ended := c.log.wait()
		recs, err := readAll()
		if err != nil {
			return fmt.Errorf("read logs of %s: %w", id, err)
		}
		for _, rec := range recs {
			if err := emit(rec); err != nil {
				return nil
			}
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// Exec runs cmd in a running container, with its environment and working
// folder, and returns its exit code. With tty, the command gets a terminal
// whose output is stdout and whose size follows resize.
func (e *Engine) Exec(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan engine.Size) (int, error) {
	e.mu.Lock()
	c := e.containers[id]
	e.mu.Unlock()
	if c == nil {
		return 0, fmt.Errorf("exec in %s: %w", id, engine.ErrNotFound)
	}
	if tty {
		return e.execWithTerminal(ctx, id, cmd, stdin, stdout, resize)
	}
	args := append([]string{"--root", filepath.Join(e.o.RunDir, "runc"), "exec", id}, cmd...)
	x := exec.CommandContext(ctx, e.runc, args...)
	x.Stdin, x.Stdout = stdin, stdout
	var runcErr bytes.Buffer
	x.Stderr = io.MultiWriter(stderr, &runcErr)
	err := x.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	return 0, nil
}

// execWithTerminal runs cmd detached with a terminal, the only way runc
// hands one over: runc exits once the process runs, leaving it to this
// process (a subreaper) to wait for.
func (e *Engine) execWithTerminal(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout io.Writer, resize <-chan engine.Size) (int, error) {
	sock, err := newConsoleSocket(e.o.RunDir)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer sock.close()
	pidFile := filepath.Join(e.o.RunDir, "exec-"+newID()[:16]+".pid")
	defer os.Remove(pidFile)
	args := append([]string{"--root", filepath.Join(e.o.RunDir, "runc"), "exec", "-d", "-t", "--console-socket", sock.path, "--pid-file", pidFile, id}, cmd...)
	x := exec.CommandContext(ctx, e.runc, args...)
	var runcOut bytes.Buffer
	x.Stdout, x.Stderr = &runcOut, &runcOut
	if err := x.Start(); err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	exited := make(chan struct{})
	var runcErr error
	go func() {
		runcErr = x.Wait()
		close(exited)
	}()
	console, err := sock.receive(ctx, exited)
	<-exited
	if err != nil || runcErr != nil {
		if console != nil {
			_ = console.Close()
		}
		return 0, fmt.Errorf("exec in %s: %s", id, strings.TrimSpace(runcOut.String()))
	}
	defer console.Close()
	proc, err := waitDetached(pidFile)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	if resize != nil {
		go resizeConsole(console, resize)
	}
	if stdin != nil {
		go func() { _, _ = io.Copy(console, stdin) }()
	}
	copied := make(chan struct{})
	go func() {
		copyConsole(stdout, console)
		close(copied)
	}()
	select {
	case <-proc.done:
	case <-ctx.Done():
		_ = unix.Kill(proc.pid, unix.SIGKILL)
		<-proc.done
	}
	// What the process wrote last is still in the terminal: read it to
	// the end (EIO), briefly.
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	if proc.err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, proc.err)
	}
	return proc.code, nil
}

// Attach streams a running container's output from now on and, when it
// was started with stdin open, feeds it stdin (its terminal, when it has
// one, whose size then follows resize).
func (e *Engine) Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan engine.Size) error {
	e.mu.Lock()
	c := e.containers[id]
	var console *os.File
	if c != nil {
		console = c.console
	}
	e.mu.Unlock()
	if c == nil {
		return fmt.Errorf("attach to %s: %w", id, engine.ErrNotFound)
	}
	if tty && console == nil {
		return fmt.Errorf("attach to %s with a terminal: the container has none (tty: false)", id)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if console != nil {
		if resize != nil {
			go resizeConsole(console, resize)
		}
		if stdin != nil && c.spec.Stdin {
			go func() { _, _ = io.Copy(console, stdin) }()
		}
		return e.Logs(ctx, id, engine.LogOptions{Follow: true, Tail: 0, Since: time.Now()}, stdout, stdout)
	}
	if stdin != nil && c.stdin != nil {
		go func() {
			_, _ = io.Copy(c.stdin, stdin)
			if c.spec.StdinOnce {
				_ = c.stdin.Close()
			}
		}()
	}
	return e.Logs(ctx, id, engine.LogOptions{Follow: true, Tail: 0, Since: time.Now()}, stdout, stderr)
}

// Stats reads a container's counters from its cgroup (v2, or v1's
// controllers) and a sandbox's from its veth.
func (e *Engine) Stats(_ context.Context, id string) (engine.Stats, error) {
	e.mu.Lock()
	sb := e.sandboxes[id]
	c := e.containers[id]
	e.mu.Unlock()
	if sb != nil {
		if sb.hostVeth == "" {
			return engine.Stats{}, nil
		}
		rx, tx, err := vethCounters(sb.hostVeth)
		if err != nil {
			return engine.Stats{}, fmt.Errorf("read stats of %s: %w", id, err)
		}
		return engine.Stats{Network: &engine.NetworkStats{
			RxBytes: rx[0], RxPackets: rx[1], RxErrors: rx[2], RxDropped: rx[3],
			TxBytes: tx[0], TxPackets: tx[1], TxErrors: tx[2], TxDropped: tx[3],
		}}, nil
	}
	if c == nil {
		return engine.Stats{}, fmt.Errorf("read stats of %s: %w", id, engine.ErrNotFound)
	}
	return cgroupStats(id)
}

const cgroupRoot = "/sys/fs/cgroup"

// cgroupStats reads a container's cgroup as the kubelet's cAdvisor does.
func cgroupStats(id string) (engine.Stats, error) {
	v2 := filepath.Join(cgroupRoot, "minik", id)
	if _, err := os.Stat(filepath.Join(v2, "cgroup.controllers")); err == nil {
		var s engine.Stats
		cpu := keyed(filepath.Join(v2, "cpu.stat"))
		s.CPUNanos = cpu["usage_usec"] * 1000
		s.MemoryUsage = single(filepath.Join(v2, "memory.current"))
		mem := keyed(filepath.Join(v2, "memory.stat"))
		if in := mem["inactive_file"]; in < s.MemoryUsage {
			s.WorkingSet = s.MemoryUsage - in
		}
		s.RSS = mem["anon"]
		s.ReadBytes, s.WriteBytes = ioStat(filepath.Join(v2, "io.stat"))
		return s, nil
	}
	cpuacct := filepath.Join(cgroupRoot, "cpuacct", "minik", id, "cpuacct.usage")
	if _, err := os.Stat(cpuacct); err != nil {
		return engine.Stats{}, fmt.Errorf("read stats of %s: no cgroup: %w", id, err)
	}
	var s engine.Stats
	s.CPUNanos = single(cpuacct)
	mem := filepath.Join(cgroupRoot, "memory", "minik", id)
	s.MemoryUsage = single(filepath.Join(mem, "memory.usage_in_bytes"))
	stat := keyed(filepath.Join(mem, "memory.stat"))
	if in := stat["total_inactive_file"]; in < s.MemoryUsage {
		s.WorkingSet = s.MemoryUsage - in
	}
	s.RSS = stat["total_rss"]
	return s, nil
}

// oomKilled reports whether the kernel killed a process of the container
// for memory: cgroup v2's memory.events, v1's memory.oom_control.
func oomKilled(id string) bool {
	return keyed(filepath.Join(cgroupRoot, "minik", id, "memory.events"))["oom_kill"] > 0 ||
		keyed(filepath.Join(cgroupRoot, "memory", "minik", id, "memory.oom_control"))["oom_kill"] > 0
}

func single(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}

func keyed(path string) map[string]uint64 {
	out := map[string]uint64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err == nil {
			out[k] = n
		}
	}
	return out
}

// ioStat sums rbytes and wbytes over a cgroup v2 io.stat's devices.
func ioStat(path string) (read, write uint64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0
	}
	for _, f := range strings.Fields(string(b)) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "rbytes":
			read += n
		case "wbytes":
			write += n
		}
	}
	return read, write
}
