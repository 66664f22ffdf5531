"""The gateway over real uvicorn servers on loopback, spoken to with httpx: OIP v2, MLflow scoring,
request ids, feedback, metrics, micro-batching, split and mirrored routing, and the prediction log.

Routes come from a provider the tests change (the rollout service is tested on its own); the
models are real registered versions loaded through the registry.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import dsops.sdk as sdk
from dsops.rollout.models import Route
from dsops.serving.app import create_app
from dsops.serving.predlog_query import PredictionLog
from dsops.workspace import Workspace

FEATURES = ["a", "b", "c", "d"]
# The gateway filters this scikit-learn warning once per process (it checked the columns itself);
# pytest resets warning filters around every test, so the tests say it again.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


class FailingScorer:
    """A python-flavor model that loads fine and fails on every prediction."""

    def __init__(self, bias: float = 0.0) -> None:
        self.bias = bias

    def predict(self, X: Any) -> Any:
        raise RuntimeError("this model always fails")


@dataclass
class Models:
    """A project with registered versions, and the data they were trained on."""

    ws: Workspace
    x: pd.DataFrame
    credit: dict[int, Any]
    city: Any
    city_x: pd.DataFrame
    tensor: Any


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Models]:
    """credit@1, credit@2 (numeric LR), city@1 (a string column), tensor@1 (array signature),
    broken@1 (its artifact tampered with: fails to load) and failing@1 (raises on predict)."""
    for name in ("DSOPS_STORE_URL", "DSOPS_OBJECTS_URL", "DSOPS_URL"):
        os.environ.pop(name, None)
    ws = Workspace.init(tmp_path_factory.mktemp("gateway") / "proj", project="demo",
                        identity="alice@example.com")
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 4)), columns=FEATURES)
    y = (x["a"] + x["b"] > 0).astype(int)
    credit = {}
    for version, c in ((1, 1.0), (2, 0.01)):
        credit[version] = LogisticRegression(C=c).fit(x, y)
        sdk.log_model(credit[version], "credit", input_example=x.head(), workspace=ws)
    city_x = pd.DataFrame({"city": rng.choice(["paris", "rome", "oslo"], 200), "x": rng.normal(size=200)})
    city = make_pipeline(ColumnTransformer([("city", OneHotEncoder(handle_unknown="ignore"), ["city"])],
                                           remainder="passthrough"), LogisticRegression())
    city.fit(city_x, (city_x["city"] == "rome").astype(int))
    sdk.log_model(city, "city", input_example=city_x.head(), workspace=ws)
    tensor = LogisticRegression().fit(x.to_numpy(), y)
    sdk.log_model(tensor, "tensor", input_example=x.to_numpy()[:5], workspace=ws)
    info = sdk.log_model(LogisticRegression(C=0.5).fit(x, y), "broken", input_example=x.head(), workspace=ws)
    artifact = next(f for f in info.files if f.path.endswith(".skops"))
    stored = ws.state_dir / "objects" / artifact.digest[:2] / artifact.digest[2:]
    os.chmod(stored, 0o644)
    stored.write_bytes(stored.read_bytes()[:-8] + b"tampered")
    sdk.log_model(FailingScorer(), "failing", input_example=x.head(), workspace=ws,
                  code_ref=f"{__name__}:FailingScorer")
    yield Models(ws, x, credit, city, city_x, tensor)
    ws.close()


@dataclass
class Gateway:
    """A running gateway: its URL, the routes it serves (change them: it re-reads every 50 ms)."""

    url: str
    app: Any
    routes: dict[str, Route] = field(default_factory=dict)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def set_route(self, route: Route) -> None:
        """Serve ``route`` and wait until the gateway applied it."""
        self.routes[route.model] = route
        deadline = time.monotonic() + 20
        while self.app.state.gateway.routes.get(route.model) != route:
            assert time.monotonic() < deadline, "the gateway did not pick up the route"
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (graceful: the app's shutdown runs)."""
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the gateway did not stop"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


StartGateway = Callable[..., Gateway]


