package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"minik.dev/minik/drivers"
)

// nodeLogDir is the folder of a node container that holds its pods' and
// its agent's log files.
const nodeLogDir = "/var/log"

// TailNodeLog implements drivers.LogTailer: the node container's last
// lines of output (stdout and stderr, interleaved as the engine kept them),
// indented, for error messages that must stand on their own.
func (d *Driver) TailNodeLog(ctx context.Context, n drivers.Node, lines int) string {
	return "last lines of its log:\n" + d.tailNodeLog(ctx, n, lines)
}

func (d *Driver) tailNodeLog(ctx context.Context, n drivers.Node, lines int) string {
	var out bytes.Buffer
	if err := d.StreamNodeLog(ctx, n, drivers.NodeLogOptions{Tail: lines}, &out); err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	text := strings.TrimRight(out.String(), "\n")
	if text == "" {
		return "  (no log: node container " + n.Name + " printed nothing)"
	}
	return "  " + strings.ReplaceAll(text, "\n", "\n  ")
}

// StreamNodeLog implements drivers.NodeLogStreamer: the node container's
// output, which is minik-node's log; the engine keeps it while the
// container exists, stopped or not.
func (d *Driver) StreamNodeLog(ctx context.Context, n drivers.Node, o drivers.NodeLogOptions, w io.Writer) error {
	api, err := d.client()
	if err != nil {
		return err
	}
	c, err := d.existingNode(ctx, api, n)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("node container %s does not exist", n.Name)
	}
	tail := "all"
	if o.Tail > 0 {
		tail = strconv.Itoa(o.Tail)
	}
	rc, err := api.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail, Follow: o.Follow})
	if err != nil {
		if o.Follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read log of node container %s: %w", n.Name, err)
	}
	defer rc.Close()
	// Node containers have no TTY, so the engine multiplexes both streams.
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil {
		if o.Follow && ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("read log of node container %s: %w", n.Name, err)
	}
	return nil
}

// CollectDiagnostics implements drivers.DiagnosticsCollector: the engine's
// inspect JSON of every container, volume and network labelled with the
// cluster, under docker/, and each node container's /var/log, under
// nodes/NODE/var-log/ (copied out of the container, running or stopped).
func (d *Driver) CollectDiagnostics(ctx context.Context, cluster string, nodes []drivers.Node, sink drivers.DiagnosticsSink) {
	api, err := d.client()
	if err != nil {
		sink.Missing("docker engine objects and node files", err)
		return
	}
	collectInspects(ctx, api, cluster, sink)
	for _, n := range nodes {
		what := "/var/log of node " + n.Name
		if err := copyNodeLogs(ctx, api, n, sink); err != nil {
			sink.Missing(what, err)
		}
	}
}

// collectInspects writes what `docker inspect` shows of every container,
// volume and network of the cluster.
func collectInspects(ctx context.Context, api *client.Client, cluster string, sink drivers.DiagnosticsSink) {
	f := clusterFilter(cluster)
	if cs, err := listContainers(ctx, api, f); err != nil {
		sink.Missing("docker inspect of containers", err)
	} else {
		for _, c := range cs {
			name := shortID(c.ID)
			if len(c.Names) > 0 {
				name = strings.TrimPrefix(c.Names[0], "/")
			}
			res, err := api.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
			if err == nil {
				err = writeFile(ctx, sink, "docker/containers/"+name+".json", res.Raw)
			}
			if err != nil {
				sink.Missing("docker inspect of container "+name, err)
			}
		}
	}
	if vols, err := listVolumes(ctx, api, f); err != nil {
		sink.Missing("docker inspect of volumes", err)
	} else {
		for _, v := range vols {
			res, err := api.VolumeInspect(ctx, v, client.VolumeInspectOptions{})
			if err == nil {
				err = writeFile(ctx, sink, "docker/volumes/"+v+".json", res.Raw)
			}
			if err != nil {
				sink.Missing("docker inspect of volume "+v, err)
			}
		}
	}
	nets, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		sink.Missing("docker inspect of networks", fmt.Errorf("list networks: %w", err))
		return
	}
	for _, nw := range nets.Items {
		res, err := api.NetworkInspect(ctx, nw.ID, client.NetworkInspectOptions{})
		if err == nil {
			err = writeFile(ctx, sink, "docker/networks/"+nw.Name+".json", res.Raw)
		}
		if err != nil {
			sink.Missing("docker inspect of network "+nw.Name, err)
		}
	}
}

// copyNodeLogs copies the node container's /var/log out of it. Regular
// files are written as they are; symbolic links (/var/log/containers
// points into /var/log/pods) are listed in symlinks.txt, since their
// targets are copied anyway.
func copyNodeLogs(ctx context.Context, api *client.Client, n drivers.Node, sink drivers.DiagnosticsSink) error {
	res, err := api.CopyFromContainer(ctx, n.Name, client.CopyFromContainerOptions{SourcePath: nodeLogDir})
	if err != nil {
		return fmt.Errorf("copy %s out of node container %s: %w", nodeLogDir, n.Name, err)
	}
	defer res.Content.Close()
	prefix := "nodes/" + n.Name + "/var-log/"
	var links []string
	tr := tar.NewReader(res.Content)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s of node container %s: %w", nodeLogDir, n.Name, err)
		}
		// The archive's entries start with the folder's own name: log/...
		rel, ok := relativeEntry(h.Name)
		if !ok {
			continue
		}
		switch h.Typeflag {
		case tar.TypeReg:
			if err := writeStream(ctx, sink, prefix+rel, tr); err != nil {
				sink.Missing(nodeLogDir+"/"+rel+" of node "+n.Name, err)
			}
		case tar.TypeSymlink:
			links = append(links, rel+" -> "+h.Linkname)
		}
	}
	if len(links) > 0 {
		sort.Strings(links)
		if err := writeFile(ctx, sink, prefix+"symlinks.txt", []byte(strings.Join(links, "\n")+"\n")); err != nil {
			sink.Missing("symlinks of "+nodeLogDir+" of node "+n.Name, err)
		}
	}
	return nil
}

// relativeEntry is an archive entry's path below the copied folder, if it
// is a safe one (no .., not the folder itself).
func relativeEntry(name string) (string, bool) {
	name = path.Clean("/" + name)
	_, rest, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !ok || rest == "" {
		return "", false
	}
	return rest, true
}

func writeFile(ctx context.Context, sink drivers.DiagnosticsSink, name string, data []byte) error {
	return writeStream(ctx, sink, name, bytes.NewReader(data))
}

func writeStream(ctx context.Context, sink drivers.DiagnosticsSink, name string, r io.Reader) error {
	w, err := sink.Create(ctx, name)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return errors.Join(err, w.Close())
}
