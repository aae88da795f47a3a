#!/bin/sh
# bench-collect.sh — wait for the kodama-bench Job (bench-job.yaml) to finish,
# read its pods' logs, and merge their reports into one.
#
#   contrib/k8s/bench-collect.sh [JOB [NAMESPACE]]     (default kodama-bench, default)
#
# The pods' logs are kept in JOB.log (one --json report a line, after the prefix
# kubectl adds); the merged report goes to stdout, as `kodama bench` prints it
# (add --json by setting MERGE_ARGS=--json). KODAMA and KUBECTL name the commands.
set -eu
job=${1:-kodama-bench}
ns=${2:-default}
kodama=${KODAMA:-kodama}
kubectl=${KUBECTL:-kubectl}
pods=$("$kubectl" -n "$ns" get job "$job" -o 'jsonpath={.spec.completions}')
"$kubectl" -n "$ns" wait --for=condition=complete --timeout=30m "job/$job" >&2
"$kubectl" -n "$ns" logs -l "job-name=$job" --prefix --tail=-1 \
    --max-log-requests="$pods" >"$job.log"
reports=$(grep -c '{' "$job.log" || true)
if [ "$reports" -ne "$pods" ]; then
    echo "bench-collect: $reports reports in $job.log, but the job has $pods pods" >&2
    exit 1
fi
# shellcheck disable=SC2086
exec "$kodama" bench --merge ${MERGE_ARGS:-} "$job.log"
