"""Send credit applications to a dsops gateway as an MLflow scoring client would, and keep
the true decisions to send back later as feedback (labels arrive after predictions).

    python traffic.py URL DATA.csv [--requests N] [--concurrency C] [--labels OUT.csv] [--seed S]
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

FEATURES = ["age", "sex", "region", "income", "loan_amount", "purpose"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("data", type=Path)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--seed", type=int, default=None, help="Sample seed (default: random).")
    args = parser.parse_args()
    with args.data.open() as f:
        rows = list(csv.DictReader(f))
    # A different sample of applicants each call, as real traffic would be.
    rows = random.Random(args.seed).sample(rows, min(args.requests, len(rows)))

    def send(row: dict[str, str]) -> tuple[int, float, str, str]:
        record = [int(row["age"]), row["sex"], row["region"], float(row["income"]),
                  float(row["loan_amount"]), row["purpose"]]
        body = {"dataframe_split": {"columns": FEATURES, "data": [record]}}
        started = time.perf_counter()
        response = client.post(f"{args.url}/invocations", json=body)
        return (response.status_code, (time.perf_counter() - started) * 1000,
                response.headers.get("x-request-id", ""), row["approved"])

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(send, rows))
    ok = [r for r in results if r[0] == 200]
    latencies = sorted(r[1] for r in ok)
    p50 = statistics.median(latencies) if latencies else float("nan")
    print(f"sent {len(results)} requests: {len(ok)} answered, {len(results) - len(ok)} failed; "
          f"client p50 {p50:.1f} ms")
    if args.labels:
        with args.labels.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["request_id", "label"])
            writer.writerows([rid, label] for _, _, rid, label in ok)
        print(f"true decisions of the answered requests kept in {args.labels} (feedback later)")


if __name__ == "__main__":
    main()
