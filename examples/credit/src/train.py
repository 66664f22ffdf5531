"""Stage `train`: a logistic regression on the prepared features; metrics to dsops."""

import json
from pathlib import Path

import pandas as pd
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import dsops

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
data = pd.read_parquet("build/features.parquet")
train, test = data[data.split == "train"], data[data.split == "test"]
columns = [c for c in data.columns if c not in ("approved", "split")]

model = make_pipeline(StandardScaler(), LogisticRegression(C=params["C"],
                                                           max_iter=params["max_iter"]))
model.fit(train[columns], train["approved"])
for step, size in enumerate((0.25, 0.5, 0.75, 1.0)):  # a learning curve, step by step
    part = test.iloc[: int(len(test) * size)]
    dsops.log_metric("auc_partial", roc_auc_score(part["approved"],
                                                  model.predict_proba(part[columns])[:, 1]),
                     step=step)
scores = model.predict_proba(test[columns])[:, 1]
metrics = {"auc": roc_auc_score(test["approved"], scores),
           "accuracy": accuracy_score(test["approved"], scores > 0.5)}
Path("build/metrics.json").write_text(json.dumps(metrics, indent=2))
pd.to_pickle(model, "build/model.pkl")
print(f"train: auc {metrics['auc']:.3f}, accuracy {metrics['accuracy']:.3f}")
