package podroutes

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// A node that runs in a container of its own (the docker driver's) does
// not share the host's routing table: it changes that table through a
// helper container in the host's network namespace, with Command. The
// helper records each route it made in a file of its own, so that when it
// is stopped (the cluster is stopped or deleted) it removes them, whatever
// became of the node.

// Command runs `minik-node route ARGS`: `hold` parks until ctx is done,
// then removes the recorded routes; `replace DST GW` and `delete DST GW`
// change one route of table, recorded in the file record.
func Command(ctx context.Context, table Table, record string, args []string) error {
	if len(args) == 1 && args[0] == "hold" {
		<-ctx.Done()
		return removeRecorded(table, record)
	}
	if len(args) != 3 || (args[0] != "replace" && args[0] != "delete") {
		return fmt.Errorf("route takes hold, or replace|delete DESTINATION GATEWAY; got %q", args)
	}
	_, dst, err := net.ParseCIDR(args[1])
	if err != nil {
		return fmt.Errorf("route destination %q: %w", args[1], err)
	}
	gw := net.ParseIP(args[2])
	if gw == nil {
		return fmt.Errorf("route gateway %q is not an IP address", args[2])
	}
	r := Route{Dst: dst, Gateway: gw}
	routes, err := readRecord(record)
	if err != nil {
		return err
	}
	if args[0] == "replace" {
		if err := table.Replace(r); err != nil {
			return err
		}
		routes[r.Dst.String()] = r
	} else {
		if err := table.Delete(r); err != nil {
			return err
		}
		delete(routes, r.Dst.String())
	}
	return writeRecord(record, routes)
}

func removeRecorded(table Table, record string) error {
	routes, err := readRecord(record)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range routes {
		errs = append(errs, table.Delete(r))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return writeRecord(record, nil)
}

// readRecord reads "DST GW" lines, by destination.
func readRecord(path string) (map[string]Route, error) {
	routes := map[string]Route{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return routes, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read recorded routes: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) != 2 {
			continue
		}
		_, dst, err := net.ParseCIDR(fields[0])
		gw := net.ParseIP(fields[1])
		if err != nil || gw == nil {
			continue
		}
		routes[dst.String()] = Route{Dst: dst, Gateway: gw}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read recorded routes: %w", err)
	}
	return routes, nil
}

func writeRecord(path string, routes map[string]Route) error {
	var b strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&b, "%s %s\n", r.Dst, r.Gateway)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("record routes: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("record routes: %w", err)
	}
	return nil
}
