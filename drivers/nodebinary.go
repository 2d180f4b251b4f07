package drivers

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// NodeBinaryEnv overrides where minik finds minik-node.
const NodeBinaryEnv = "MINIK_NODE_BINARY"

// FindNodeBinary locates minik-node: $MINIK_NODE_BINARY, then next to the
// running minik, then on PATH. The error says where it looked and what to do.
func FindNodeBinary() (string, error) {
	name := "minik-node"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	if p := os.Getenv(NodeBinaryEnv); p != "" {
		if isExecutable(p) {
			return filepath.Abs(p)
		}
		return "", fmt.Errorf("find minik-node: %s=%s is not an executable file; point it at a built minik-node (make build writes bin/minik-node)", NodeBinaryEnv, p)
	}
	var looked []string
	if exe, err := os.Executable(); err == nil {
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		p := filepath.Join(filepath.Dir(exe), name)
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	}
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	looked = append(looked, "$PATH")
	return "", errors.New("find minik-node: not found in " + strings.Join(looked, ", ") +
		"; build it with `make build` (writes bin/minik-node next to bin/minik) or set " + NodeBinaryEnv)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	if err != nil || st.IsDir() {
		return false
	}
	return runtime.GOOS == "windows" || st.Mode()&0o111 != 0
}
