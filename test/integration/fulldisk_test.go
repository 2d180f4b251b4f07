package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fill writes a file that leaves about leave bytes free on dir's disk.
func fill(t *testing.T, dir string, leave int64) string {
	t.Helper()
	out, err := exec.Command("df", "--output=avail", "-B1", dir).Output()
	require.NoError(t, err)
	fields := strings.Fields(string(out))
	avail, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	require.NoError(t, err)
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	// tmpfs has no fallocate of a sparse kind: write the bytes.
	chunk := make([]byte, 1<<20)
	for n := int64(0); n < avail-leave; n += int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), avail-leave-n)]); err != nil {
			break // full
		}
	}
	return path
}

// TestFullDisk runs a cluster whose $MINIK_HOME is a small tmpfs: a start
// on a full disk is refused before it writes anything, a disk that fills
// while the cluster runs stops the control plane without losing what it
// had, and once space is freed the cluster starts again with its objects;
// a read-only one is refused with what to do.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("TestFullDisk mounts a tmpfs and needs root, which CI has")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	require.NoError(t, exec.Command("mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", mnt).Run())
	// Registered first, so it runs last: after the harness deleted the cluster.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	h := newHarness(t)
	h.home = filepath.Join(mnt, "home")
	for i, e := range h.env {
		if strings.HasPrefix(e, "MINIK_HOME=") {
			h.env[i] = "MINIK_HOME=" + h.home
		}
	}
	const profile = "full"
	kubectl := func(args ...string) result {
		return h.run(time.Minute, append([]string{"kubectl", "-p", profile, "--"}, args...)...)
	}

	filler := fill(t, mnt, 40<<20)
	r := h.run(time.Minute, "start", "-p", profile)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "MiB free on the disk of "+h.home)
	assert.Contains(t, r.stderr, "free some space")
	assert.NoDirExists(t, filepath.Join(h.home, "profiles", profile), "a refused start writes nothing")
	assert.Empty(t, h.nodePIDs())

	require.NoError(t, os.Remove(filler))
	h.ok(3*time.Minute, "start", "-p", profile)
	for _, name := range []string{"a", "b", "c"} {
		require.Equal(t, 0, kubectl("create", "configmap", "kept-"+name, "--from-literal=k=v").code)
	}

	// The disk fills while the cluster runs: writes fail, and etcd ends
	// the control plane rather than write half of something.
	filler = fill(t, mnt, 0)
	eventually(t, time.Minute, "a write on a full disk fails", func() (bool, string) {
		r := kubectl("create", "configmap", "on-full-disk-"+time.Now().Format("150405.000000"), "--from-literal=k=v")
		return r.code != 0, r.stdout + r.stderr
	})
	r = h.run(time.Minute, "start", "-p", profile)
	assert.NotEqual(t, 0, r.code, "start on the full disk")
	assert.Contains(t, r.stderr, "MiB free on the disk of")

	require.NoError(t, os.Remove(filler))
	h.ok(3*time.Minute, "start", "-p", profile)
	out := kubectl("get", "configmaps", "-o", "name")
	require.Equal(t, 0, out.code, out.stderr)
	for _, name := range []string{"a", "b", "c"} {
		assert.Contains(t, out.stdout, "configmap/kept-"+name, "acknowledged before the disk filled")
	}
	assert.Equal(t, 0, kubectl("create", "configmap", "after", "--from-literal=k=v").code, "writes work again")

	// A read-only $MINIK_HOME (a disk remounted read-only after errors,
	// say) is refused before anything is tried, and loses nothing.
	h.ok(time.Minute, "stop", "-p", profile)
	require.NoError(t, exec.Command("mount", "-o", "remount,ro", mnt).Run())
	r = h.run(time.Minute, "start", "-p", profile)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "read-only file system")
	assert.Contains(t, r.stderr, "remount it read-write")
	assert.Empty(t, h.nodePIDs())
	assert.Contains(t, h.ok(time.Minute, "status", "-p", profile), "Stopped", "status still reads the profile")
	require.NoError(t, exec.Command("mount", "-o", "remount,rw", mnt).Run())
	h.ok(3*time.Minute, "start", "-p", profile)
	out = kubectl("get", "configmaps", "-o", "name")
	require.Equal(t, 0, out.code, out.stderr)
	assert.Contains(t, out.stdout, "configmap/after", "nothing lost while the disk was read-only")
}
