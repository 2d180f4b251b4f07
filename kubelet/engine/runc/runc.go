//go:build linux

// Package runc is the node agent's OCI engine, for nodes with no Docker
// Engine (VM nodes): it runs the docker runtime's pod sandboxes and
// containers with runc on the node itself. A sandbox is a network
// namespace plugged into the node's bridge, an IPC namespace and a shared
// /dev/shm; each app container is a runc container that joins them, over
// an overlay of its image's unpacked root. Images come from docker-save
// archives (LoadImage). What runs is known from memory only: pod
// containers do not outlive the agent that runs them (on a VM node the
// agent is PID 1), so New clears what an earlier run left behind.
package runc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"minik.dev/minik/kubelet/engine"
	"minik.dev/minik/nodeconfig"
)

// Options configure the engine.
type Options struct {
	// Node is the node's name (its host-network pods' hostname) and NodeIP
	// its address.
	Node, NodeIP string
	// Binary is runc's path; "" looks it up in PATH.
	Binary string
	// StateDir keeps images, containers' writable layers and logs, and
	// pods' volumes; on a VM node it is the data disk.
	StateDir string
	// RunDir keeps runc's state and the pods' namespaces (a tmpfs).
	RunDir string
	// Bridge is the node's bridge on the cluster network; pods' veths
	// join it. Gateway is the pods' default route and PrefixLen the
	// cluster network's prefix length, which pod addresses carry.
	Bridge    string
	Gateway   string
	PrefixLen int
	// PodCIDR returns the node's pod range, waiting for it if needed.
	PodCIDR func(ctx context.Context) (string, error)
	// ImageServer is the host:port of the registry that serves this
	// machine's engine images (package imageserver); "" pulls from nowhere.
	ImageServer string
}

// Engine runs one node's pods with runc.
type Engine struct {
	o      Options
	runc   string
	images *imageStore
	pool   *addressPool
	// noPivot is set when the node's root is its initramfs, which
	// pivot_root cannot leave.
	noPivot bool

	mu         sync.Mutex
	sandboxes  map[string]*sandbox   // by ID
	containers map[string]*container // by ID
	watchers   map[chan engine.Event]bool
}

// sandbox is a pod's shared namespaces and files.
type sandbox struct {
	id, podUID, namespace, name string
	hostNetwork                 bool
	hostname                    string
	// dir holds hosts, resolv.conf, hostname and the shm mount point.
	dir, shm     string
	netNS, ipcNS string
	hostVeth     string
	ip           string
	started      time.Time
	// sysctls are set in every container, in the namespaces they share.
	sysctls map[string]string
}

// container is one app container, across its one run.
type container struct {
	id, dir, rootfs string
	spec            engine.ContainerSpec
	image           image
	state           engine.State
	log             *logFile
	stdin           io.WriteCloser
	// console is the master side of the terminal of a container that
	// asked for one (set once it runs).
	console *os.File
	// done is closed when the container's run has ended.
	done chan struct{}
}

var _ interface {
	Version(context.Context) (string, error)
} = (*Engine)(nil)

// New prepares the engine's folders and removes every container, pod
// namespace and veth an earlier run of the agent left.
func New(ctx context.Context, o Options) (*Engine, error) {
	bin := o.Binary
	if bin == "" {
		bin = "runc"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("runc engine: runc not found (%w); the node image must carry it", err)
	}
	for _, d := range []string{o.StateDir, o.RunDir} {
		if d == "" {
			return nil, errors.New("runc engine: state and run folders are required")
		}
	}
	e := &Engine{
		o: o, runc: path,
		pool:       &addressPool{podCIDR: o.PodCIDR, taken: map[string]string{}},
		sandboxes:  map[string]*sandbox{},
		containers: map[string]*container{},
		watchers:   map[chan engine.Event]bool{},
		noPivot:    rootIsRAM(),
	}
	if err := becomeSubreaper(); err != nil {
		return nil, fmt.Errorf("runc engine: %w", err)
	}
	if err := e.clearLeftovers(ctx); err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(o.RunDir, "netns"), filepath.Join(o.RunDir, "ipc"), filepath.Join(o.RunDir, "runc"),
		filepath.Join(o.StateDir, "containers"), filepath.Join(o.StateDir, "pods")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runc engine: %w", err)
		}
	}
	e.images, err = openImageStore(filepath.Join(o.StateDir, "images"))
	if err != nil {
		return nil, fmt.Errorf("runc engine: %w", err)
	}
	return e, nil
}

