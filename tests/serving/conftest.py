"""Fixtures of the prediction-log tests: an object store (local and S3) and writers on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsops.core.clock import ManualClock
from dsops.objects import ObjectStore, open_object_store
from dsops.serving.predlog import FeedbackWriter, PredictionLogWriter


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """An empty object store: a local directory, or a fresh bucket on SeaweedFS."""
    if request.param == "local":
        return open_object_store(None, tmp_path / "objects")
    return open_object_store(request.getfixturevalue("s3_objects_url"), tmp_path / "state")


@pytest.fixture
def writers(objects: ObjectStore, manual_clock: ManualClock):
    """Factory of writers on ``objects`` that never flush on their own (closed at teardown)."""
    made: list[PredictionLogWriter | FeedbackWriter] = []

    def make(kind: type = PredictionLogWriter, **options: object):
        defaults: dict[str, object] = {"clock": manual_clock, "flush_interval_s": 3600}
        if kind is PredictionLogWriter:
            defaults["env"] = "prod"
        writer = kind(objects, **{**defaults, **options})
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close()