@pytest.fixture(scope="module")
def start_gateway(models: Models) -> Iterator[StartGateway]:
    """Factory: a uvicorn server (in a thread) serving the given routes; all stopped at teardown."""
    running: list[Gateway] = []

    def start(*routes: Route, **options: Any) -> Gateway:
        gateway = Gateway("", None, {r.model: r for r in routes})
        app = create_app(models.ws, "prod", routes_provider=lambda env: list(gateway.routes.values()),
                         refresh_s=0.05, **options)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.02)
        gateway.url, gateway.app = f"http://127.0.0.1:{port}", app
        gateway.server, gateway.thread = server, thread
        running.append(gateway)
        return gateway

    yield start
    for gateway in running:
        if gateway.thread is not None and gateway.thread.is_alive():
            gateway.stop()


@pytest.fixture(scope="module")
def gateway(start_gateway: StartGateway) -> Gateway:
    """credit@1, city@1, tensor@1, broken@1 and failing@1 served in one gateway."""
    return start_gateway(*(Route(name, stable=1, deployment=f"d-{name}", stable_deployment=f"d-{name}")
                           for name in ("credit", "city", "tensor", "broken", "failing")))


def _split(frame: pd.DataFrame) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}}


def _tensors(frame: pd.DataFrame, datatype: str = "FP64") -> list[dict[str, Any]]:
    return [{"name": name, "shape": [len(frame)], "datatype": datatype, "data": frame[name].tolist()}
            for name in frame.columns]


# --- OIP v2 ------------------------------------------------------------------------------------------------

def test_oip_health_and_metadata(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.get("/v2").json()["name"] == "dsops"
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/health/ready").json() == {"ready": True}
        meta = client.get("/v2/models/credit").json()
        assert meta["versions"] == ["1"] and meta["platform"] == "dsops_sklearn"
        assert meta["inputs"] == [{"name": n, "datatype": "FP64", "shape": [-1]} for n in FEATURES]
        assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
        assert client.get("/v2/models/credit/versions/1").json()["version"] == "1"
        city = client.get("/v2/models/city").json()
        assert {i["name"]: i["datatype"] for i in city["inputs"]} == {"city": "BYTES", "x": "FP64"}
        ready = client.get("/v2/models/credit/ready").json()
        assert ready == {"name": "credit", "version": "1", "ready": True}
        assert client.get("/v2/models/credit/versions/1/ready").status_code == 200
        missing = client.get("/v2/models/credt")
        assert missing.status_code == 404 and "did you mean 'credit'" in missing.json()["error"]
        assert client.get("/v2/models/credit/versions/7").status_code == 404


def test_oip_infer_named_tensors_outputs_and_id(gateway: Gateway, models: Models) -> None:
    rows = models.x.iloc[:3]
    with gateway.client() as client:
        response = client.post("/v2/models/credit/infer", json={"id": "req-42", "inputs": _tensors(rows)})
        assert response.status_code == 200
        body = response.json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("credit", "1", "req-42")
        assert response.headers["x-request-id"] == "req-42"
        assert body["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [3],
                                    "data": models.credit[1].predict(rows).tolist()}]
        proba = client.post("/v2/models/credit/versions/1/infer", json={
            "inputs": _tensors(rows, "FP32"), "outputs": [{"name": "predict_proba"}]}).json()
        assert [o["name"] for o in proba["outputs"]] == ["predict_proba"]
        np.testing.assert_allclose(np.reshape(proba["outputs"][0]["data"], (3, 2)),
                                   models.credit[1].predict_proba(rows.astype(np.float32)), rtol=1e-6)
        # one 2-D tensor of every column, nested data, columns in training order
        matrix = client.post("/v2/models/credit/infer", json={"inputs": [
            {"name": "input", "shape": [3, 4], "datatype": "FP64", "data": rows.to_numpy().tolist()}]}).json()
        assert matrix["outputs"][0]["data"] == models.credit[1].predict(rows).tolist()
        tensor = client.post("/v2/models/tensor/infer", json={"inputs": [
            {"name": "input", "shape": [3, 4], "datatype": "FP64",
             "data": rows.to_numpy().ravel().tolist()}]})
        assert tensor.json()["outputs"][0]["data"] == models.tensor.predict(rows.to_numpy()).tolist()
        city = models.city_x.iloc[:4]
        answer = client.post("/v2/models/city/infer", json={"inputs": [
            {"name": "city", "shape": [4], "datatype": "BYTES", "data": city["city"].tolist()},
            {"name": "x", "shape": [4, 1], "datatype": "FP64", "data": city[["x"]].to_numpy().tolist()}]})
        assert answer.json()["outputs"][0]["data"] == models.city.predict(city).tolist()