// rootIsRAM reports whether / is a ramfs or tmpfs (an initramfs).
func rootIsRAM() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return false
	}
	return st.Type == unix.RAMFS_MAGIC || st.Type == unix.TMPFS_MAGIC
}

// clearLeftovers removes what an earlier run left: runc containers,
// mounts of writable layers, shm and namespaces, and pod veths.
func (e *Engine) clearLeftovers(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, e.runc, "--root", filepath.Join(e.o.RunDir, "runc"), "list", "-q").Output()
	if err == nil {
		for _, id := range strings.Fields(string(out)) {
			_ = exec.CommandContext(ctx, e.runc, "--root", filepath.Join(e.o.RunDir, "runc"), "delete", "--force", id).Run()
		}
	}
	for _, pattern := range []string{
		filepath.Join(e.o.StateDir, "containers", "*", "rootfs"),
		filepath.Join(e.o.StateDir, "pods", "*", "shm"),
		filepath.Join(e.o.StateDir, "pods", "*", "volumes", "*"),
		filepath.Join(e.o.RunDir, "netns", "*"),
		filepath.Join(e.o.RunDir, "ipc", "*"),
	} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	}
	for _, d := range []string{filepath.Join(e.o.StateDir, "containers"), filepath.Join(e.o.StateDir, "pods"),
		filepath.Join(e.o.RunDir, "netns"), filepath.Join(e.o.RunDir, "ipc")} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("runc engine: clear %s: %w", d, err)
		}
	}
	links, _ := filepath.Glob("/sys/class/net/mk*")
	for _, l := range links {
		_ = detachPod(filepath.Base(l))
	}
	return nil
}

// Close implements nothing to release: containers stop with the node.
func (e *Engine) Close() error { return nil }

