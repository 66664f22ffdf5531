"""Stage `prepare`: the latest credit version → a train/test split, without personal data."""

from pathlib import Path

import yaml

import dsops

params = yaml.safe_load(Path("params.yaml").read_text())["prepare"]
df = dsops.Dataset("credit").to_pandas()
features = df.drop(columns=["id", "email", "phone"])  # personal data never leaves the dataset
features = features.sample(frac=1.0, random_state=params["seed"]).reset_index(drop=True)
split = int(len(features) * (1 - params["test_fraction"]))
features["split"] = ["train"] * split + ["test"] * (len(features) - split)
Path("build").mkdir(exist_ok=True)
features.to_parquet("build/features.parquet", index=False)
print(f"prepare: {len(features)} rows, {features.shape[1] - 2} columns, {split} for training")
