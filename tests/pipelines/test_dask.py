"""The two-stage pipeline on a real Dask cluster of worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dsops.tracking.service import TrackingService
from tests.pipelines.conftest import Project


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    """A LocalCluster with two worker processes; yields the scheduler address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_the_pipeline_runs_on_a_dask_cluster(make_project: Any, dask_scheduler: str) -> None:
    project: Project = make_project()
    result = project.service().run(executor="dask", scheduler=dask_scheduler)
    assert [(s.stage, s.action) for s in result.stages] == [("prepare", "run"), ("train", "run")]
    assert (project.root / "build/model.txt").read_text() == "lr=0.1 n=8"
    train = TrackingService(project.ws).get(result.stages[1].run_id or "")
    assert (train.status, train.metrics["auc"]) == ("finished", pytest.approx(0.6))
    again = project.service().run(executor="dask", scheduler=dask_scheduler)
    assert [s.action for s in again.stages] == ["cached", "cached"]


def test_an_unreachable_scheduler_is_a_usage_error(make_project: Any) -> None:
    from dsops.core.errors import UsageError

    project: Project = make_project()
    with pytest.raises(UsageError, match="cannot reach the Dask scheduler"):
        project.service().run(executor="dask", scheduler="tcp://127.0.0.1:9")