// run runs one runc command and returns its error with runc's message.
func (e *Engine) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, e.runc, append([]string{"--root", filepath.Join(e.o.RunDir, "runc")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("runc %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// UpdateResources changes a running container's resources in place.
func (e *Engine) UpdateResources(ctx context.Context, id string, r engine.Resources) error {
	args := []string{"update", "--cpu-period", strconv.Itoa(cpuPeriod), "--cpu-quota", "-1"}
	if r.CPUMillis > 0 {
		args[4] = strconv.FormatInt(max(r.CPUMillis*cpuPeriod/1000, minCPUQuota), 10)
	}
	if r.CPUShares > 0 {
		args = append(args, "--cpu-share", strconv.FormatInt(r.CPUShares, 10))
	}
	if r.MemoryBytes > 0 {
		args = append(args, "--memory", strconv.FormatInt(r.MemoryBytes, 10))
	}
	if err := e.run(ctx, append(args, id)...); err != nil {
		return fmt.Errorf("update resources of container %s: %w", id, err)
	}
	return nil
}

// Version is runc's, as "1.1.5".
func (e *Engine) Version(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, e.runc, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("runc version: %w", err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	v := strings.TrimSpace(strings.TrimPrefix(first, "runc version"))
	v, _, _ = strings.Cut(v, "+")
	return v, nil
}

// LoadImage unpacks the images of a docker-save archive into the node's
// store and returns their names.
func (e *Engine) LoadImage(ctx context.Context, r io.Reader) ([]string, error) {
	return e.images.load(ctx, r)
}

// ImagePresent reports whether an image was loaded under that name.
func (e *Engine) ImagePresent(_ context.Context, ref string) (string, bool, error) {
	img, ok, err := e.images.lookup(ref)
	if err != nil || !ok {
		return "", false, err
	}
	return img.ID, true, nil
}

// ImageUser is the user a loaded image runs as ("" for root).
func (e *Engine) ImageUser(_ context.Context, ref string) (string, error) {
	img, ok, err := e.images.lookup(ref)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("image %s: %w", ref, ErrImageNotLoaded)
	}
	return img.Config.User, nil
}

// PullImage takes the image from the host's image server, when the node
// has one: the image of that name in the host's Docker Engine.
func (e *Engine) PullImage(ctx context.Context, ref string) error {
	if e.o.ImageServer == "" {
		return fmt.Errorf("image %s is not on node %s and this node pulls from no registry: load it with `minik image load`: %w", ref, e.o.Node, ErrImageNotLoaded)
	}
	err := e.images.pull(ctx, e.o.ImageServer, ref)
	if errors.Is(err, errNotOnHost) {
		return fmt.Errorf("image %s is neither on node %s nor in the Docker Engine of the machine that runs the cluster: build it there, or load an archive with `minik image load`: %w", ref, e.o.Node, ErrImageNotLoaded)
	}
	return err
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// RunSandbox makes the pod's namespaces, address and files; a sandbox the
// pod has is returned as it is.
func (e *Engine) RunSandbox(ctx context.Context, spec engine.SandboxSpec) (string, string, error) {
	e.mu.Lock()
	for _, sb := range e.sandboxes {
		if sb.podUID == spec.PodUID {
			e.mu.Unlock()
			return sb.id, sb.ip, nil
		}
	}
	e.mu.Unlock()
	sb := &sandbox{
		id: newID(), podUID: spec.PodUID, namespace: spec.Namespace, name: spec.Name,
		hostNetwork: spec.HostNetwork, hostname: spec.Hostname, started: time.Now(), sysctls: spec.Sysctls,
		dir: filepath.Join(e.o.StateDir, "pods", spec.PodUID),
	}
	if err := e.makeSandbox(ctx, sb, spec); err != nil {
		e.releaseSandbox(sb)
		return "", "", fmt.Errorf("run sandbox of pod %s/%s: %w", spec.Namespace, spec.Name, err)
	}
	e.mu.Lock()
	e.sandboxes[sb.id] = sb
	e.mu.Unlock()
	return sb.id, sb.ip, nil
}

func (e *Engine) makeSandbox(ctx context.Context, sb *sandbox, spec engine.SandboxSpec) error {
	sb.shm = filepath.Join(sb.dir, "shm")
	if err := os.MkdirAll(sb.shm, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("shm", sb.shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=67108864"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	sb.ipcNS = filepath.Join(e.o.RunDir, "ipc", spec.PodUID)
	if err := bindNamespace(sb.ipcNS, unix.CLONE_NEWIPC, "ipc"); err != nil {
		sb.ipcNS = ""
		return err
	}
	hostname, ip := sb.hostname, ""
	if spec.HostNetwork {
		hostname, ip = e.o.Node, e.o.NodeIP
	} else {
		sb.netNS = filepath.Join(e.o.RunDir, "netns", spec.PodUID)
		if err := bindNamespace(sb.netNS, unix.CLONE_NEWNET, "net"); err != nil {
			sb.netNS = ""
			return err
		}
		addr, err := e.pool.allocate(ctx, spec.PodUID)
		if err != nil {
			return err
		}
		sb.ip, ip = addr.String(), addr.String()
		sb.hostVeth = hostVethName(spec.PodUID)
		if err := attachPod(sb.netNS, sb.hostVeth, podNetwork{
			Bridge: e.o.Bridge, IP: addr, PrefixLen: e.o.PrefixLen, Gateway: net.ParseIP(e.o.Gateway).To4(),
		}); err != nil {
			return err
		}
	}
	if hostname == "" {
		hostname = spec.Name
	}
	return writePodFiles(sb.dir, hostname, ip, spec)
}

// writePodFiles writes the pod's /etc/hosts, /etc/resolv.conf and
// /etc/hostname, which every container of the pod binds.
func writePodFiles(dir, hostname, ip string, spec engine.SandboxSpec) error {
	hosts := engine.HostsFile(ip, hostname, spec)
	resolv := engine.ResolvConf(spec)
	if resolv == nil {
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			resolv = b
		}
	}
	for f, data := range map[string]string{"hosts": string(hosts), "resolv.conf": string(resolv), "hostname": hostname + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(data), 0o644); err != nil {
			return fmt.Errorf("write pod's %s: %w", f, err)
		}
	}
	return nil
}

// releaseSandbox undoes makeSandbox, as far as it got.
func (e *Engine) releaseSandbox(sb *sandbox) {
	if sb.hostVeth != "" {
		_ = detachPod(sb.hostVeth)
	}
	if sb.netNS != "" {
		_ = releaseNamespace(sb.netNS)
	}
	if sb.ipcNS != "" {
		_ = releaseNamespace(sb.ipcNS)
	}
	if sb.shm != "" {
		_ = unix.Unmount(sb.shm, unix.MNT_DETACH)
	}
	e.pool.release(sb.podUID)
	vols, _ := filepath.Glob(filepath.Join(sb.dir, "volumes", "*"))
	for _, v := range vols {
		_ = unix.Unmount(v, unix.MNT_DETACH)
	}
	_ = os.RemoveAll(sb.dir)
}

// CreateContainer makes a container's writable layer over its image,
// copies spec.Files into it and writes its runc configuration.
func (e *Engine) CreateContainer(ctx context.Context, spec engine.ContainerSpec) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("create container %s of pod %s/%s: %w", spec.Name, spec.Namespace, spec.PodName, err)
	}
	e.mu.Lock()
	sb := e.sandboxes[spec.SandboxID]
	e.mu.Unlock()
	if sb == nil {
		return fail(fmt.Errorf("sandbox %s: %w", spec.SandboxID, engine.ErrNotFound))
	}
	img, ok, err := e.images.lookup(spec.Image)
	if err != nil {
		return fail(err)
	}
	if !ok {
		return fail(fmt.Errorf("image %s: %w", spec.Image, ErrImageNotLoaded))
	}
	c := &container{id: newID(), spec: spec, image: img, done: make(chan struct{})}
	c.dir = filepath.Join(e.o.StateDir, "containers", c.id)
	c.rootfs = filepath.Join(c.dir, "rootfs")
	for _, d := range []string{c.rootfs, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", img.Rootfs, filepath.Join(c.dir, "upper"), filepath.Join(c.dir, "work"))
	if err := unix.Mount("overlay", c.rootfs, "overlay", 0, opts); err != nil {
		_ = os.RemoveAll(c.dir)
		return fail(fmt.Errorf("mount writable layer: %w", err))
	}
	if err := e.prepare(c, sb); err != nil {
		_ = unix.Unmount(c.rootfs, unix.MNT_DETACH)
		_ = os.RemoveAll(c.dir)
		return fail(err)
	}
	c.state = engine.State{Status: "created", ImageID: img.ID, Reason: "Created"}
	e.mu.Lock()
	e.containers[c.id] = c
	e.mu.Unlock()
	return c.id, nil
}

// prepare writes the container's files and its config.json.
func (e *Engine) prepare(c *container, sb *sandbox) error {
	for _, f := range c.spec.Files {
		p, err := securejoin.SecureJoin(c.rootfs, f.Path)
		if err != nil {
			return fmt.Errorf("copy file %s: %w", f.Path, err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("copy file %s: %w", f.Path, err)
		}
		mode := os.FileMode(f.Mode)
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, f.Data, mode); err != nil {
			return fmt.Errorf("copy file %s: %w", f.Path, err)
		}
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("copy file %s: %w", f.Path, err)
		}
	}
	s, err := e.ociSpec(c.id, c.spec, c.image, sb, c.rootfs)
	if err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, "config.json"), b, 0o600); err != nil {
		return err
	}
	lf, err := openLog(filepath.Join(c.dir, "log.json"))
	if err != nil {
		return err
	}
	c.log = lf
	return nil
}

