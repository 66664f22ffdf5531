"""The commented ``dsops.yaml`` that ``dsops init`` writes."""

TEMPLATE = """\
# dsops project file: the desired state of this project's data, pipelines and models.
# Reference: docs/config.md. Errors in this file are reported with file, line and key.
project: {project}

# Where metadata lives. Default: SQLite in .dsops/dsops.db.
# For a team, point at PostgreSQL (or set DSOPS_STORE_URL):
# store: postgresql://user@db.example.com/dsops

# Where blobs (data, models) live. Default: .dsops/objects.
# For a team, an S3-compatible bucket (or set DSOPS_OBJECTS_URL; endpoint in
# DSOPS_S3_ENDPOINT_URL):
# objects: s3://my-bucket/dsops

# Datasets: each is versioned with 'dsops data add PATH --name NAME'.
# Expectations run on every new version; a failing version is rejected.
datasets: {{}}
#  credit:
#    path: data/credit.csv
#    owner: risk-team@example.com
#    license: internal
#    consent: contract
#    sensitive_columns: [email]     # encrypted at rest (key: DSOPS_ENCRYPTION_KEY)
#    expectations:
#      - row_count: {{min: 100}}
#      - column: age
#        type: int
#        between: [18, 100]
#      - column: income
#        not_null: true
#      - column: id
#        unique: true
#      - column: status
#        in: [approved, rejected]
#      - column: email
#        regex: '^[^@]+@[^@]+$'

# The pipeline (docs/pipelines.md): 'dsops run' runs the stages that are out of date,
# in parallel where it can, and restores the others from the cache. Every execution is
# a tracked run ('dsops runs ls').
# stages:
#   prepare:
#     cmd: python src/prepare.py
#     deps: [src/prepare.py, data:credit]   # files, globs, data:NAME or data:NAME@N
#     params: [prepare]                     # keys of params.yaml
#     outs: [build/features.parquet]
#   train:
#     cmd: python src/train.py              # or python: module:function
#     deps: [src/train.py, build/features.parquet]
#     params: [train.C]
#     outs: [build/model]
#     metrics: [build/metrics.json]
#     registers: credit-risk                # a registry version when the stage succeeds
#     model: build/model                    # written by dsops.save_model

# What each model is for, and who answers for it: shown on its model card (docs/models.md).
# models:
#   credit-risk:
#     owner: risk-team@example.com
#     intended_use: Pre-screening of credit applications; a person takes the decision.

# The gate a version must pass to become champion: 'dsops gate', 'dsops ci report'.
# gates:
#   credit-risk:
#     eval_data: data:credit
#     label: status
#     positive_label: approved
#     sensitive: [sex]
#     checks:                               # docs/gates-expressions.md
#       - auc >= 0.85
#       - auc >= champion.auc - 0.01
#       - demographic_parity_difference(by=sex) <= 0.05
#       - p99_latency_ms <= 50

# Where models are served, and the rules for getting there (docs/delivery.md).
# environments:
#   prod:
#     approvals: 1                          # four eyes: someone other than the deployer
#     require_gate: true
#     deploy:
#       model: credit-risk@champion
#       strategy: canary                    # direct, canary, shadow or blue-green
#       steps: [10, 50, 100]
#       analysis:                           # checked on live traffic; failing: rollback
#         every: 5m
#         checks: [error_rate < 0.01, p99_latency_ms < 50]

# Watching deployments: drift, accuracy once labels arrive, alert rules (docs/monitoring.md).
# monitors:
#   credit-risk-prod:
#     deployment: prod/credit-risk
#     every: 1h
#     alerts:
#       - when: drifted_share > 0.3
#         do: [incident, rollback]
#         severity: critical
#       - when: accuracy < 0.75
#         do: [incident, webhook:oncall]

# The prediction log and its feedback (docs/predictions.md): dsops serve deletes the
# days older than the retention once a day ('dsops predictions prune' does it by hand).
# predictions:
#   retention: 90d

# Where 'webhook:NAME' actions post; the URL is a secret, read from the environment.
# webhooks:
#   oncall:
#     url_env: ONCALL_WEBHOOK_URL
"""


def render_template(project: str) -> str:
    """The starter ``dsops.yaml`` for a project named ``project``."""
    return TEMPLATE.format(project=project)