@pytest.mark.parametrize(("path", "payload", "status", "message"), [
    ("/v2/models/credit/infer", {"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0]}]},
     400, "input 'a' has 1 values; shape [2] needs 2"),
    ("/v2/models/credit/infer", {"inputs": [{"name": "a", "shape": [1], "datatype": "INT64", "data": [0.5]}]},
     400, "declared INT64 but its data holds floats"),
    ("/v2/models/credit/infer", {"inputs": [{"name": n, "shape": [1], "datatype": "FP64", "data": [1.0]}
                                            for n in ("a", "b", "c")]},
     400, "missing input column 'd'"),
    ("/v2/models/credit/infer", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                             "data": [1, 2, 3]}]},
     400, "rows have 3 values; credit@1 takes 4 columns"),
    ("/v2/models/city/infer", {"inputs": [{"name": "city", "shape": [1], "datatype": "FP64", "data": [1.0]},
                                          {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
     400, "column 'city' has type float, expected str"),
    ("/v2/models/credit/infer", {"inputs": _tensors(pd.DataFrame({n: [1.0] for n in FEATURES})),
                                 "outputs": [{"name": "probabilities"}]},
     400, "unknown output 'probabilities' of credit@1 (outputs: predict, predict_proba)"),
    ("/v2/models/nope/infer", {"inputs": []}, 404, "unknown model in prod 'nope'"),
    ("/v2/models/credit/versions/9/infer", {"inputs": []}, 404, "unknown version of credit in prod '9'"),
])
def test_oip_bad_requests(gateway: Gateway, path: str, payload: dict[str, Any], status: int,
                          message: str) -> None:
    with gateway.client() as client:
        response = client.post(path, json=payload)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert response.headers["x-request-id"]


def test_a_model_that_fails_to_load_is_503_and_the_others_keep_serving(gateway: Gateway,
                                                                      models: Models) -> None:
    with gateway.client() as client:
        broken = client.post("/v2/models/broken/infer", json={"inputs": _tensors(models.x.iloc[:1])})
        assert broken.status_code == 503
        assert "broken@1 is not available" in broken.json()["error"]
        assert "does not match its recorded hash" in broken.json()["error"]
        ready = client.get("/v2/models/broken/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert client.post("/invocations?model=broken", json=_split(models.x.iloc[:1])).status_code == 503
        assert client.post("/v2/models/credit/infer", json={"inputs": _tensors(models.x.iloc[:1])}) \
            .status_code == 200
        assert client.get("/v2/health/ready").status_code == 200
        failing = client.post("/invocations", json=_split(models.x.iloc[:1]),
                              headers={"x-dsops-model": "failing"})
        assert failing.status_code == 500
        assert "this model always fails" in failing.json()["error"]


# --- MLflow scoring ----------------------------------------------------------------------------------------

def test_mlflow_payloads_from_its_docs(gateway: Gateway, models: Models) -> None:
    """The payload shapes of MLflow's "deploy a local inference server" docs, and CSV."""
    rows = models.x.iloc[:3]
    expected = {"predictions": models.credit[1].predict(rows).tolist()}
    payloads = [
        {"dataframe_split": rows.to_dict(orient="split") | {"index": [0, 1, 2]}},
        {"dataframe_split": {"columns": FEATURES[::-1], "data": rows[FEATURES[::-1]].to_numpy().tolist()}},
        {"dataframe_records": rows.to_dict(orient="records")},
        {"instances": rows.to_dict(orient="records")},
        {"inputs": rows.to_dict(orient="list")},
        {"inputs": rows.to_numpy().tolist(), "params": {"unused": 1}},
    ]
    with gateway.client() as client:
        for payload in payloads:
            response = client.post("/invocations?model=credit", json=payload)
            assert response.status_code == 200, (payload, response.text)
            assert response.json() == expected
        csv = client.post("/invocations", content=rows.to_csv(index=False),
                          headers={"content-type": "text/csv", "x-dsops-model": "credit"})
        assert csv.json() == expected
        city = models.city_x.iloc[:5]
        answer = client.post("/invocations?model=city",
                             json={"dataframe_records": city.to_dict(orient="records")})
        assert answer.json() == {"predictions": models.city.predict(city).tolist()}
        pinned = client.post("/invocations?model=credit@1", json=_split(rows))
        assert pinned.json() == expected
        assert client.get("/ping").status_code == client.get("/health").status_code == 200
        assert client.get("/version").text


@pytest.mark.parametrize(("content", "headers", "status", "message"), [
    (b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}}', {"content-type": "text/plain"}, 415,
     "unsupported content type"),
    (b'{"dataframe_split": ', {}, 400, "invalid JSON"),
    (b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}, "instances": [[1, 2, 3, 4]]}', {}, 400,
     "got dataframe_split and instances"),
    (b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}', {}, 400,
     "missing input column 'd'"),
    (b'{"dataframe_records": [{"a": 1, "b": 2, "c": 3, "dd": 4}]}', {}, 400,
     "missing input column 'd' (expected columns: a, b, c, d); is 'dd' a misspelling of 'd'?"),
    (b'{"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, "x"]]}}', {}, 400,
     "column 'd' has type str, expected float"),
    (b'{"inputs": [[1, 2, 3]]}', {}, 400, "rows have 3 values; credit@1 takes 4 columns"),
    (b"a,b,c,d\n1,2,3,oops\n", {"content-type": "text/csv"}, 400, "column 'd' has type str, expected float"),
])
def test_mlflow_bad_requests(gateway: Gateway, content: bytes, headers: dict[str, str], status: int,
                             message: str) -> None:
    with gateway.client() as client:
        response = client.post("/invocations?model=credit", content=content,
                               headers={"content-type": "application/json", **headers})
    assert response.status_code == status, response.text
    body = response.json()
    assert message in body["error"] and body["message"] == body["error"]
    assert body["error_code"] == "BAD_REQUEST"