// Start runs a created container; runc stays its parent, so its exit
// status is the container's, and keeps the container (and its cgroup,
// which tells of an OOM kill) until Remove.
func (e *Engine) Start(ctx context.Context, id string) error {
	e.mu.Lock()
	c := e.containers[id]
	e.mu.Unlock()
	if c == nil {
		return fmt.Errorf("start container %s: %w", id, engine.ErrNotFound)
	}
	select {
	case <-c.done:
		return fmt.Errorf("start container %s: it has run; create a new one", id)
	default:
	}
	pidFile := filepath.Join(c.dir, "pid")
	runcLog := filepath.Join(c.dir, "runc.log")
	args := []string{"--root", filepath.Join(e.o.RunDir, "runc"), "--log", runcLog, "--log-format", "json", "run", "--keep", "--bundle", c.dir, "--pid-file", pidFile}
	if e.noPivot {
		args = append(args, "--no-pivot")
	}
	if c.spec.TTY {
		return e.startWithTerminal(ctx, c, args, pidFile, runcLog)
	}
	// Not CommandContext: the container outlives the request that starts it.
	cmd := exec.Command(e.runc, append(args, id)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	if c.spec.Stdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			return fmt.Errorf("start container %s: %w", id, err)
		}
		c.stdin = w
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	e.started(c)
	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); c.log.copy(stdout, "stdout") }()
	go func() { defer copies.Done(); c.log.copy(stderr, "stderr") }()
	go func() {
		copies.Wait()
		err := cmd.Wait()
		e.finish(c, pidFile, runcLog, err)
	}()
	return nil
}

