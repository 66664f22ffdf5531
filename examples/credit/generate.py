"""Generate the example credit-application data (deterministic, standard library only).

    python generate.py OUT.csv [--rows N] [--seed S] [--shift] [--drift] [--bad]

--shift moves incomes up and ages up (a new population: what `data diff` shows);
--drift is a much larger move (older applicants, higher incomes and loans): live traffic
that no longer looks like the training data (what monitoring catches);
--bad puts out-of-range ages and missing incomes in a few rows (rejected by expectations).
Past approvals are biased in favour of men, as real lending histories can be.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

REGIONS = ["north", "south", "east", "west"]
PURPOSES = ["car", "home", "education", "business", "other"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shift", action="store_true")
    parser.add_argument("--drift", action="store_true")
    parser.add_argument("--bad", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "age", "sex", "region", "income", "loan_amount", "purpose",
                    "email", "phone", "approved"])
        for i in range(1, args.rows + 1):
            age = min(90, max(18, int(rng.gauss(60 if args.drift else 44 if args.shift else 38,
                                                12))))
            sex = rng.choice(["F", "M"])
            region = rng.choice(REGIONS)
            income = round(rng.lognormvariate(11.5 if args.drift else 10.9 if args.shift else 10.6,
                                              0.45), 2)
            loan = round(rng.uniform(20_000, 90_000) if args.drift else rng.uniform(1_000, 40_000), 2)
            purpose = rng.choice(PURPOSES)
            # Past decisions favoured men: a model that may use `sex` learns that bias
            # (the fairness gate of the demo catches it); one that may not, does not.
            bias = 8 if sex == "M" else 0
            score = income / 1000 - loan / 2000 + (age - 30) * 0.2 + bias + rng.gauss(0, 8)
            approved = "yes" if score > 38 else "no"
            email = f"customer{i}@example.com"
            phone = f"+1 415 555 {rng.randint(1000, 9999)}"
            if args.bad and i % 997 == 0:
                age = rng.choice([7, 130, 151])
            w.writerow([i, age, sex, region,
                        "" if args.bad and i % 1499 == 0 else income,
                        loan, purpose, email, phone, approved])
    print(f"wrote {args.rows} rows to {args.out}")


if __name__ == "__main__":
    main()
