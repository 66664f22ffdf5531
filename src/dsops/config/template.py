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
"""


def render_template(project: str) -> str:
    """The starter ``dsops.yaml`` for a project named ``project``."""
    return TEMPLATE.format(project=project)
