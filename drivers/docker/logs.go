package docker

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"minik.dev/minik/drivers"
)

// TailNodeLog implements drivers.LogTailer: the node container's last
// lines of output (stdout and stderr, interleaved as the engine kept them),
// indented, for error messages that must stand on their own.
func (d *Driver) TailNodeLog(ctx context.Context, n drivers.Node, lines int) string {
	return "last lines of its log:\n" + d.tailNodeLog(ctx, n, lines)
}

func (d *Driver) tailNodeLog(ctx context.Context, n drivers.Node, lines int) string {
	api, err := d.client()
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	c, err := d.existingNode(ctx, api, n)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	if c == nil {
		return "  (no log: node container " + n.Name + " does not exist)"
	}
	rc, err := api.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(lines)})
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	defer rc.Close()
	var out bytes.Buffer
	// Node containers have no TTY, so the engine multiplexes both streams.
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		return "  (no log: read container log: " + err.Error() + ")"
	}
	text := strings.TrimRight(out.String(), "\n")
	if text == "" {
		return "  (no log: node container " + n.Name + " printed nothing)"
	}
	return "  " + strings.ReplaceAll(text, "\n", "\n  ")
}