// startWithTerminal runs a container that asked for a TTY. runc hands a
// terminal over only when it detaches: the container's process is then
// this process's to wait for (a subreaper), and runc keeps the container
// until Remove deletes it. The terminal's output is the log (one stream),
// and attach writes to it.
func (e *Engine) startWithTerminal(ctx context.Context, c *container, args []string, pidFile, runcLog string) error {
	sock, err := newConsoleSocket(e.o.RunDir)
	if err != nil {
		return fmt.Errorf("start container %s: %w", c.id, err)
	}
	defer sock.close()
	// Detached: --keep does not apply, runc keeps it anyway.
	var detached []string
	for _, a := range args {
		if a != "--keep" {
			detached = append(detached, a)
		}
	}
	cmd := exec.Command(e.runc, append(detached, "--detach", "--console-socket", sock.path, c.id)...)
	var runcOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &runcOut, &runcOut
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start container %s: %w", c.id, err)
	}
	e.started(c)
	exited := make(chan struct{})
	var runcErr error
	go func() {
		runcErr = cmd.Wait()
		close(exited)
	}()
	console, err := sock.receive(ctx, exited)
	<-exited
	var proc *detachedProcess
	if err == nil && runcErr == nil {
		proc, err = waitDetached(pidFile)
	}
	if err != nil || runcErr != nil {
		// runc failed before the process ran: finish says why.
		if console != nil {
			_ = console.Close()
		}
		_ = os.Remove(pidFile)
		e.finish(c, pidFile, runcLog, errors.Join(err, runcErr, errors.New(strings.TrimSpace(runcOut.String()))))
		return nil
	}
	e.mu.Lock()
	c.console = console
	e.mu.Unlock()
	go func() {
		c.log.copy(console, "stdout")
		<-proc.done
		var exitErr error
		if proc.err != nil || proc.code != 0 {
			exitErr = &exitCodeError{code: proc.code, err: proc.err}
		}
		e.finish(c, pidFile, runcLog, exitErr)
	}()
	return nil
}

