"""The HTTP service: FastAPI over a :class:`~hashembed.serve.Predictor` (no model logic here).

Endpoints (JSON; every malformed request gets a 4xx whose body names the field):

==========================================  ===============================================
``POST /v1/predict``  ``{"nodes": [ids]}``    labels, class names, logits, one row per id
``POST /v1/embed``    ``{"nodes": [ids]}``    embeddings, one row per id
``POST /v1/nodes/predict``, ``/v1/nodes/embed``  unseen nodes: ``{"nodes": [{"neighbors":
                                              [ids], "id": optional}]}``
``GET /healthz``, ``GET /readyz``             process up; bundle verified, session made,
                                              one warm-up inference done
``GET /v1/model``                             manifest summary, provider, package version
``GET /metrics``                              Prometheus text: requests and errors by route
                                              and status, latency, batch sizes, queue depth
``GET /v2/health/ready``, ``/v2/health/live``,  the Open Inference Protocol (KServe v2 REST):
``GET /v2``, ``/v2/models/{name}[/ready]``,    an ``INT64`` (or ``BYTES`` for string ids)
``POST /v2/models/{name}/infer``              ``node_ids`` input, ``FP32`` outputs
==========================================  ===============================================

Known-node requests go through :class:`~hashembed.serve.batching.DynamicBatcher` (one ONNX
Runtime call for concurrent requests, bounded queue, 503 + ``Retry-After`` when full). Ids are
the graph's own (integers, or strings for a string-id graph); an unknown id is 404 naming it.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Union

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from hashembed import __version__
from hashembed.core.errors import ConfigError, NodeIdTypeError, UnknownNodeError
from hashembed.serve.batching import DynamicBatcher, QueueFull

NodeId = Union[StrictInt, StrictStr]
_TYPE_NAMES = {"int", "str", "float", "bool", "list", "dict", "none"}


@dataclass(frozen=True)
class Limits:
    """Request limits (flags of ``hashembed serve``)."""

    max_body_bytes: int = 1 << 20
    max_nodes: int = 4096
    max_neighbors: int = 10_000
    max_batch_nodes: int = 4096
    max_wait_ms: float = 2.0
    max_queue: int = 1024


class NodesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodes: list[NodeId] = Field(min_length=1, description="the graph's own node ids")


class UnseenNodeBody(BaseModel):
    """One node of a ``/v1/nodes/*`` request: the wire form of
    :class:`~hashembed.serve.unseen.UnseenNode`."""

    model_config = ConfigDict(extra="forbid")
    neighbors: list[NodeId] = Field(description="ids of existing nodes")
    id: NodeId | None = Field(default=None, description="the new node's own id (optional)")


class UnseenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodes: list[UnseenNodeBody] = Field(min_length=1)


class InferInput(BaseModel):
    name: str
    shape: list[StrictInt]
    datatype: str
    data: list | None = None
    parameters: dict | None = None


class InferRequest(BaseModel):
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[dict] | None = None
    id: str | None = None


def _error(status: int, message: str, field: str | None = None, headers=None) -> JSONResponse:
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(predictor, limits: Limits = Limits(), model_name: str = "hashembed") -> FastAPI:
    """The FastAPI application serving ``predictor`` (see module docstring)."""
    registry = CollectorRegistry()
    requests = Counter("hashembed_requests_total", "HTTP requests", ["route", "status"],
                       registry=registry)
    latency = Histogram("hashembed_request_seconds", "request latency", ["route"],
                        registry=registry)
    batch_sizes = Histogram("hashembed_batch_nodes", "ids per ONNX Runtime call",
                            buckets=(1, 4, 16, 64, 256, 1024, 4096, 16384), registry=registry)
    queue_depth = Gauge("hashembed_queue_depth", "requests waiting for a batch",
                        registry=registry)
    batcher = DynamicBatcher(predictor, limits.max_batch_nodes, limits.max_wait_ms,
                             limits.max_queue, on_batch=batch_sizes.observe)
    # unseen nodes run one request at a time per thread, on their own small pool, and no more
    # than ``max_queue`` such requests wait: a flood gets 503s and never delays known nodes'
    # batches (which have their own executor thread)
    unseen_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hashembed-unseen")
    unseen_waiting = {"count": 0}
    queue_depth.set_function(lambda: batcher.depth)
    state = {"ready": False}
    manifest = predictor.manifest

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        first = predictor.bundle.ids.external(np.array([0]))
        await batcher.submit(first)  # warm-up: one real inference before /readyz says yes
        state["ready"] = True
        yield
        state["ready"] = False
        await batcher.stop()  # finish what is queued
        unseen_pool.shutdown(wait=True)

    app = FastAPI(title="hashembed", version=__version__, lifespan=lifespan,
                  description="Hash-code node embeddings served with ONNX Runtime")

    @app.middleware("http")
    async def measure(request: Request, call_next):
        length = request.headers.get("content-length")
        if request.method == "POST" and length is None:
            # a chunked body would be read whole before any limit applied: refuse it
            response = _error(411, "a Content-Length header is required", "body")
        elif length is not None and (not (length.isascii() and length.isdigit())
                                     or int(length) > limits.max_body_bytes):
            response = _error(413, f"body exceeds {limits.max_body_bytes} bytes", "body")
        else:
            started = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            latency.labels(getattr(route, "path", "unmatched")).observe(
                time.perf_counter() - started)
        route = request.scope.get("route")
        requests.labels(getattr(route, "path", "unmatched"), str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return _error(422, f"body: not valid JSON ({first.get('msg', '')})", "body")
        # pydantic adds the union member tried (``int``, ``str``) to the location: drop it
        field = ".".join(str(p) for p in first.get("loc", ())
                         if p != "body" and p not in _TYPE_NAMES) or "body"
        return _error(422, f"{field}: {first.get('msg', 'invalid request')}", field)

    def _check_count(count: int) -> JSONResponse | None:
        if count > limits.max_nodes:
            return _error(422, f"nodes: {count} nodes in one request; at most "
                          f"{limits.max_nodes}", "nodes")
        return None

    async def _known(body: NodesRequest):
        too_many = _check_count(len(body.nodes))
        if too_many is not None:
            return too_many
        try:
            predictor.bundle.ids.rows(body.nodes)  # validate before joining a batch
            return await batcher.submit(list(body.nodes))
        except UnknownNodeError as e:
            return _error(404, str(e), "nodes")
        except NodeIdTypeError as e:
            return _error(422, str(e), "nodes")
        except QueueFull:
            return _error(503, "the server is busy; retry shortly", None, {"Retry-After": "1"})

    async def _unseen(body: UnseenRequest):
        too_many = _check_count(len(body.nodes))
        if too_many is not None:
            return too_many
        ids = [node.id for node in body.nodes]
        if any(i is not None for i in ids) and any(i is None for i in ids):
            return _error(422, "nodes: give every unseen node an id, or none", "nodes")
        for index, node in enumerate(body.nodes):
            if len(node.neighbors) > limits.max_neighbors:
                return _error(422, f"nodes.{index}.neighbors: {len(node.neighbors)} neighbours; "
                              f"at most {limits.max_neighbors}", f"nodes.{index}.neighbors")
        if unseen_waiting["count"] >= limits.max_queue:
            return _error(503, "the server is busy; retry shortly", None, {"Retry-After": "1"})
        unseen_waiting["count"] += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                unseen_pool, predictor.predict_new, [n.neighbors for n in body.nodes],
                ids if ids[0] is not None else None)
        except UnknownNodeError as e:
            return _error(404, str(e), "nodes")
        except (NodeIdTypeError, ConfigError) as e:
            return _error(422, str(e), "nodes")
        finally:
            unseen_waiting["count"] -= 1

    def _rows(result, embeddings: bool) -> list[dict]:
        if embeddings:
            return [{"node": _plain(n), "embedding": e.tolist()}
                    for n, e in zip(result.node_ids, result.embeddings)]
        return result.to_json()

    def _respond(result, embeddings: bool):
        if isinstance(result, JSONResponse):  # an error already
            return result
        key = "embeddings" if embeddings else "predictions"
        return {"model": model_name, key: _rows(result, embeddings)}

    @app.post("/v1/predict")
    async def predict(body: NodesRequest):
        return _respond(await _known(body), embeddings=False)

    @app.post("/v1/embed")
    async def embed(body: NodesRequest):
        return _respond(await _known(body), embeddings=True)

    @app.post("/v1/nodes/predict")
    async def predict_unseen(body: UnseenRequest):
        return _respond(await _unseen(body), embeddings=False)

    @app.post("/v1/nodes/embed")
    async def embed_unseen(body: UnseenRequest):
        return _respond(await _unseen(body), embeddings=True)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz():
        if not state["ready"]:
            return _error(503, "not ready: the bundle is loading or the warm-up has not run")
        return {"status": "ready"}

    def _summary() -> dict:
        spec = manifest.code_spec
        return {"name": model_name, "num_nodes": manifest.graph.num_nodes, "bits": spec.bits,
                "bits_per_index": spec.bits_per_index, "scheme": spec.scheme,
                "embedding_dim": manifest.model.embedding_dim,
                "num_classes": manifest.model.num_classes,
                "class_names": None if manifest.class_names is None
                else list(manifest.class_names),
                "id_kind": manifest.id_kind, "fanout_cap": manifest.fanout_cap,
                "provider": predictor.provider, "package_version": __version__,
                "run_id": manifest.run_id}

    @app.get("/v1/model")
    async def model():
        return _summary()

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(generate_latest(registry).decode(),
                                 media_type="text/plain; version=0.0.4")

    # --- Open Inference Protocol (KServe v2) --------------------------------------------------
    id_type = "BYTES" if manifest.id_kind == "str" else "INT64"

    @app.get("/v2/health/live")
    async def v2_live():
        return {"live": True}

    @app.get("/v2/health/ready")
    async def v2_ready():
        if not state["ready"]:
            return _error(503, "not ready")
        return {"ready": True}

    @app.get("/v2")
    async def v2_server():
        return {"name": "hashembed", "version": __version__, "extensions": []}

    @app.get("/v2/models/{name}/ready")
    async def v2_model_ready(name: str):
        if name != model_name:
            return _error(404, f"unknown model {name!r}", "name")
        if not state["ready"]:
            return _error(503, "not ready")
        return {"name": model_name, "ready": True}

    @app.get("/v2/models/{name}")
    async def v2_metadata(name: str):
        if name != model_name:
            return _error(404, f"unknown model {name!r}; this server serves {model_name!r}",
                          "name")
        k, d = manifest.model.num_classes, manifest.model.embedding_dim
        return {"name": model_name, "versions": ["1"], "platform": "hashembed_onnxruntime",
                "inputs": [{"name": "node_ids", "datatype": id_type, "shape": [-1]}],
                "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, k]},
                            {"name": "embeddings", "datatype": "FP32", "shape": [-1, d]}]}

    @app.post("/v2/models/{name}/infer")
    async def v2_infer(name: str, request: Request):
        """JSON body, or the binary extension: ``Inference-Header-Content-Length`` bytes of
        JSON followed by the raw tensors its inputs' ``binary_data_size`` announce."""
        if name != model_name:
            return _error(404, f"unknown model {name!r}", "name")
        raw = await request.body()
        length = request.headers.get("inference-header-content-length")
        if length is not None and not (length.isascii() and length.isdigit()
                                       and int(length) <= len(raw)):
            return _error(422, "Inference-Header-Content-Length: not a length within the body",
                          "Inference-Header-Content-Length")
        split = int(length) if length is not None else len(raw)
        try:
            body = InferRequest.model_validate(json.loads(raw[:split]))
        except (ValueError, RecursionError) as e:  # bad JSON, too deep, or a ValidationError
            return _error(422, f"body: not a valid inference request ({str(e)[:200]})", "body")
        found = [i for i in body.inputs if i.name == "node_ids"]
        if not found:
            return _error(422, "inputs: no input named 'node_ids'", "inputs")
        tensor = found[0]
        if tensor.datatype != id_type:
            return _error(422, f"inputs.node_ids.datatype: {tensor.datatype}; this model takes "
                          f"{id_type}", "inputs.node_ids.datatype")
        data = tensor.data
        size = (tensor.parameters or {}).get("binary_data_size")
        if data is None and size is not None:
            if id_type != "INT64" or isinstance(size, bool) or not isinstance(size, int) or \
                    size % 8 or not 0 < size <= len(raw) - split:
                return _error(422, "inputs.node_ids.parameters.binary_data_size: not a whole "
                              "number of INT64 ids within the body",
                              "inputs.node_ids.parameters.binary_data_size")
            data = np.frombuffer(raw[split:split + size], dtype="<i8").tolist()
        if data is None or len(tensor.shape) != 1 or tensor.shape[0] != len(data) or not data:
            return _error(422, "inputs.node_ids.shape: must be [k] with k ids, k >= 1",
                          "inputs.node_ids.shape")
        kind = str if id_type == "BYTES" else int
        if any(isinstance(v, bool) or not isinstance(v, kind) for v in data):
            return _error(422, f"inputs.node_ids.data: every id must be "
                          f"{'a string' if kind is str else 'an integer'}",
                          "inputs.node_ids.data")
        result = await _known(NodesRequest(nodes=list(data)))
        if isinstance(result, JSONResponse):
            return result
        names = [o.get("name") for o in body.outputs] if body.outputs else ["logits",
                                                                              "embeddings"]
        arrays = {"logits": result.logits, "embeddings": result.embeddings}
        unknown = [n for n in names if not isinstance(n, str) or n not in arrays]
        if unknown:
            return _error(422, f"outputs: unknown output {unknown[0]!r}", "outputs")
        return {"model_name": model_name, "model_version": "1", "id": body.id,
                "outputs": [{"name": n, "datatype": "FP32", "shape": list(arrays[n].shape),
                             "data": arrays[n].reshape(-1).tolist()} for n in names]}

    return app


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
