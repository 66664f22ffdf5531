"""Register a deliberately broken credit-risk version (it answers "no" to everyone), to show
a canary catching what nobody tested: its predictions drift from the stable version's."""

import pandas as pd
from sklearn.dummy import DummyClassifier

import dsops

data = pd.read_parquet("build/features.parquet")
columns = ["age", "income", "loan_amount", "region", "purpose"]
model = DummyClassifier(strategy="constant", constant="no").fit(data[columns], data["approved"])
info = dsops.log_model(model, "credit-risk", input_example=data[columns].head(20),
                       description="hotfix build that skipped its tests (broken on purpose)")
print(f"registered {info.ref} (never gated)")