// exitCodeError is a detached process's end, for finish.
type exitCodeError struct {
	code int
	err  error
}

func (e *exitCodeError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit code %d", e.code)
}

// started records that a container's run began.
func (e *Engine) started(c *container) {
	e.mu.Lock()
	c.state = engine.State{Status: "running", Running: true, StartedAt: time.Now(), ImageID: c.image.ID}
	e.mu.Unlock()
	e.notify(c, "start")
}

// finish records how a container's run ended.
func (e *Engine) finish(c *container, pidFile, runcLog string, err error) {
	e.mu.Lock()
	started := c.state.StartedAt
	e.mu.Unlock()
	st := engine.State{Status: "exited", StartedAt: started, FinishedAt: time.Now(), ImageID: c.image.ID}
	var exit *exec.ExitError
	var detachedExit *exitCodeError
	switch {
	case err == nil:
		st.Reason = "Completed"
	case errors.As(err, &detachedExit) && detachedExit.err == nil:
		st.ExitCode, st.Reason = detachedExit.code, "Error"
	case errors.As(err, &exit):
		st.ExitCode = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			st.ExitCode = 128 + int(ws.Signal())
		}
		st.Reason = "Error"
	default:
		st.ExitCode, st.Reason, st.Error = 128, "Error", err.Error()
	}
	if _, perr := os.Stat(pidFile); perr != nil && err != nil {
		// runc never started the process: the container could not run.
		st.Reason, st.Error = engine.StartError, runcError(runcLog)
		if st.ExitCode == 0 {
			st.ExitCode = 128
		}
	}
	if oomKilled(c.id) {
		st.OOMKilled, st.Reason = true, "OOMKilled"
	}
	c.log.close()
	e.mu.Lock()
	c.state = st
	if c.console != nil {
		_ = c.console.Close()
	}
	e.mu.Unlock()
	close(c.done)
	e.notify(c, "die")
}

// runcError is the last error runc logged.
func runcError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "runc failed before it logged anything"
	}
	msg := ""
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && (rec.Level == "error" || rec.Level == "fatal") {
			msg = rec.Msg
		}
	}
	if msg == "" {
		return "runc failed: " + strings.TrimSpace(string(b))
	}
	return msg
}