def test_invocations_needs_a_model_name_when_several_are_served(gateway: Gateway, models: Models) -> None:
    with gateway.client() as client:
        response = client.post("/invocations", json=_split(models.x.iloc[:1]))
        assert response.status_code == 400
        assert "serves several models (broken, city, credit, failing, tensor): name one with ?model=NAME" \
            in response.json()["error"]
        assert client.post("/invocations?model=credt", json=_split(models.x.iloc[:1])).status_code == 404


# --- request ids, feedback, metrics ------------------------------------------------------------------------

def test_request_ids_are_echoed_or_time_ordered(gateway: Gateway, models: Models) -> None:
    with gateway.client() as client:
        given = client.post("/invocations?model=credit", json=_split(models.x.iloc[:1]),
                            headers={"x-request-id": "client-7"})
        assert given.headers["x-request-id"] == "client-7"
        ids = [client.post("/invocations?model=credit", json=_split(models.x.iloc[:1]))
               .headers["x-request-id"] for _ in range(3)]
        assert all(uuid.UUID(i).version == 7 for i in ids) and ids == sorted(ids)
        assert client.get("/v2/health/live").headers["x-request-id"]
        assert client.get("/no/such/route").headers["x-request-id"]


def test_feedback_is_accepted_and_bad_feedback_is_refused(gateway: Gateway) -> None:
    with gateway.client() as client:
        assert client.post("/feedback", json={"request_id": "r-1", "label": 1}).json() == {"accepted": 1}
        several = [{"request_id": "r-2", "label": "yes"}, {"request_id": "r-3", "label": 0, "row": 1}]
        assert client.post("/feedback", json=several).json() == {"accepted": 2}
        bad = client.post("/feedback", json=[{"request_id": "r-4", "label": 1}, {"label": 1}])
        assert bad.status_code == 400 and "feedback[1] needs a request_id" in bad.json()["error"]
        assert client.post("/feedback", content=b"{").status_code == 400


