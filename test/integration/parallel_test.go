package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
)

// TestParallelClusters starts three clusters at once, each from its own
// MINIK_HOME (parallel CI jobs) and all into one kubeconfig that also holds
// another tool's context, then deletes them at once: no clash of subnets,
// node addresses, ports, names or kubeconfig entries, every node's kubelet
// API its own, nothing left. Docker and process drivers.
func TestParallelClusters(t *testing.T) {
	t.Run("docker", func(t *testing.T) {
		requireEngine(t)
		keepNodeImages(t)
		testParallelClusters(t, "docker")
	})
	t.Run("process", func(t *testing.T) { testParallelClusters(t, "process") })
}

func testParallelClusters(t *testing.T, driver string) {
	const n = 3
	shared := filepath.Join(t.TempDir(), "kubeconfig")
	seedKubeconfig(t, shared)
	hs := make([]*harness, n)
	for i := range hs {
		hs[i] = newHarness(t)
		hs[i].kubeconfig = shared
		hs[i].env = append(hs[i].env, "KUBECONFIG="+shared)
		removeCluster(t, hs[i], profileN(i))
	}
	all := func(args func(i int) []string) []result {
		results := make([]result, n)
		var wg sync.WaitGroup
		for i, h := range hs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, h.minik, args(i)...)
				cmd.Env = h.env
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				code := 0
				if exit, ok := err.(*exec.ExitError); ok {
					code = exit.ExitCode()
				} else if err != nil {
					code = -1
				}
				results[i] = result{code: code, stdout: out.String(), stderr: errb.String() + fmt.Sprint(err)}
			}()
		}
		wg.Wait()
		return results
	}

	started := all(func(i int) []string {
		return []string{"start", "-p", profileN(i), "--driver", driver, "--nodes", "2", "-o", "json"}
	})
	subnets, ports, nodeIPs := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, r := range started {
		require.Equal(t, 0, r.code, "start %s: %s", profileN(i), r.stderr)
		var p struct {
			Subnet        string `json:"subnet"`
			APIServerPort int    `json:"apiServerPort"`
		}
		data, err := os.ReadFile(filepath.Join(hs[i].home, "profiles", profileN(i), "profile.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &p))
		require.False(t, p.Subnet != "" && subnets[p.Subnet], "subnet %s given twice", p.Subnet)
		require.False(t, ports[fmt.Sprint(p.APIServerPort)], "port %d given twice", p.APIServerPort)
		subnets[p.Subnet], ports[fmt.Sprint(p.APIServerPort)] = true, true
		st := hs[i].status(profileN(i))
		require.Equal(t, "Running", st.State)
		for _, node := range st.Nodes {
			require.False(t, nodeIPs[node.IP], "node address %s given twice", node.IP)
			nodeIPs[node.IP] = true
		}
	}
	cfg, err := clientcmd.LoadFromFile(shared)
	require.NoError(t, err)
	for i := range hs {
		require.Contains(t, cfg.Contexts, profileN(i))
		// Each node's kubelet API answers for its own node.
		for _, node := range []string{profileN(i), profileN(i) + "-m02"} {
			out := hs[i].ok(time.Minute, "kubectl", "-p", profileN(i), "--", "get", "--raw", "/api/v1/nodes/"+node+"/proxy/metrics")
			require.Contains(t, out, `kubelet_node_name{node="`+node+`"} 1`)
		}
	}
	require.Contains(t, cfg.Contexts, "other", "another tool's context survives")

	deleted := all(func(i int) []string { return []string{"delete", "-p", profileN(i)} })
	for i, r := range deleted {
		require.Equal(t, 0, r.code, "delete %s: %s", profileN(i), r.stderr)
		if driver == "docker" {
			require.Empty(t, docker(t, "ps", "-aq", "--filter", "label="+labelCluster+"="+profileN(i)))
			require.Empty(t, docker(t, "network", "ls", "-q", "--filter", "label="+labelCluster+"="+profileN(i)))
		}
		require.Empty(t, hs[i].nodePIDs(), "no node process of %s is left", profileN(i))
	}
	cfg, err = clientcmd.LoadFromFile(shared)
	require.NoError(t, err)
	require.Len(t, cfg.Contexts, 1, "only the other tool's context is left")
}

func profileN(i int) string { return fmt.Sprintf("par%d", i+1) }