// Stop sends the image's stop signal (SIGTERM by default), then SIGKILL
// once grace is over, and waits for the container to end.
func (e *Engine) Stop(ctx context.Context, id string, grace time.Duration) error {
	e.mu.Lock()
	c := e.containers[id]
	e.mu.Unlock()
	if c == nil {
		return fmt.Errorf("stop container %s: %w", id, engine.ErrNotFound)
	}
	if !e.running(c) {
		return nil
	}
	sig := c.image.Config.StopSignal
	if sig == "" {
		sig = "SIGTERM"
	}
	if err := e.run(ctx, "kill", id, sig); err != nil {
		select {
		case <-c.done:
			return nil
		default:
		}
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	_ = e.run(ctx, "kill", id, "SIGKILL")
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Remove kills a container if it runs and removes it and its files.
func (e *Engine) Remove(ctx context.Context, id string) error {
	e.mu.Lock()
	c := e.containers[id]
	sb := e.sandboxes[id]
	e.mu.Unlock()
	switch {
	case sb != nil:
		return e.removeSandbox(ctx, sb)
	case c == nil:
		return nil
	}
	if e.running(c) {
		_ = e.run(ctx, "kill", id, "SIGKILL")
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	_ = e.run(ctx, "delete", "--force", id)
	if c.log != nil {
		c.log.close()
	}
	if err := unix.Unmount(c.rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	e.mu.Lock()
	delete(e.containers, id)
	e.mu.Unlock()
	return nil
}

// running reports whether a container's run has begun and not ended.
func (e *Engine) running(c *container) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return c.state.Running
}

func (e *Engine) removeSandbox(ctx context.Context, sb *sandbox) error {
	e.mu.Lock()
	var ids []string
	for id, c := range e.containers {
		if c.spec.SandboxID == sb.id {
			ids = append(ids, id)
		}
	}
	e.mu.Unlock()
	for _, id := range ids {
		if err := e.Remove(ctx, id); err != nil {
			return err
		}
	}
	e.releaseSandbox(sb)
	e.mu.Lock()
	delete(e.sandboxes, sb.id)
	e.mu.Unlock()
	return nil
}

// Inspect is a container's state; a sandbox runs while it exists.
func (e *Engine) Inspect(_ context.Context, id string) (engine.State, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sb := e.sandboxes[id]; sb != nil {
		return engine.State{Status: "running", Running: true, StartedAt: sb.started}, nil
	}
	c := e.containers[id]
	if c == nil {
		return engine.State{}, fmt.Errorf("inspect container %s: %w", id, engine.ErrNotFound)
	}
	return c.state, nil
}

// EnsureVolume makes the folder of a pod's emptyDir (a tmpfs for medium
// Memory) and returns its path.
func (e *Engine) EnsureVolume(_ context.Context, podUID, name string, o engine.EmptyDir) (string, error) {
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("volume name %q", name)
	}
	dir := filepath.Join(e.o.StateDir, "pods", podUID, "volumes", name)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return "", fmt.Errorf("create volume %s: %w", name, err)
	}
	if o.Memory {
		data := "mode=1777"
		if o.SizeBytes > 0 {
			data += fmt.Sprintf(",size=%d", o.SizeBytes)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
			_ = os.Remove(dir)
			return "", fmt.Errorf("create volume %s: mount tmpfs: %w", name, err)
		}
	}
	return dir, nil
}

// EnsureNodeVolume is the node's own folder: a hostPath volume is the
// node's path itself.
func (e *Engine) EnsureNodeVolume(_ context.Context, path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("node folder %q is not absolute", path)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", fmt.Errorf("node folder %s: %w", path, err)
	}
	return path, nil
}

// EnsureImageVolume returns the unpacked tree of a loaded image for an
// image volume: the runtime mounts it read-only, so the pods that use the
// image share it as they share its layers.
func (e *Engine) EnsureImageVolume(_ context.Context, _, name, ref string) (string, error) {
	img, ok, err := e.images.lookup(ref)
	if err != nil {
		return "", fmt.Errorf("image volume %s: %w", name, err)
	}
	if !ok {
		return "", fmt.Errorf("image volume %s: image %s: %w", name, ref, ErrImageNotLoaded)
	}
	return img.Rootfs, nil
}

// chownGroup gives a folder to group gid with mode.
func chownGroup(dir string, gid int64, mode os.FileMode) error {
	if err := os.Chown(dir, 0, int(gid)); err != nil {
		return err
	}
	return os.Chmod(dir, mode|os.ModeSetgid)
}

// WriteVolumeFiles writes a generation of a configMap, secret, downward
// API or projected volume into its folder, laid out as the docker engine's
// WriteVolumeFiles lays it out; the switch to it is one rename.
func (e *Engine) WriteVolumeFiles(_ context.Context, _, volume, gen string, files []engine.File) error {
	dir, err := e.volumePath(volume)
	if err != nil {
		return fmt.Errorf("write volume %s: %w", volume, err)
	}
	fail := func(err error) error { return fmt.Errorf("write volume %s: %w", volume, err) }
	var names []string
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if p == "" || strings.HasPrefix(p, "..") {
			return fail(fmt.Errorf("file %q: not a path inside the volume", f.Path))
		}
		dst := filepath.Join(dir, gen, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fail(err)
		}
		mode := os.FileMode(f.Mode)
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(dst, f.Data, mode); err != nil {
			return fail(err)
		}
		if f.GID != 0 {
			// The fsGroup's, with the folders made for it (chown before
			// chmod: chown clears the set-group-ID bit).
			for d := filepath.Dir(dst); d != filepath.Join(dir, gen) && strings.HasPrefix(d, dir); d = filepath.Dir(d) {
				if err := chownGroup(d, f.GID, 0o755); err != nil {
					return fail(err)
				}
			}
			if err := chownGroup(filepath.Join(dir, gen), f.GID, 0o755); err != nil {
				return fail(err)
			}
			if err := os.Chown(dst, 0, int(f.GID)); err != nil {
				return fail(err)
			}
		}
		if err := os.Chmod(dst, mode); err != nil {
			return fail(err)
		}
		top, _, _ := strings.Cut(p, "/")
		if !slices.Contains(names, top) {
			names = append(names, top)
		}
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(gen, tmp); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return fail(err)
	}
	for _, n := range names {
		link := filepath.Join(dir, n)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink("..data/"+n, link); err != nil {
			return fail(err)
		}
	}
	return nil
}

