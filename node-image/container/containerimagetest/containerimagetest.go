// Package containerimagetest holds helpers for tests that need a real Docker
// Engine: a client that skips (or, in CI, fails) without one, and a tiny
// static binary to stand in for minik-node.
package containerimagetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// Client returns a client of the engine DOCKER_HOST names (or the default).
// Without an engine the test is skipped, except in CI, where one always
// runs and its absence is a failure.
func Client(t testing.TB) *client.Client {
	t.Helper()
	api, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("create docker client: %v", err)
	}
	t.Cleanup(func() { _ = api.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no Docker Engine answers (CI is set, so this fails rather than skips): %v", err)
		}
		t.Skipf("no Docker Engine answers: %v", err)
	}
	return api
}

// program is the stand-in node: it prints its arguments, then waits for
// SIGTERM like minik-node, so stop is quick and clean.
const program = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

var extra string

func main() {
	fmt.Println("test node", extra, os.Args[1:])
	fmt.Fprintln(os.Stderr, "test node stderr")
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	fmt.Println("test node stopping")
}
`

// StaticBinary builds the stand-in node for linux on this machine's
// architecture, static (CGO_ENABLED=0), and returns its path. A different
// extra gives a binary with different bytes.
func StaticBinary(t testing.TB, extra string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module testnode\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "minik-node")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.extra="+extra, "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOWORK=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test node binary: %v\n%s", err, b)
	}
	return out
}