def test_metrics_in_prometheus_text(gateway: Gateway, models: Models) -> None:
    with gateway.client() as client:
        client.post("/v2/models/credit/infer", json={"inputs": _tensors(models.x.iloc[:2])})
        client.post("/v2/models/credit/infer", json={"inputs": [{"name": "a"}]})
        text = client.get("/metrics").text
    assert 'dsops_requests_total{model="credit",status="200",version="1"}' in text
    assert 'dsops_requests_total{model="credit",status="400",version="1"}' in text
    assert 'dsops_request_latency_seconds_bucket{le="0.005",model="credit",version="1"}' in text
    assert 'dsops_batch_size_bucket{le="2.0",model="credit",version="1"}' in text
    assert 'dsops_errors_total{code="bad_request",model="credit",version="1"}' in text
    assert "dsops_prediction_log_queue_depth" in text


# --- batching, routing and the prediction log ---------------------------------------------------------------

def _batches(client: httpx.Client, model: str, version: int) -> tuple[float, float]:
    """(predict calls, rows predicted) of a version, from the batch size histogram."""
    calls = rows = 0.0
    for line in client.get("/metrics").text.splitlines():
        labels = f'{{model="{model}",version="{version}"}}'
        if line.startswith(f"dsops_batch_size_count{labels}"):
            calls = float(line.split()[-1])
        elif line.startswith(f"dsops_batch_size_sum{labels}"):
            rows = float(line.split()[-1])
    return calls, rows


def test_concurrent_requests_are_predicted_together(start_gateway: StartGateway, models: Models) -> None:
    # A wide batching window: on a loaded machine 48 requests can arrive more than 5 ms apart.
    gateway = start_gateway(Route("credit", stable=2, max_batch=64, max_wait_us=50_000))
    payload = _split(models.x.iloc[:1])
    expected = models.credit[2].predict(models.x.iloc[:1]).tolist()

    async def burst(n: int) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        async with httpx.AsyncClient(base_url=gateway.url, limits=limits, timeout=30) as client:
            await asyncio.gather(*(client.get("/v2/health/live") for _ in range(n)))  # open n connections
            return list(await asyncio.gather(*(client.post("/invocations", json=payload) for _ in range(n))))

    with gateway.client() as client:
        before = _batches(client, "credit", 2)
        responses = asyncio.run(burst(48))
        after = _batches(client, "credit", 2)
    assert all(r.status_code == 200 and r.json()["predictions"] == expected for r in responses)
    calls, rows = after[0] - before[0], after[1] - before[1]
    assert rows == 48
    assert calls < 48, "no two requests were predicted together"


def test_split_routing_by_weight_and_sticky_header(start_gateway: StartGateway, models: Models) -> None:
    route = Route("credit", stable=1, candidate=2, weight=0, sticky_header="x-user",
                  deployment="canary", stable_deployment="live")
    gateway = start_gateway(route)
    body = {"inputs": _tensors(models.x.iloc[:1])}

    def versions(n: int, headers: dict[str, str] | None = None) -> set[str]:
        with gateway.client() as client:
            return {client.post("/v2/models/credit/infer", json=body, headers=headers).json()["model_version"]
                    for _ in range(n)}

    assert versions(15) == {"1"}
    gateway.set_route(replace(route, weight=100))
    assert versions(15) == {"2"}
    gateway.set_route(replace(route, weight=50))
    seen = {}
    for user in (f"user-{i}" for i in range(24)):
        answered = versions(4, {"x-user": user})
        assert len(answered) == 1, f"{user} was not sticky: {answered}"
        seen[user] = answered.pop()
    assert set(seen.values()) == {"1", "2"}
    with gateway.client() as client:  # an explicit version is answered by that version
        assert client.post("/v2/models/credit/versions/2/infer", json=body).json()["model_version"] == "2"


