"""Shared fixtures: data location, small graphs, one trained run and its bundle per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Triton kernels run on the CPU through Triton's interpreter when no GPU is present. Triton
# reads this when a kernel is decorated, so it is set before any test imports one.
if not os.environ.get("CUDA_VISIBLE_DEVICES") and not Path("/dev/nvidia0").exists():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from helpers import heavy_tailed_graph, train_small

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real graphs (``../shared/data`` beside the checkout, or ``$HASHEMBED_DATA``).

    Where they are absent the tests that need them are skipped with the reason, unless
    ``HASHEMBED_REQUIRE_DATA=1`` (set by ``.ci/run``), which turns the skip into a failure.
    """
    root = Path(os.environ.get("HASHEMBED_DATA", REPO.parent / "shared" / "data"))
    if not root.is_dir():
        message = f"real graphs expected at {root} (set HASHEMBED_DATA)"
        if os.environ.get("HASHEMBED_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


def pytest_collection_modifyitems(config, items):
    """Tests that read the real graphs carry the ``data`` marker (``-m "not data"``)."""
    for item in items:
        if "data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


@pytest.fixture(scope="session")
def power_law_graph():
    return heavy_tailed_graph()


@pytest.fixture(scope="session")
def cora():
    from hashembed.graph.datasets import apply_split, load_dataset

    return apply_split(load_dataset("cora"), None, seed=0)


@pytest.fixture(scope="session")
def sage_run(cora, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sage_run")
    train_small(cora, out)
    return out


@pytest.fixture(scope="session")
def sage_bundle(sage_run, tmp_path_factory) -> Path:
    from hashembed.export.exporter import export_run

    out = tmp_path_factory.mktemp("bundles") / "sage"
    export_run(sage_run, out, probe_nodes=64)
    return out
