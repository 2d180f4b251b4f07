// Package logexport writes what `minik export logs` collects: a Bundle is
// a folder of files plus summary.txt, which lists what was collected and,
// for everything that could not be, what and why (the apiserver was down,
// a node stopped, the disk filled up). CollectKubernetes fills a Bundle
// from the apiserver through client-go; Archive packs a folder into a
// .tar.gz. The cluster library decides what goes in; this package never
// prints and never exits.
package logexport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
)

// SummaryFile is the bundle's table of contents.
const SummaryFile = "summary.txt"

// Missing is something that could not be collected, and why.
type Missing struct {
	What string `json:"what"`
	Why  string `json:"why"`
}

// Bundle is a folder being filled with diagnostics. It implements
// drivers.DiagnosticsSink; its methods are safe for concurrent use.
type Bundle struct {
	dir string
	// create opens a file for writing; tests replace it to fail as a full
	// disk does.
	create func(path string) (io.WriteCloser, error)

	mu        sync.Mutex
	collected []string
	missing   []Missing
	// unwritten are the files a write to disk failed for, and the first
	// such error.
	unwritten []string
	writeErr  error
}

// NewBundle returns a Bundle that writes into dir, which must exist.
func NewBundle(dir string) *Bundle {
	return &Bundle{dir: dir, create: createFile}
}

func createFile(name string) (io.WriteCloser, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
}

// Dir is the bundle's folder.
func (b *Bundle) Dir() string { return b.dir }

// Create makes a file at a relative slash-separated path in the bundle.
// The file counts as collected once closed without error; a failed write
// or close counts it as missing, as does a path that leaves the bundle.
func (b *Bundle) Create(_ context.Context, rel string) (io.WriteCloser, error) {
	clean := path.Clean("/" + rel)[1:]
	if clean == "" || clean != rel || clean == SummaryFile {
		err := fmt.Errorf("invalid bundle path %q", rel)
		b.Missing(rel, err)
		return nil, err
	}
	f, err := b.create(filepath.Join(b.dir, filepath.FromSlash(clean)))
	if err != nil {
		b.failedWrite(clean, err)
		return nil, fmt.Errorf("create %s: %w", clean, err)
	}
	return &bundleFile{b: b, rel: clean, f: f}, nil
}

// WriteFile writes a whole file into the bundle; a failure is recorded
// (and returned).
func (b *Bundle) WriteFile(ctx context.Context, rel string, data []byte) error {
	w, err := b.Create(ctx, rel)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return errors.Join(err, w.Close())
}

// WriteFrom writes the file rel with what fill writes. When fill fails
// the file is dropped and noted as missing with fill's error; a failure to
// write the file itself is noted as Create notes it.
func (b *Bundle) WriteFrom(ctx context.Context, rel string, fill func(io.Writer) error) {
	w, err := b.Create(ctx, rel)
	if err != nil {
		return
	}
	bf := w.(*bundleFile)
	fillErr := fill(bf)
	if fillErr == nil || bf.failed {
		_ = bf.Close()
		return
	}
	// Not a write failure: the source failed. Keep no half file that
	// would pass for the whole.
	_ = bf.f.Close()
	_ = os.Remove(filepath.Join(b.dir, filepath.FromSlash(rel)))
	b.Missing(rel, fillErr)
}

// Missing records something that could not be collected.
func (b *Bundle) Missing(what string, why error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.missing = append(b.missing, Missing{What: what, Why: why.Error()})
}

func (b *Bundle) failedWrite(rel string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.unwritten = append(b.unwritten, rel)
	b.missing = append(b.missing, Missing{What: rel, Why: "write: " + err.Error()})
	if b.writeErr == nil {
		b.writeErr = err
	}
}

// Collected lists the files written so far, sorted.
func (b *Bundle) Collected() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.collected)
	sort.Strings(out)
	return out
}

// MissingItems lists what could not be collected, in the order noted.
func (b *Bundle) MissingItems() []Missing {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Missing(nil), b.missing...)
}

// bundleFile records its file as collected, or as not written.
type bundleFile struct {
	b      *Bundle
	rel    string
	f      io.WriteCloser
	failed bool
}

func (w *bundleFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil && !w.failed {
		w.failed = true
		w.b.failedWrite(w.rel, err)
	}
	return n, err
}

func (w *bundleFile) Close() error {
	err := w.f.Close()
	switch {
	case err != nil && !w.failed:
		w.failed = true
		w.b.failedWrite(w.rel, err)
	case err == nil && !w.failed:
		w.b.mu.Lock()
		w.b.collected = append(w.b.collected, w.rel)
		w.b.mu.Unlock()
	}
	return err
}

// IncompleteError is the error of an export that could not write some of
// its files (a full disk, say): what it did write stays where it is.
type IncompleteError struct {
	Dir string
	// Unwritten are the files that could not be written; the summary may
	// be one of them.
	Unwritten []string
	// Written counts the files that were.
	Written int
	Err     error
}

func (e *IncompleteError) Error() string {
	shown := e.Unwritten
	const most = 10
	more := ""
	if len(shown) > most {
		more = fmt.Sprintf(" and %d more", len(shown)-most)
		shown = shown[:most]
	}
	if e.Written == 0 {
		return fmt.Sprintf("nothing could be written to %s: %v (could not write %s%s)", e.Dir, e.Err, strings.Join(shown, ", "), more)
	}
	return fmt.Sprintf("export in %s is incomplete: %v: could not write %s%s; the %d file(s) written are kept", e.Dir, e.Err, strings.Join(shown, ", "), more, e.Written)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// Finish writes summary.txt, with header (what was exported, when, by
// which minik) above the lists of what was and was not collected. It
// returns an *IncompleteError when some file, the summary included, could
// not be written.
func (b *Bundle) Finish(ctx context.Context, header string) error {
	var s strings.Builder
	s.WriteString(strings.TrimRight(header, "\n") + "\n\n")
	collected := b.Collected()
	missing := b.MissingItems()
	fmt.Fprintf(&s, "Collected (%d files):\n", len(collected))
	for _, c := range collected {
		s.WriteString("  " + c + "\n")
	}
	if len(missing) == 0 {
		s.WriteString("\nNot collected: nothing, everything was collected.\n")
	} else {
		fmt.Fprintf(&s, "\nNot collected (%d):\n", len(missing))
		for _, m := range missing {
			fmt.Fprintf(&s, "  - %s: %s\n", m.What, m.Why)
		}
	}
	f, err := b.create(filepath.Join(b.dir, SummaryFile))
	if err == nil {
		_, err = io.WriteString(f, s.String())
		err = errors.Join(err, f.Close())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.unwritten = append(b.unwritten, SummaryFile)
		if b.writeErr == nil {
			b.writeErr = err
		}
	}
	if len(b.unwritten) == 0 {
		return nil
	}
	return &IncompleteError{Dir: b.dir, Unwritten: slices.Clone(b.unwritten), Written: len(b.collected), Err: b.writeErr}
}
