// Package podlogs keeps a node's container logs as files, laid out as the
// kubelet lays them out, for log shippers (fluentd, fluent-bit) that mount
// the node's /var/log:
//
//	pods/NAMESPACE_POD_UID/CONTAINER/RESTART.log   CRI log format
//	containers/POD_NAMESPACE_CONTAINER-ID.log      symlink to the above
//
// A run's file is rotated at a size (RESTART.log.YYYYMMDD-HHMMSS, the oldest
// dropped past a count) and removed with its run or its pod. The runtime
// feeds each run's output through a Writer.
package podlogs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The kubelet's defaults (containerLogMaxSize, containerLogMaxFiles).
const (
	DefaultMaxSize  = 10 << 20
	DefaultMaxFiles = 5
)

// Stream names, as the CRI log format writes them.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Store is the log folder of one node (its /var/log).
type Store struct {
	dir      string
	maxSize  int64
	maxFiles int
	now      func() time.Time
}

// Options configure a Store; zero values take the kubelet's defaults.
type Options struct {
	MaxSize  int64
	MaxFiles int
	Now      func() time.Time
}

// New returns the store of the log folder dir (the node's /var/log).
func New(dir string, o Options) *Store {
	s := &Store{dir: dir, maxSize: o.MaxSize, maxFiles: o.MaxFiles, now: o.Now}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxSize
	}
	if s.maxFiles < 2 {
		s.maxFiles = DefaultMaxFiles
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Dir is the log folder.
func (s *Store) Dir() string { return s.dir }

// Run is one run of one container of a pod.
type Run struct {
	Namespace, Pod, UID, Container string
	// Restart counts the container's earlier runs (0 for the first).
	Restart int
	// ID is the runtime's container ID.
	ID string
}

// PodDir is the pod's folder: pods/NAMESPACE_POD_UID.
func (s *Store) PodDir(namespace, pod, uid string) string {
	return filepath.Join(s.dir, "pods", namespace+"_"+pod+"_"+uid)
}

// Path is the run's log file.
func (s *Store) Path(r Run) string {
	return filepath.Join(s.PodDir(r.Namespace, r.Pod, r.UID), r.Container, strconv.Itoa(r.Restart)+".log")
}

// Link is the run's symlink in containers/.
func (s *Store) Link(r Run) string {
	return filepath.Join(s.dir, "containers", r.Pod+"_"+r.Namespace+"_"+r.Container+"-"+r.ID+".log")
}

// Open makes the run's file (appending to one that exists, as after an
// agent restart) and its symlink, and returns a Writer for its output.
func (s *Store) Open(r Run) (*Writer, error) {
	path := s.Path(r)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("make log folder: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "containers"), 0o755); err != nil {
		return nil, fmt.Errorf("make log folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("open container log: %w", err)
	}
	link := s.Link(r)
	if target, err := os.Readlink(link); err != nil || target != path {
		_ = os.Remove(link)
		if err := os.Symlink(path, link); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("link container log: %w", err)
		}
	}
	return &Writer{store: s, path: path, f: f, size: st.Size()}, nil
}

// LastTime returns the time of the last line of the run's log, zero if it
// has none: where a copy resumes after an agent restart.
func (s *Store) LastTime(r Run) time.Time {
	f, err := os.Open(s.Path(r))
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return time.Time{}
	}
	const window = 64 << 10
	off := max(st.Size()-window, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return time.Time{}
	}
	lines := bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n"))
	ts, _, _ := bytes.Cut(lines[len(lines)-1], []byte(" "))
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return time.Time{}
	}
	return t
}

