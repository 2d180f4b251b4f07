//go:build linux

package runc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"minik.dev/minik/kubelet/engine"
)

// consoleTimeout bounds how long runc takes to hand over a terminal.
const consoleTimeout = 30 * time.Second

// consoleSocket is where runc hands over the master side of a process's
// terminal (its --console-socket): one connection, one file descriptor.
type consoleSocket struct {
	path string
	l    *net.UnixListener
}

func newConsoleSocket(dir string) (*consoleSocket, error) {
	path := filepath.Join(dir, "console-"+newID()[:16]+".sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{path: path, l: l}, nil
}

// receive waits for runc's connection and returns the terminal it sends.
// done ends the wait early (runc failed before it sent one).
func (s *consoleSocket) receive(ctx context.Context, done <-chan struct{}) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := s.accept()
		ch <- result{f, err}
	}()
	t := time.NewTimer(consoleTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	_ = s.l.Close()
	if r := <-ch; r.err == nil {
		return r.f, nil
	}
	return nil, errors.New("runc sent no terminal")
}

func (s *consoleSocket) accept() (*os.File, error) {
	c, err := s.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive terminal: no file descriptor (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive terminal: no file descriptor (%v)", err)
	}
	return os.NewFile(uintptr(fds[0]), "console"), nil
}

func (s *consoleSocket) close() {
	_ = s.l.Close()
	_ = os.Remove(s.path)
}

// resizeConsole follows the client's terminal size. The ioctl goes
// through the file's raw connection, which fails once the file is closed
// rather than racing its close.
func resizeConsole(console *os.File, sizes <-chan engine.Size) {
	raw, err := console.SyscallConn()
	if err != nil {
		return
	}
	for sz := range sizes {
		ws := &unix.Winsize{Row: uint16(sz.Height), Col: uint16(sz.Width)}
		if err := raw.Control(func(fd uintptr) { _ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) }); err != nil {
			return
		}
	}
}

// becomeSubreaper makes this process the reaper of its orphaned
// descendants: a detached runc (the only way runc hands over a terminal)
// leaves its process to us, so that we can wait for it.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a subreaper: %w", err)
	}
	return nil
}

// detachedProcess is a process a detached runc started: its pid (from
// runc's pid file) and, once it ends, its exit code.
type detachedProcess struct {
	pid  int
	done chan struct{}
	code int
	err  error
}

// waitDetached reads the pid runc wrote and waits for that process, which
// is this process's child once runc has exited.
func waitDetached(pidFile string) (*detachedProcess, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return nil, fmt.Errorf("read pid: %w", err)
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "%d", &pid); err != nil || pid <= 0 {
		return nil, fmt.Errorf("read pid: %q", b)
	}
	p := &detachedProcess{pid: pid, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				p.err = fmt.Errorf("wait for process %d: %w", pid, err)
				return
			}
			break
		}
		switch {
		case ws.Exited():
			p.code = ws.ExitStatus()
		case ws.Signaled():
			p.code = 128 + int(ws.Signal())
		}
	}()
	return p, nil
}

// copyConsole copies a terminal's output until the process behind it is
// gone (the master then reads EIO).
func copyConsole(w io.Writer, console *os.File) {
	_, _ = io.Copy(w, console)
}
