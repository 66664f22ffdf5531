#!/usr/bin/env bash
# The dsops lifecycle on the bundled credit example, narrated. Run by `make demo`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$here/work"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export DSOPS_USER="dana@example.com"
unset DSOPS_STORE_URL DSOPS_OBJECTS_URL DSOPS_ENCRYPTION_KEY_FILE
unset DSOPS_ENCRYPTION_KEY

bold=$'\e[1m'; dim=$'\e[2m'; off=$'\e[0m'
step() { printf '\n%s━━ %s%s\n' "$bold" "$*" "$off"; }
run()  { printf '%s$ %s%s\n' "$dim" "$*" "$off"; "$@"; }
# A command that must fail (bad input is part of the story): show it, check it failed.
fails() {
  printf '%s$ %s%s   %s(expected to fail)%s\n' "$dim" "$*" "$off" "$dim" "$off"
  if "$@"; then echo "demo: '$*' should have failed" >&2; exit 1; fi
}

step "1. Start a project"
run dsops init --project credit
cp "$here/dsops.yaml" dsops.yaml
cp -r "$here/notes" notes
cp -r "$here/src" src
cp "$here/params.yaml" params.yaml
echo "declared datasets and their expectations in dsops.yaml:"
sed -n '/^datasets:/,$p' dsops.yaml | head -12

step "2. A key for sensitive data (kept outside the store and the repository)"
run dsops keys generate --out "$work/.dsops-key"
export DSOPS_ENCRYPTION_KEY_FILE="$work/.dsops-key"

step "3. A first delivery of data with errors is rejected, with its report"
run python "$here/generate.py" data/credit.csv --rows 5000 --seed 1 --bad
fails dsops data add data/credit.csv --name credit
run dsops data ls

step "4. The corrected delivery is versioned: validated, profiled, PII found and encrypted"
run python "$here/generate.py" data/credit.csv --rows 5000 --seed 1
run dsops data add data/credit.csv --name credit
run dsops data add data/credit.csv --name credit
run dsops status

step "5. New data arrives: status sees it, a second version records it"
run python "$here/generate.py" data/credit.csv --rows 6000 --seed 2 --shift
run dsops status
run dsops data add data/credit.csv --name credit

step "6. What changed between the versions"
run dsops data diff credit@1 credit@2 --html credit-diff.html

step "7. The stored profile (the drift reference for monitoring later)"
run dsops data show credit@2

step "8. Unstructured data: a directory of support notes, scanned for PII"
run dsops data add notes --name support-notes

step "9. Sensitive data cannot be read without the key"
fails env -u DSOPS_ENCRYPTION_KEY_FILE dsops data checkout credit@1 restored.csv
run dsops data checkout credit@1 restored.csv
run python - <<'PY'
import dsops
df = dsops.Dataset("credit@2").to_pandas()
print(f"SDK: dsops.Dataset('credit@2').to_pandas() -> {len(df)} rows, "
      f"mean income {df['income'].mean():,.0f}")
PY

step "10. A reproducible pipeline: prepare → train, every stage a tracked run"
sed -n '/^stages:/,$p' dsops.yaml
run dsops run

step "11. Nothing changed: everything comes from the cache"
run dsops run

step "12. A parameter changes: only the stage that uses it reruns, and dsops says why"
sed -i 's/^  C: 1.0$/  C: 0.05/' params.yaml
run dsops run --dry
run dsops run

step "13. The runs, filtered and compared"
run dsops runs ls --filter "name = 'train' and metrics.auc > 0.5" --sort "started_at"
train_runs=$(dsops runs ls --filter "name = 'train'" --sort started_at --json \
  | python -c "import json, sys; print(' '.join(r['id'] for r in json.load(sys.stdin)))")
run dsops runs compare $train_runs
run dsops runs plot $train_runs --metric auc_partial --out auc.html
run dsops lineage build/model

step "14. Every successful train registered a model version, linked to its run and data"
run dsops models ls
run dsops models show credit-risk@2
run dsops models diff credit-risk@1 credit-risk@2

step "15. The gate: quality, no regression, fairness, data checks, latency — on held-out data"
run python "$here/generate.py" data/credit-eval.csv --rows 2000 --seed 3 --shift
run dsops data add data/credit-eval.csv --name credit-eval
sed -n '/^gates:/,$p' dsops.yaml
run dsops gate credit-risk@2
run dsops models alias credit-risk@2 champion --reason "first model to pass its gate"

step "16. A more accurate variant that uses 'sex' fails its fairness gate and cannot become champion"
sed -i 's/^  use_sex: false/  use_sex: true/' params.yaml
run dsops run
fails dsops gate credit-risk@3
fails dsops models alias credit-risk@3 champion

step "17. What the pull request shows: the CI report (Markdown, JUnit) and the model card"
fails dsops ci report credit-risk@3 -o ci-report.md -o ci-report.xml
run dsops models card credit-risk@champion --format html -o model-card.html
run dsops models card credit-risk@champion --format md -o model-card.md
head -n 30 ci-report.md
echo "CI report: $work/ci-report.md (JUnit: $work/ci-report.xml); model card: $work/model-card.html"
run dsops models history credit-risk

