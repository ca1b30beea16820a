"""The HTTP service: every endpoint, dynamic batching, and a 4xx naming the field for each
malformed request (the process keeps answering)."""

import asyncio
import contextlib
import json
import signal
from pathlib import Path

import httpx

import numpy as np
import pytest
from fastapi.testclient import TestClient

from hashembed.serve import Predictor
from hashembed.serve.http import Limits, create_app


@pytest.fixture(scope="module")
def predictor(sage_bundle):
    return Predictor(sage_bundle)


@pytest.fixture(scope="module")
def client(predictor):
    with TestClient(create_app(predictor, Limits(max_nodes=100, max_neighbors=5))) as client:
        yield client


def test_predict_and_embed_answer_one_row_per_id_in_order(client, predictor):
    response = client.post("/v1/predict", json={"nodes": [42, 3, 42]})
    assert response.status_code == 200
    rows = response.json()["predictions"]
    assert [row["node"] for row in rows] == [42, 3, 42]
    expected = predictor.predict([42, 3, 42])
    np.testing.assert_allclose([row["logits"] for row in rows], expected.logits, rtol=1e-6)
    emb = client.post("/v1/embed", json={"nodes": [7]}).json()["embeddings"]
    np.testing.assert_allclose(emb[0]["embedding"], predictor.predict([7]).embeddings[0],
                               rtol=1e-6)


def test_unseen_nodes_over_http(client, predictor):
    body = {"nodes": [{"neighbors": [1, 2, 3], "id": 10**6}]}
    rows = client.post("/v1/nodes/predict", json=body).json()["predictions"]
    expected = predictor.predict_new([[1, 2, 3]], ids=[10**6])
    assert rows[0]["node"] == 10**6
    np.testing.assert_allclose(rows[0]["logits"], expected.logits[0], rtol=1e-6)
    assert client.post("/v1/nodes/embed", json=body).status_code == 200


@pytest.mark.parametrize("path, body, status, field", [
    ("/v1/predict", {"nodes": []}, 422, "nodes"),
    ("/v1/predict", {"nodes": [1.5]}, 422, "nodes.0"),
    ("/v1/predict", {"nodes": [True]}, 422, "nodes.0"),
    ("/v1/predict", {"nodes": "3"}, 422, "nodes"),
    ("/v1/predict", {"node": [3]}, 422, "nodes"),
    ("/v1/predict", {"nodes": [99999]}, 404, "nodes"),
    ("/v1/predict", {"nodes": [-1]}, 404, "nodes"),
    ("/v1/predict", {"nodes": ["abc"]}, 422, "nodes"),
    ("/v1/predict", {"nodes": list(range(101))}, 422, "nodes"),
    ("/v1/nodes/predict", {"nodes": [{"neighbors": list(range(6))}]}, 422,
     "nodes.0.neighbors"),
    ("/v1/nodes/predict", {"nodes": [{"neighbors": [1], "id": 3}]}, 422, "nodes"),
    ("/v1/nodes/predict", {"nodes": [{"neighbors": [99999]}]}, 404, "nodes"),
    ("/v1/nodes/predict", {"nodes": [{"neighbours": [1]}]}, 422, "nodes.0.neighbors"),
])
def test_malformed_requests_get_a_4xx_naming_the_field(client, path, body, status, field):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert client.get("/healthz").status_code == 200  # still answering