// RemoveClaimVolume removes a claim volume and its data from this node's
// disk; one that is gone already is no error.
func (e *Engine) RemoveClaimVolume(_ context.Context, name string) error {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return fmt.Errorf("volume name %q", name)
	}
	if err := os.RemoveAll(filepath.Join(e.o.StateDir, "volumes", name)); err != nil {
		return fmt.Errorf("remove claim volume %s: %w", name, err)
	}
	return nil
}

// List is the node's sandboxes and app containers.
func (e *Engine) List(_ context.Context) ([]engine.PodContainer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.PodContainer
	for _, sb := range e.sandboxes {
		out = append(out, engine.PodContainer{ID: sb.id, PodUID: sb.podUID, Namespace: sb.namespace, PodName: sb.name,
			Kind: nodeconfig.KindSandbox, Running: true})
	}
	for _, c := range e.containers {
		out = append(out, engine.PodContainer{ID: c.id, PodUID: c.spec.PodUID, Namespace: c.spec.Namespace, PodName: c.spec.PodName,
			Container: c.spec.Name, Kind: nodeconfig.KindContainer, Attempt: c.spec.Attempt, Running: c.state.Running})
	}
	return out, nil
}

// RemovePod removes the pod's containers, then its sandbox.
func (e *Engine) RemovePod(ctx context.Context, podUID string) error {
	e.mu.Lock()
	var sbs []*sandbox
	for _, sb := range e.sandboxes {
		if sb.podUID == podUID {
			sbs = append(sbs, sb)
		}
	}
	var orphans []string
	for id, c := range e.containers {
		if c.spec.PodUID == podUID {
			orphans = append(orphans, id)
		}
	}
	e.mu.Unlock()
	for _, id := range orphans {
		if err := e.Remove(ctx, id); err != nil {
			return fmt.Errorf("remove pod %s: %w", podUID, err)
		}
	}
	for _, sb := range sbs {
		if err := e.removeSandbox(ctx, sb); err != nil {
			return fmt.Errorf("remove pod %s: %w", podUID, err)
		}
	}
	_ = os.RemoveAll(filepath.Join(e.o.StateDir, "pods", podUID))
	return nil
}

// RemoveOrphans has nothing to do: a node's containers are its own and go
// with it.
func (e *Engine) RemoveOrphans(context.Context) (int, error) { return 0, nil }

// Events streams starts and deaths of the node's containers until ctx ends.
func (e *Engine) Events(ctx context.Context) <-chan engine.Event {
	ch := make(chan engine.Event, 64)
	e.mu.Lock()
	e.watchers[ch] = true
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		delete(e.watchers, ch)
		close(ch)
		e.mu.Unlock()
	}()
	return ch
}

// notify tells every watcher; a full watcher misses the event (events
// are hints: the runtime relists).
func (e *Engine) notify(c *container, action string) {
	ev := engine.Event{ID: c.id, PodUID: c.spec.PodUID, Container: c.spec.Name, Kind: nodeconfig.KindContainer, Action: action}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.watchers {
		select {
		case ch <- ev:
		default:
		}
	}
}
