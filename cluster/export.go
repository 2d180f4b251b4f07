package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"minik.dev/minik/drivers"
	"minik.dev/minik/logexport"
	"minik.dev/minik/version"
)

// archiveSuffix makes an export a .tar.gz file rather than a folder.
const archiveSuffix = ".tar.gz"

// ExportLogsOptions say where `minik export logs` writes.
type ExportLogsOptions struct {
	// Path is the folder to write (an absolute path), or the .tar.gz file
	// with Tar or a name ending in .tar.gz.
	Path string
	// Force writes into a folder that is not empty, or over an archive.
	Force bool
	// Tar writes a .tar.gz file: Path, with .tar.gz added if it lacks it.
	Tar bool
}

// DefaultExportName names an export after its profile and time:
// minik-logs-dev-20260102-150405.
func DefaultExportName(profile string, now time.Time) string {
	return "minik-logs-" + profile + "-" + now.UTC().Format("20060102-150405")
}

// archive reports whether the export is a .tar.gz file, and its path.
func (o ExportLogsOptions) archive() (bool, string) {
	if strings.HasSuffix(o.Path, archiveSuffix) {
		return true, o.Path
	}
	if o.Tar {
		return true, o.Path + archiveSuffix
	}
	return false, o.Path
}

// Validate returns an *InvalidOptionError for a path that is not absolute,
// or that holds something already (unless Force).
func (o ExportLogsOptions) Validate() error {
	if !filepath.IsAbs(o.Path) {
		return &InvalidOptionError{Field: "Path", Value: o.Path, Reason: "use an absolute path"}
	}
	isArchive, dest := o.archive()
	fi, err := os.Stat(dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return &InvalidOptionError{Field: "Path", Value: dest, Reason: err.Error()}
	case isArchive && fi.IsDir():
		return &InvalidOptionError{Field: "Path", Value: dest, Reason: "it is a folder; name a file for the archive"}
	case isArchive && !o.Force:
		return &InvalidOptionError{Field: "Path", Value: dest, Reason: "the file exists; use --force to replace it"}
	case !isArchive && !fi.IsDir():
		return &InvalidOptionError{Field: "Path", Value: dest, Reason: "it is a file, not a folder"}
	case !isArchive && !o.Force:
		entries, err := os.ReadDir(dest)
		if err != nil {
			return &InvalidOptionError{Field: "Path", Value: dest, Reason: err.Error()}
		}
		if len(entries) > 0 {
			return &InvalidOptionError{Field: "Path", Value: dest, Reason: "the folder is not empty; use --force to write into it"}
		}
	}
	return nil
}

// ExportResult is what an export wrote.
type ExportResult struct {
	// Path is the folder or .tar.gz file written.
	Path string `json:"path"`
	// Collected are the files in it, besides the summary.
	Collected []string `json:"collected"`
	// Missing is what could not be collected, and why.
	Missing []logexport.Missing `json:"missing,omitempty"`
}

// ExportLogs writes everything that helps to find out why a cluster
// failed: every node's agent log (with the control plane's), what the
// driver keeps (for docker: inspect JSON and each node's /var/log), the
// apiserver's objects, events and pod logs when it answers, minik's version
// and the profile, and summary.txt saying what was and was not collected.
// What cannot be collected is noted and skipped; the error is an
// *logexport.IncompleteError only when files could not be written (a full
// disk), and the partial export is kept. It takes no lock: an export is
// wanted most while something else is stuck holding the profile.
func (m *Manager) ExportLogs(ctx context.Context, profile string, o ExportLogsOptions) (*ExportResult, error) {
	if err := ValidateName(profile); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	p, err := m.store.Load(profile)
	if err != nil {
		return nil, err
	}
	isArchive, dest := o.archive()
	dir := dest
	if isArchive {
		// The files gather in a hidden folder beside the archive.
		if dir, err = os.MkdirTemp(filepath.Dir(dest), ".minik-logs-"); err != nil {
			return nil, fmt.Errorf("make export folder: %w", err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make export folder: %w", err)
	}

	b := logexport.NewBundle(dir)
	m.collect(ctx, p, b)
	header := fmt.Sprintf("minik export logs of profile %s (driver %s, %d node(s))\nexported %s by minik %s (kubernetes %s, %s/%s)",
		p.Name, p.Driver, len(p.Nodes), time.Now().UTC().Format(time.RFC3339), version.Version, version.Kubernetes, runtime.GOOS, runtime.GOARCH)
	finishErr := b.Finish(ctx, header)
	res := &ExportResult{Path: dest, Collected: b.Collected(), Missing: b.MissingItems()}
	if finishErr != nil {
		if isArchive {
			res.Path = dir
			return res, fmt.Errorf("%w; no archive was made", finishErr)
		}
		return res, finishErr
	}
	if isArchive {
		root := strings.TrimSuffix(filepath.Base(dest), archiveSuffix)
		if err := logexport.Archive(ctx, dir, dest, root); err != nil {
			res.Path = dir
			return res, fmt.Errorf("%w; the files are kept in %s", err, dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return res, fmt.Errorf("remove %s after archiving: %w", dir, err)
		}
	}
	return res, nil
}

// collect fills the bundle; every failure is noted in it, none stops it.
func (m *Manager) collect(ctx context.Context, p *Profile, b *logexport.Bundle) {
	var v bytes.Buffer
	fmt.Fprintf(&v, "minik %s\nkubernetes %s\n%s %s/%s\n", version.Version, version.Kubernetes, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	_ = b.WriteFile(ctx, "minik/version.txt", v.Bytes())
	if data, err := json.MarshalIndent(p, "", "  "); err != nil {
		b.Missing("minik/profile.json", err)
	} else {
		_ = b.WriteFile(ctx, "minik/profile.json", append(data, '\n'))
	}

	d, err := m.drivers.Get(p.Driver)
	if err != nil {
		b.Missing("node logs and driver diagnostics", err)
	} else {
		m.collectNodes(ctx, d, p, b)
	}

	kc := m.store.AdminKubeconfig(p.Name)
	rc, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		b.Missing("everything from the apiserver (objects, events, node conditions, pod logs)", fmt.Errorf("load admin kubeconfig: %w", err))
		return
	}
	logexport.CollectKubernetes(ctx, rc, b)
}

// collectNodes writes each node's state and agent log, then what else the
// driver keeps.
func (m *Manager) collectNodes(ctx context.Context, d drivers.Driver, p *Profile, b *logexport.Bundle) {
	var states strings.Builder
	nodes := make([]drivers.Node, 0, len(p.Nodes))
	for _, n := range p.Nodes {
		dn := m.driverNode(p, n)
		nodes = append(nodes, dn)
		state, err := d.NodeState(ctx, dn)
		if err != nil {
			state = "unknown (" + err.Error() + ")"
		}
		fmt.Fprintf(&states, "%s\t%s\t%s\t%s\n", n.Name, n.Role, n.IP, state)
	}
	_ = b.WriteFile(ctx, "nodes/states.txt", []byte(states.String()))

	ls, ok := d.(drivers.NodeLogStreamer)
	if !ok {
		b.Missing("node logs", fmt.Errorf("the %s driver cannot show node logs", p.Driver))
	} else {
		for _, dn := range nodes {
			b.WriteFrom(ctx, "nodes/"+dn.Name+"/minik-node.log", func(w io.Writer) error {
				return ls.StreamNodeLog(ctx, dn, drivers.NodeLogOptions{}, w)
			})
		}
	}
	if dc, ok := d.(drivers.DiagnosticsCollector); ok {
		dc.CollectDiagnostics(ctx, p.Name, nodes, b)
	}
}
