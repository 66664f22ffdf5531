"""Stage `train`: a logistic regression on the applications; metrics to dsops, the model
saved for the registry (the stage `registers: credit-risk`)."""

import json
from pathlib import Path

import pandas as pd
import yaml
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import dsops

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
data = pd.read_parquet("build/features.parquet")
train, test = data[data.split == "train"], data[data.split == "test"]
numeric = ["age", "income", "loan_amount"]
categorical = ["region", "purpose"] + (["sex"] if params["use_sex"] else [])
columns = numeric + categorical

model = make_pipeline(
    make_column_transformer((StandardScaler(), numeric),
                            (OneHotEncoder(handle_unknown="ignore"), categorical)),
    LogisticRegression(C=params["C"], max_iter=params["max_iter"]))
model.fit(train[columns], train["approved"])
approved = test["approved"] == "yes"
for step, size in enumerate((0.25, 0.5, 0.75, 1.0)):  # a learning curve, step by step
    n = int(len(test) * size)
    dsops.log_metric("auc_partial", roc_auc_score(approved[:n],
                                                  model.predict_proba(test[columns][:n])[:, 1]),
                     step=step)
scores = model.predict_proba(test[columns])[:, 1]
metrics = {"auc": roc_auc_score(approved, scores),
           "accuracy": accuracy_score(test["approved"], model.predict(test[columns]))}
Path("build/metrics.json").write_text(json.dumps(metrics, indent=2))
# A directory with the model (skops, a safe format) and its signature from the example rows.
dsops.save_model(model, "build/model", input_example=train[columns].head(20))
print(f"train: auc {metrics['auc']:.3f}, accuracy {metrics['accuracy']:.3f}")
