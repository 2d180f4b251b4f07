#!/usr/bin/env bash
# run.sh is what a CI job does with minik (docs/ci.md): build minik, start a
# cluster and wait for it, run the tests, and when anything fails keep
# `minik export logs` where the job uploads artifacts. GitHub Actions and
# GitLab CI both call it, so the two jobs cannot drift apart.
#
#   hack/ci-example/run.sh [TEST COMMAND...]
#
# The test command runs with the cluster's context current in $KUBECONFIG
# (default: wait for every node Ready). Environment:
#   MINIK              minik binary (default: bin/minik, built with `make build`)
#   MINIK_SKIP_BUILD   set: use $MINIK as it is
#   MINIK_PROFILE      profile to start (default: ci)
#   MINIK_NODES        nodes of the cluster (default: 1)
#   MINIK_DRIVER       driver (default: docker when an engine answers, else process)
#   MINIK_WAIT         how long start waits for the cluster (default: 5m)
#   MINIK_KEEP         set: leave the cluster running at the end
#   ARTIFACTS_DIR      where the export goes on failure (default: _artifacts)
# The exit code is the failing step's: minik start's (2 bad input, 3 driver
# unavailable, 4 timed out) or the test command's.
set -euo pipefail

cd "$(dirname "$0")/../.."
MINIK=${MINIK:-$PWD/bin/minik}
PROFILE=${MINIK_PROFILE:-ci}
ARTIFACTS_DIR=${ARTIFACTS_DIR:-_artifacts}
export MINIK PROFILE

if [[ -z "${MINIK_SKIP_BUILD:-}" ]]; then
	echo "--- build minik"
	make build
fi

# On any failure: export everything the cluster still has, whatever state
# it is in (a start that timed out keeps its nodes: --retain below).
export_logs() {
	local code=$?
	if [[ $code -ne 0 ]]; then
		echo "--- failed (exit code $code): exporting logs to $ARTIFACTS_DIR/minik-logs"
		mkdir -p "$ARTIFACTS_DIR"
		"$MINIK" export logs "$ARTIFACTS_DIR/minik-logs" -p "$PROFILE" --force || echo "minik export logs failed too"
	fi
	if [[ -z "${MINIK_KEEP:-}" ]]; then
		echo "--- delete the cluster"
		"$MINIK" delete -p "$PROFILE" || true
	fi
	exit "$code"
}
trap export_logs EXIT

echo "--- start a cluster"
"$MINIK" version
"$MINIK" start -p "$PROFILE" --nodes "${MINIK_NODES:-1}" --wait "${MINIK_WAIT:-5m}" --retain

echo "--- run the tests"
if [[ $# -eq 0 ]]; then
	set -- "$MINIK" kubectl -p "$PROFILE" -- wait --for=condition=Ready nodes --all --timeout=60s
fi
"$@"
echo "--- passed"