def test_versions_no_route_names_are_unloaded_after_a_grace_period(start_gateway: StartGateway,
                                                                   models: Models) -> None:
    body = {"inputs": _tensors(models.x.iloc[:1])}
    kept = start_gateway(Route("credit", stable=1), retire_after_s=3600)
    retiring = start_gateway(Route("credit", stable=1), retire_after_s=0)
    for gateway in (kept, retiring):
        gateway.set_route(Route("credit", stable=2))  # promoted: version 1 is no longer routed
    assert kept.app.state.gateway.pool.get("credit", 1) is not None  # a rollback finds it loaded
    pool, batchers = retiring.app.state.gateway.pool, retiring.app.state.gateway.batchers
    assert pool.get("credit", 1) is None and ("credit", 1) not in batchers
    with retiring.client() as client:
        assert client.post("/v2/models/credit/versions/1/infer", json=body).status_code == 404
        retiring.set_route(Route("credit", stable=1))  # rolled back: loaded again
        deadline = time.monotonic() + 20
        while (response := client.post("/v2/models/credit/infer", json=body)).status_code != 200:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.05)
        assert response.json()["model_version"] == "1"
    assert pool.get("credit", 2) is None


def test_predictions_are_logged_with_role_and_mirror_copies(start_gateway: StartGateway,
                                                            models: Models) -> None:
    gateway = start_gateway(Route("credit", stable=1, candidate=2, mode="mirror", deployment="shadow-dep",
                                  stable_deployment="live-dep", sample_rate=1.0))
    sent = []
    with gateway.client() as client:
        for i in range(5):
            response = client.post("/invocations", json=_split(models.x.iloc[i:i + 2]))
            assert response.status_code == 200
            assert response.json()["predictions"] == models.credit[1].predict(models.x.iloc[i:i + 2]).tolist()
            sent.append(response.headers["x-request-id"])
        client.post("/invocations", json={"dataframe_split": {"columns": ["a"], "data": [[1]]}})
    gateway.stop()  # the lifespan shutdown stores every logged prediction
    log = PredictionLog(models.ws.objects)
    ids = ", ".join(f"'{i}'" for i in sent)
    rows = log.query(f"""
        SELECT role, version, deployment, status, count(*) AS n, count(DISTINCT request_id) AS ids,
               min(in_a) IS NOT NULL AS has_inputs, min(score) IS NOT NULL AS has_score
        FROM predictions WHERE request_id IN ({ids}) GROUP BY ALL ORDER BY role""").to_pylist()
    assert rows == [
        {"role": "shadow", "version": 2, "deployment": "shadow-dep", "status": "ok", "n": 10, "ids": 5,
         "has_inputs": True, "has_score": True},
        {"role": "stable", "version": 1, "deployment": "live-dep", "status": "ok", "n": 10, "ids": 5,
         "has_inputs": True, "has_score": True},
    ]
    errors = log.query("SELECT error FROM predictions WHERE status = 'error' AND deployment = 'live-dep'")
    assert "missing input column" in errors.column("error")[0].as_py()


# --- an existing client, unchanged: NVIDIA tritonclient (OIP v2, JSON and binary tensors) ---


def test_tritonclient_speaks_to_the_gateway(models: Models, start_gateway: StartGateway) -> None:
    import tritonclient.http as triton

    gateway = start_gateway(Route("credit", stable=1, deployment="d", stable_deployment="d"))
    client = triton.InferenceServerClient(url=gateway.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("credit") and not client.is_model_ready("nope")
    metadata = client.get_model_metadata("credit")
    assert metadata["name"] == "credit" and {i["name"] for i in metadata["inputs"]} == set(FEATURES)

    rows = models.x.head(7)
    for binary in (False, True):  # JSON, and the binary tensor extension tritonclient defaults to
        inputs = []
        for name in FEATURES:
            tensor = triton.InferInput(name, [len(rows)], "FP64")
            tensor.set_data_from_numpy(rows[name].to_numpy(np.float64), binary_data=binary)
            inputs.append(tensor)
        result = client.infer("credit", inputs, request_id="triton-1",
                              outputs=[triton.InferRequestedOutput(
                                  metadata["outputs"][0]["name"], binary_data=binary)])
        predicted = result.as_numpy(metadata["outputs"][0]["name"]).reshape(-1)
        expected = models.credit[1].predict(pd.DataFrame(rows, columns=FEATURES))
        np.testing.assert_array_equal(predicted.astype(expected.dtype), expected)
        assert result.get_response()["id"] == "triton-1"
    client.close()
