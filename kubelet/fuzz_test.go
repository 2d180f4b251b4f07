package kubelet

import "testing"

// The node log query comes from the apiserver's node proxy.
func FuzzParseLogQuery(f *testing.F) {
	f.Add("minik-node", "10", "2026-12-03T10:00:00Z", "err.*")
	f.Add("", "-1", "yesterday", "(")
	f.Fuzz(func(t *testing.T, query, tail, since, pattern string) {
		_, _ = parseLogQuery(map[string][]string{"query": {query}, "tailLines": {tail}, "sinceTime": {since}, "pattern": {pattern}})
	})
}
