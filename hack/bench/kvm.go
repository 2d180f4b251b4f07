package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// benchKVM times the kvm driver: 1 and 2 nodes to Ready from scratch and
// from stopped, and the VMs' peak memory. It needs a libvirtd
// (MINIK_LIBVIRT_SOCKET, else the system one); with MINIK_BENCH_NETNS
// every minik command runs in that network namespace, where a libvirtd of
// its own keeps the VMs' network off this machine's.
func benchKVM(ctx context.Context, minik string, env []string, dir string, runs int) error {
	sock := os.Getenv("MINIK_LIBVIRT_SOCKET")
	if sock == "" {
		sock = "/var/run/libvirt/libvirt-sock"
	}
	if c, err := net.Dial("unix", sock); err != nil {
		fmt.Printf("kvm: skipped, no libvirtd answers at %s (set MINIK_LIBVIRT_SOCKET; MINIK_BENCH_NETNS runs minik in a network namespace)\n\n", sock)
		return nil
	} else {
		_ = c.Close()
	}
	home := filepath.Join(dir, "kvm-home")
	env = append(append([]string{}, env...), "MINIK_HOME="+home, "MINIK_DRIVER=kvm")
	mk := func(args ...string) *exec.Cmd {
		argv := append([]string{minik}, args...)
		if ns := os.Getenv("MINIK_BENCH_NETNS"); ns != "" {
			argv = append([]string{"ip", "netns", "exec", ns}, argv...)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		return cmd
	}
	defer func() { _ = mk("delete", "--all").Run() }()
	// The first start unpacks the kernel and writes the shared initramfs:
	// measured on its own, then left out of the medians.
	began := time.Now()
	if out, err := mk("start", "-p", "kprep", "-o", "json").CombinedOutput(); err != nil {
		return fmt.Errorf("first start: %w: %s", err, out)
	}
	fmt.Printf("kvm: first start (kernel and initramfs made or found in the cache): %.1fs\n\n", time.Since(began).Seconds())
	if out, err := mk("delete", "-p", "kprep").CombinedOutput(); err != nil {
		return fmt.Errorf("delete: %w: %s", err, out)
	}
	for _, nodes := range []int{1, 2} {
		var fresh, restart []sample
		for i := 0; i < runs; i++ {
			s, err := timeStart(mk("start", "-p", "kbench", "-o", "json", "--nodes", strconv.Itoa(nodes)), home)
			if err != nil {
				return fmt.Errorf("fresh start %d: %w", i+1, err)
			}
			fresh = append(fresh, s)
			if out, err := mk("stop", "-p", "kbench").CombinedOutput(); err != nil {
				return fmt.Errorf("stop: %w: %s", err, out)
			}
			s, err = timeStart(mk("start", "-p", "kbench", "-o", "json"), home)
			if err != nil {
				return fmt.Errorf("restart %d: %w", i+1, err)
			}
			restart = append(restart, s)
			if out, err := mk("delete", "-p", "kbench").CombinedOutput(); err != nil {
				return fmt.Errorf("delete: %w: %s", err, out)
			}
		}
		fmt.Printf("minik start --driver kvm --nodes %d to ready (nodes Ready + default ServiceAccount; RSS is QEMU's), median of %d\n\n", nodes, runs)
		report("from scratch (kernel cached)", fresh)
		report("restart of a stopped cluster", restart)
	}
	return benchKVMImages(ctx, mk, dir, runs)
}

// benchKVMImages times an image of this machine's engine to a Ready pod
// on a 1-node kvm cluster: pulled by the node from the image server, and
// put there by `minik image load` first.
func benchKVMImages(ctx context.Context, mk func(args ...string) *exec.Cmd, dir string, runs int) error {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		fmt.Printf("kvm images: skipped, no busybox to build an image from\n\n")
		return nil
	}
	build := filepath.Join(dir, "kvm-image")
	if err := os.MkdirAll(build, 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(build, "busybox"), data, 0o755); err != nil {
		return err
	}
	dockerfile := "FROM scratch\nCOPY busybox /bin/busybox\nCMD [\"/bin/busybox\", \"sleep\", \"3600\"]\n"
	if err := os.WriteFile(filepath.Join(build, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	if out, err := mk("start", "-p", "kimg", "-o", "json").CombinedOutput(); err != nil {
		return fmt.Errorf("start: %w: %s", err, out)
	}
	defer func() { _ = mk("delete", "-p", "kimg").Run() }()
	var pulled, loaded []sample
	for i := 0; i < runs; i++ {
		for _, how := range []string{"pull", "load"} {
			tag := fmt.Sprintf("minik-bench-%s:%d-%d", how, time.Now().UnixNano(), i)
			if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", tag, build).CombinedOutput(); err != nil {
				return fmt.Errorf("docker build: %w: %s", err, out)
			}
			began := time.Now()
			if how == "load" {
				if out, err := mk("image", "load", "-p", "kimg", tag).CombinedOutput(); err != nil {
					return fmt.Errorf("image load: %w: %s", err, out)
				}
			}
			pod := fmt.Sprintf("%s-%d", how, i)
			if out, err := mk("kubectl", "-p", "kimg", "--", "run", pod, "--image", tag).CombinedOutput(); err != nil {
				return fmt.Errorf("kubectl run: %w: %s", err, out)
			}
			if out, err := mk("kubectl", "-p", "kimg", "--", "wait", "--for", "condition=Ready", "pod/"+pod, "--timeout", "5m").CombinedOutput(); err != nil {
				return fmt.Errorf("wait for pod: %w: %s", err, out)
			}
			s := sample{total: time.Since(began)}
			if how == "pull" {
				pulled = append(pulled, s)
			} else {
				loaded = append(loaded, s)
			}
			_ = exec.CommandContext(ctx, "docker", "rmi", "-f", tag).Run()
		}
	}
	fmt.Printf("kvm: an image of this machine's engine (busybox, FROM scratch) to a Ready pod, 1 node, median of %d\n\n", runs)
	report("pulled from the image server (no load step)", pulled)
	report("minik image load, then the pod", loaded)
	return nil
}
