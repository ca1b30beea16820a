"""Kernel tests launch the rule's tile without autotuning (a GPU run of them would otherwise
benchmark every config for each of their many shapes); one ``gpu`` test tunes on purpose."""

import pytest

from hashembed.kernels import decode


@pytest.fixture(autouse=True)
def _no_autotuning(monkeypatch):
    monkeypatch.setattr(decode, "AUTOTUNE", False)
