#!/usr/bin/env bash
# Start the services the tests use, when they are not already up. SeaweedFS (S3) is
# started by the test fixtures themselves on free ports; here: PostgreSQL.
set -euo pipefail

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "postgresql: up on 127.0.0.1:5432"
else
  echo "postgresql: not running, starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  else
    echo "error: PostgreSQL is not running and pg_ctlcluster is not installed" >&2
    exit 1
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
fi