def test_bad_json_and_oversized_bodies(client):
    response = client.post("/v1/predict", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert response.status_code == 422 and "field" in response.json()
    big = json.dumps({"nodes": [1] * 400_000}).encode()
    response = client.post("/v1/predict", content=big,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["field"] == "body"


def test_health_model_and_metrics(client, predictor):
    assert client.get("/readyz").json() == {"status": "ready"}
    model = client.get("/v1/model").json()
    assert model["num_nodes"] == predictor.num_nodes and model["num_classes"] == 7
    assert model["provider"] == "CPUExecutionProvider" and model["id_kind"] == "dense"
    client.post("/v1/predict", json={"nodes": [1]})
    text = client.get("/metrics").text
    assert 'hashembed_requests_total{route="/v1/predict",status="200"}' in text
    assert "hashembed_batch_nodes_bucket" in text and "hashembed_queue_depth" in text


def test_open_inference_protocol(client, predictor):
    meta = client.get("/v2/models/hashembed").json()
    assert meta["inputs"][0] == {"name": "node_ids", "datatype": "INT64", "shape": [-1]}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    body = {"inputs": [{"name": "node_ids", "shape": [2], "datatype": "INT64",
                        "data": [5, 9]}], "outputs": [{"name": "logits"}]}
    out = client.post("/v2/models/hashembed/infer", json=body).json()["outputs"]
    assert out[0]["name"] == "logits" and out[0]["shape"] == [2, 7]
    np.testing.assert_allclose(np.array(out[0]["data"]).reshape(2, 7),
                               predictor.predict([5, 9]).logits, rtol=1e-6)
    assert client.get("/v2/models/other").status_code == 404
    body["inputs"][0]["datatype"] = "FP32"
    response = client.post("/v2/models/hashembed/infer", json=body)
    assert response.status_code == 422 and response.json()["field"] == "inputs.node_ids.datatype"


def test_concurrent_requests_share_onnx_runtime_calls(predictor):
    from hashembed.serve.batching import DynamicBatcher

    sizes = []

    async def scenario():
        batcher = DynamicBatcher(predictor, max_wait_ms=50, on_batch=sizes.append)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit([i, i + 1]) for i in range(10)))
        await batcher.stop()
        return results

    results = asyncio.run(scenario())
    assert sum(sizes) == 20 and len(sizes) < 10  # grouped
    for i, result in enumerate(results):
        np.testing.assert_allclose(result.logits, predictor.predict([i, i + 1]).logits,
                                   rtol=1e-6)


def test_a_full_queue_answers_503_with_retry_after(predictor):
    from hashembed.serve.batching import DynamicBatcher, QueueFull

    async def scenario():
        batcher = DynamicBatcher(predictor, max_wait_ms=200, max_queue=2)
        batcher.start()
        tasks = [asyncio.ensure_future(batcher.submit([1])) for _ in range(6)]
        await asyncio.sleep(0)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        await batcher.stop()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert any(isinstance(o, QueueFull) for o in outcomes)
    assert any(not isinstance(o, Exception) for o in outcomes)


@contextlib.contextmanager
def live_server(bundle, log_path, extra_args=()):
    """`hashembed serve BUNDLE` on a free loopback port, ready; SIGTERM on exit.

    Yields ``(host:port, result)``; after the block ``result`` holds the exit code and log
    (and, while the block runs, ``result["pid"]`` is the server's process id)."""
    from hashembed.serve.app import start_server

    server, url = start_server(bundle, extra_args, timeout=120, log_path=log_path)
    result = {"pid": server.pid}
    try:
        yield url.removeprefix("http://"), result
    finally:
        server.send_signal(signal.SIGTERM)
        result["code"] = server.wait(timeout=30)
        result["log"] = Path(log_path).read_text()