// RemoveRun removes one run's files and symlink.
func (s *Store) RemoveRun(r Run) error {
	path := s.Path(r)
	rotated, _ := filepath.Glob(globEscape(path) + ".*")
	var errs []error
	for _, p := range append(rotated, path, s.Link(r)) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemovePod removes the pod's folder and the symlinks into it.
func (s *Store) RemovePod(namespace, pod, uid string) error {
	dir := s.PodDir(namespace, pod, uid)
	err := os.RemoveAll(dir)
	return errors.Join(err, s.removeLinks(func(target string) bool { return strings.HasPrefix(target, dir+string(filepath.Separator)) }))
}

// Prune removes the folders of pods whose UID keep does not hold, and
// symlinks that point nowhere: what a node restart leaves of pods that
// were deleted while it was down.
func (s *Store) Prune(keep map[string]bool) error {
	entries, err := os.ReadDir(filepath.Join(s.dir, "pods"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("list pod logs: %w", err)
	}
	var errs []error
	for _, e := range entries {
		i := strings.LastIndexByte(e.Name(), '_')
		if i < 0 || keep[e.Name()[i+1:]] {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(s.dir, "pods", e.Name())))
	}
	errs = append(errs, s.removeLinks(func(target string) bool {
		_, err := os.Stat(target)
		return errors.Is(err, fs.ErrNotExist)
	}))
	return errors.Join(errs...)
}

func (s *Store) removeLinks(match func(target string) bool) error {
	dir := filepath.Join(s.dir, "containers")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("list container log links: %w", err)
	}
	var errs []error
	for _, e := range entries {
		link := filepath.Join(dir, e.Name())
		target, err := os.Readlink(link)
		if err != nil || !match(target) {
			continue
		}
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Writer appends one run's output to its file in the CRI log format,
// "TIME STREAM F|P LINE", rotating the file at the store's size.
type Writer struct {
	store *Store
	path  string

	mu   sync.Mutex
	f    *os.File
	size int64
}

// Stream returns the writer of one stream (Stdout or Stderr). Each Write
// holds log records as the engine sends them with timestamps: "TIME
// text\n" per line; a record without its newline (a line the engine split,
// or output that ended mid-line) is written as a partial line (P), unless
// lineBuffered, when it waits for the rest (a TTY's raw stream, whose
// writes need not end at records).
func (w *Writer) Stream(name string, lineBuffered bool) io.Writer {
	return &streamWriter{w: w, name: name, lineBuffered: lineBuffered}
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// writeLine writes one CRI log line; text has no newline.
func (w *Writer) writeLine(ts, stream string, partial bool, text []byte) error {
	tag := "F"
	if partial {
		tag = "P"
	}
	line := make([]byte, 0, len(ts)+len(stream)+len(text)+5)
	line = append(line, ts...)
	line = append(line, ' ')
	line = append(line, stream...)
	line = append(line, ' ')
	line = append(line, tag...)
	line = append(line, ' ')
	line = append(line, text...)
	line = append(line, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.size > 0 && w.size+int64(len(line)) > w.store.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(line)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write container log: %w", err)
	}
	return nil
}

// rotate renames the file with the time appended, as the kubelet does,
// starts a new one, and keeps maxFiles-1 rotated files.
func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("rotate container log: %w", err)
	}
	stamp := w.store.now().UTC().Format("20060102-150405")
	rotated := w.path + "." + stamp
	for i := 1; ; i++ {
		if _, err := os.Lstat(rotated); errors.Is(err, fs.ErrNotExist) {
			break
		}
		rotated = w.path + "." + stamp + "." + strconv.Itoa(i)
	}
	if err := os.Rename(w.path, rotated); err != nil {
		return fmt.Errorf("rotate container log: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("rotate container log: %w", err)
	}
	w.f, w.size = f, 0
	old, _ := filepath.Glob(globEscape(w.path) + ".*")
	// Fixed-width stamps: name order is age order.
	sort.Strings(old)
	for len(old) > w.store.maxFiles-1 {
		_ = os.Remove(old[0])
		old = old[1:]
	}
	return nil
}

type streamWriter struct {
	w            *Writer
	name         string
	lineBuffered bool
	pending      []byte
}

func (s *streamWriter) Write(p []byte) (int, error) {
	s.pending = append(s.pending, p...)
	for {
		i := bytes.IndexByte(s.pending, '\n')
		if i < 0 {
			break
		}
		if err := s.record(s.pending[:i], false); err != nil {
			return 0, err
		}
		s.pending = s.pending[i+1:]
	}
	if len(s.pending) > 0 && !s.lineBuffered {
		if err := s.record(s.pending, true); err != nil {
			return 0, err
		}
		s.pending = s.pending[:0]
	}
	if len(s.pending) == 0 {
		s.pending = nil
	}
	return len(p), nil
}

// record writes one "TIME text" record; a record whose time does not
// parse keeps all of its text and gets the time it is written.
func (s *streamWriter) record(rec []byte, partial bool) error {
	ts, text, ok := bytes.Cut(rec, []byte(" "))
	if !ok {
		ts, text = nil, rec
	}
	stamp := string(ts)
	if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
		stamp, text = s.w.store.now().UTC().Format(time.RFC3339Nano), rec
	}
	if s.lineBuffered {
		// A TTY ends its lines with CR LF.
		text = bytes.TrimSuffix(text, []byte("\r"))
	}
	return s.w.writeLine(stamp, s.name, partial, text)
}

// globEscape quotes the glob metacharacters of a path.
func globEscape(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(p)
}

// ReadOptions select lines of a run's log, as `kubectl logs` does.
type ReadOptions struct {
	// Tail keeps the last lines only; < 0 for all.
	Tail int
	// Since drops lines older than it, unless zero.
	Since time.Time
	// Timestamps starts each line with its time.
	Timestamps bool
}

// Read writes the run's output from its file as the container printed it
// (a line's parts joined), for `kubectl logs` of a run whose container
// is gone, as after a node restart: the kubelet reads its files then too.
func (s *Store) Read(r Run, o ReadOptions, w io.Writer) error {
	data, err := os.ReadFile(s.Path(r))
	if err != nil {
		return fmt.Errorf("read container log: %w", err)
	}
	var lines []string
	var partial strings.Builder
	for _, rec := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(rec, " ", 4)
		if len(parts) < 3 {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			continue
		}
		if len(parts) == 4 {
			partial.WriteString(parts[3])
		}
		if parts[2] != "F" {
			continue
		}
		line := partial.String()
		partial.Reset()
		if !o.Since.IsZero() && ts.Before(o.Since) {
			continue
		}
		if o.Timestamps {
			line = parts[0] + " " + line
		}
		lines = append(lines, line)
	}
	if o.Tail >= 0 && len(lines) > o.Tail {
		lines = lines[len(lines)-o.Tail:]
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}