step "18. Serving: start the gateway (OIP v2 + MLflow scoring) and deploy the champion to prod"
port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
url="http://127.0.0.1:$port"
dsops serve --env prod --port "$port" > serve.log 2>&1 &
serve_pid=$!
trap 'kill -TERM $serve_pid 2>/dev/null || true' EXIT
sed -n '/^environments:/,/^monitors:/p' dsops.yaml | head -n 16
# The first version in an environment has nothing to compare with: deployed directly.
deploy_id() { python -c "import json, sys; print(json.load(sys.stdin)['id'])"; }
# The gateway's controller runs the analysis every 5 s; wait until the rollout settles.
wait_rollout() {
  for _ in $(seq 120); do
    status=$(dsops rollout status "$1" --json | python -c "import json, sys; print(json.load(sys.stdin)['status'])")
    case "$status" in promoted|rolled_back|aborted) break ;; esac
    python src/traffic.py "$url" data/credit-eval.csv --requests 300 > /dev/null
    sleep 1
  done
  run dsops rollout status "$1"
}
id=$(dsops deploy credit-risk@champion --env prod --strategy direct --json | deploy_id)
echo "deployment $id waits for a second pair of eyes:"
fails dsops approve "$id"
run env DSOPS_USER=omar@example.com dsops approve "$id" --comment "gate passed, card reviewed"
# The gateway picks deployments up by itself (it re-reads the routes every second).
python - "$url" <<'PY'
import sys, time, urllib.request
for _ in range(600):
    try:
        urllib.request.urlopen(sys.argv[1] + "/v2/models/credit-risk/ready", timeout=1)
        break
    except Exception:
        time.sleep(0.2)
else:
    sys.exit("the gateway did not get ready: see serve.log")
PY
run python src/traffic.py "$url" data/credit-eval.csv --requests 300 --labels labels-1.csv
run curl -s -X POST "$url/v2/models/credit-risk/infer" -H 'content-type: application/json' \
  -d '{"id": "oip-1", "inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [41]},
       {"name": "income", "shape": [1], "datatype": "FP64", "data": [52000.0]},
       {"name": "loan_amount", "shape": [1], "datatype": "FP64", "data": [12000.0]},
       {"name": "region", "shape": [1], "datatype": "BYTES", "data": ["north"]},
       {"name": "purpose", "shape": [1], "datatype": "BYTES", "data": ["car"]}]}'
echo
fails curl -sf -X POST "$url/invocations" -H 'content-type: application/json' \
  -d '{"dataframe_split": {"columns": ["age"], "data": [[41]]}}'

step "19. A retrained version passes its gate and goes out as a canary: 50%, then 100%, checked live"
sed -i 's/^  use_sex: true/  use_sex: false/; s/^  C: 0.05$/  C: 0.5/' params.yaml
run dsops run
run dsops gate credit-risk@4
id=$(dsops deploy credit-risk@4 --env prod --json | deploy_id)
run env DSOPS_USER=omar@example.com dsops approve "$id"
echo "sending traffic while the canary is analysed …"
wait_rollout "$id"
run dsops models alias credit-risk@4 champion --reason "promoted by its canary"

step "20. A broken build goes out as a canary: the live checks catch it and roll it back alone"
run python src/broken_model.py
id=$(dsops deploy credit-risk@5 --env prod --reason "hotfix" --json | deploy_id)
run env DSOPS_USER=omar@example.com dsops approve "$id"
echo "sending traffic while the canary is analysed …"
wait_rollout "$id"
run dsops rollout status

step "21. Months later: the applicants change (drift), the true decisions arrive late"
run python "$here/generate.py" data/live.csv --rows 1500 --seed 9 --drift
run python src/traffic.py "$url" data/live.csv --requests 1500 --concurrency 16 --labels labels-2.csv
run dsops feedback labels-2.csv
run dsops predictions query "SELECT version, role, count(*) AS requests, avg(latency_ms) AS ms FROM predictions GROUP BY ALL ORDER BY version, role"
run dsops predictions compact   # dsops serve does this every 10 minutes; every row is still read once
run dsops predictions prune --dry-run   # the retention in dsops.yaml (365d); dsops serve applies it daily

step "22. The monitor sees the drift: an incident opens and the deployment rolls back by itself"
sed -n '/^monitors:/,$p' dsops.yaml
fails dsops monitor run credit-risk-prod
run dsops incidents ls
run dsops rollout status
incident=$(dsops incidents ls --json | python -c "import json, sys; print(json.load(sys.stdin)[0]['id'])")
run dsops incidents resolve "$incident" --note "rolled back to credit-risk@2; retraining on the new population"
run dsops drift data:credit@2 data/live.csv --columns age,sex,region,income,loan_amount,purpose \
  --html drift-report.html
run dsops monitor report credit-risk-prod --html monitor-report.html
echo "drift report: $work/drift-report.html; monitor report: $work/monitor-report.html"

step "23. The four keys of delivery for this model (DORA)"
run dsops metrics dora --model credit-risk --env prod --since 1d --by day
kill -TERM $serve_pid && wait $serve_pid || true
trap - EXIT
echo "gateway stopped (prediction log flushed)"

step "24. Consent withdrawn: revoke the first version"
run dsops data revoke credit@1 --reason "consent withdrawn by customers in ticket 4411"
run dsops data ls credit

step "25. Every change is in the tamper-evident audit log"
run dsops audit ls --limit 10
run dsops audit verify

printf '\n%sdemo complete%s: work files in %s\n' "$bold" "$off" "$work"