@pytest.mark.slow
def test_the_serve_command_starts_answers_and_stops_gracefully(sage_bundle, tmp_path):
    with live_server(sage_bundle, tmp_path / "server.log") as (url, result):
        response = httpx.post(f"http://{url}/v1/predict", json={"nodes": [1, 2]}, timeout=10)
        assert response.status_code == 200 and len(response.json()["predictions"]) == 2
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit -SIGTERM)
    assert result["code"] in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in result["log"], result["log"][-2000:]


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux ``/proc``)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
            if int(fields.get("PPid", "0").strip()) == pid:
                found.append(int(status.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_several_workers_answer_alike_and_all_stop(sage_bundle, predictor, tmp_path):
    """`--workers 2`: two uvicorn worker processes, each opening the bundle itself, give the
    Predictor's answers; SIGTERM stops the supervisor and both workers."""
    import time

    nodes = list(range(40))
    expected = predictor.predict(nodes).labels.tolist()
    with live_server(sage_bundle, tmp_path / "server.log", ["--workers", "2"]) as (url, result):
        workers = []
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:  # both workers started
            workers = [pid for pid in _children(result["pid"])
                       if "hashembed" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
                       or b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()]
            time.sleep(0.5)
        assert len(workers) >= 2, result
        for _ in range(8):  # spread over the workers by the kernel's accept order
            body = httpx.post(f"http://{url}/v1/predict", json={"nodes": nodes}, timeout=30)
            assert body.status_code == 200
            assert [row["label"] for row in body.json()["predictions"]] == expected
    assert result["code"] in (0, -signal.SIGTERM), result["log"][-2000:]
    time.sleep(1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]


@pytest.mark.slow
def test_the_official_kserve_v2_client_works_unchanged(sage_bundle, predictor, tmp_path):
    """tritonclient[http], the client of Triton Inference Server, against our service."""
    import tritonclient.http as tritonclient  # a test dependency (pyproject [test])
    with live_server(sage_bundle, tmp_path / "server.log") as (url, _):
        client = tritonclient.InferenceServerClient(url=url)
        assert client.is_server_ready() and client.is_model_ready("hashembed")
        assert client.get_model_metadata("hashembed")["inputs"][0]["datatype"] == "INT64"
        ids = tritonclient.InferInput("node_ids", [3], "INT64")
        ids.set_data_from_numpy(np.array([4, 8, 15], dtype=np.int64), binary_data=False)
        outputs = [tritonclient.InferRequestedOutput("logits", binary_data=False)]
        result = client.infer("hashembed", [ids], outputs=outputs)
        np.testing.assert_allclose(result.as_numpy("logits"),
                                   predictor.predict([4, 8, 15]).logits, rtol=1e-6)
        ids.set_data_from_numpy(np.array([16, 23, 42], dtype=np.int64), binary_data=True)
        result = client.infer("hashembed", [ids], outputs=outputs)  # the binary extension
        np.testing.assert_allclose(result.as_numpy("logits"),
                                   predictor.predict([16, 23, 42]).logits, rtol=1e-6)


def test_serve_refuses_a_missing_bundle_before_binding(tmp_path, capsys):
    from hashembed.app.cli import main

    assert main(["serve", str(tmp_path / "nothing"), "--port", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_serve_provider_cuda_refuses_to_start_without_cuda(sage_bundle, capsys):
    from hashembed.app.cli import main
    from hashembed.serve.providers import CUDA, select_providers

    if select_providers("auto")[0] == CUDA:
        pytest.skip("this machine has a working CUDA provider")
    assert main(["serve", str(sage_bundle), "--provider", "cuda", "--port", "1"]) == 2
    assert "CUDA execution provider requested but unavailable" in capsys.readouterr().err


def test_bodies_without_a_length_and_malformed_kserve_requests_get_4xx(client):
    chunked = client.post("/v1/predict", content=iter([b'{"nodes": [1]}']),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 411 and chunked.json()["field"] == "body"
    bad_json = client.post("/v1/predict", content=b"{nope",
                           headers={"content-type": "application/json"})
    assert bad_json.json()["field"] == "body"
    infer = "/v2/models/hashembed/infer"
    header = json.dumps({"inputs": [{"name": "node_ids", "shape": [1], "datatype": "INT64",
                                     "parameters": {"binary_data_size": 5}}]}).encode()
    cases = [
        (header + b"\0" * 5, {"Inference-Header-Content-Length": str(len(header))},
         "inputs.node_ids.parameters.binary_data_size"),
        (header, {"Inference-Header-Content-Length": "\u00b2".encode()},
         "Inference-Header-Content-Length"),
        (b"[" * 100_000 + b"]" * 100_000, {}, "body"),
        (json.dumps({"inputs": [{"name": "node_ids", "shape": [1], "datatype": "INT64",
                                 "data": [1]}], "outputs": [{"name": ["x"]}]}).encode(), {},
         "outputs"),
    ]
    for content, headers, field in cases:
        response = client.post(infer, content=content, headers={
            "content-type": "application/json", **headers})
        assert response.status_code in (413, 422), (field, response.status_code)
        if response.status_code == 422:
            assert response.json()["field"] == field
    assert client.get("/healthz").status_code == 200
