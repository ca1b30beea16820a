"""Choosing ONNX Runtime execution providers: CUDA where present and loadable, else CPU.

The GPU wheel of onnxruntime lists ``CUDAExecutionProvider`` even on machines without a GPU,
and trying it there prints a wall of loader errors. So "auto" first checks that the CUDA
driver library loads (``libcuda.so.1`` / ``nvcuda.dll``) and only then asks for CUDA; the
choice is logged once per process.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
import sys

import onnxruntime as ort

from hashembed.core.errors import BundleCorruptError, ProviderError

log = logging.getLogger(__name__)
ort.set_default_logger_severity(3)  # ONNX Runtime's own logger: errors only, no loader noise

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PROVIDER_CHOICES = ("auto", "cuda", "cpu")


@functools.lru_cache(maxsize=None)
def cuda_driver_loads() -> bool:
    """True when the CUDA driver library can be loaded in this process."""
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def select_providers(requested: str = "auto") -> list[str]:
    """Provider list for an ``InferenceSession``.

    Args:
        requested: ``"auto"`` (CUDA if listed and its driver loads, else CPU), ``"cuda"``
            (raise :class:`ProviderError` if not possible) or ``"cpu"``.
    """
    if requested not in PROVIDER_CHOICES:
        raise ProviderError(f"provider {requested!r} is not one of {PROVIDER_CHOICES}")
    available = ort.get_available_providers()
    cuda_ok = CUDA in available and cuda_driver_loads()
    if requested == "cuda" and not cuda_ok:
        why = "no CUDA driver loads here" if CUDA in available else "this onnxruntime lacks it"
        raise ProviderError(f"CUDA execution provider requested but unavailable ({why}); "
                            f"available: {', '.join(available)}")
    if requested == "cpu" or not cuda_ok:
        return [CPU]
    return [CUDA, CPU]


_announced: set[str] = set()

# CUDA provider options. ONNX Runtime's CUDA provider runs fp32 GEMMs in TF32 by default,
# which moves logits by ~1e-2 against PyTorch's fp32; serving keeps full fp32 (the export
# check's 1e-4 tolerance holds, and answers do not depend on the GPU generation).
CUDA_OPTIONS = {"use_tf32": "0"}


def provider_options(providers: list[str]) -> list[dict]:
    """Options for each provider of :func:`select_providers`' list (same order)."""
    return [dict(CUDA_OPTIONS) if name == CUDA else {} for name in providers]


def prepare_cuda() -> None:
    """Before a CUDA session: let onnxruntime-gpu find the CUDA libraries that pip's
    ``nvidia-*`` wheels ship (``preload_dlls``, onnxruntime >= 1.21); torch is never imported
    by serving, so nothing else loads them. Silent where the function does not exist."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception as e:  # a partial CUDA install: the session creation reports it
            log.debug("onnxruntime.preload_dlls failed: %s", e)


def create_session(model: str | bytes, requested: str = "auto",
                   name: str | None = None) -> ort.InferenceSession:
    """An ``InferenceSession`` on the selected providers; logs the provider in use once.

    Args:
        model: a path to an ONNX file, or its bytes (what a verified bundle hands over).
        name: what to call the model in errors (default: the path).
    """
    model_path = name or (model if isinstance(model, str) else "the ONNX model")
    providers = select_providers(requested)
    if providers[0] == CUDA:
        prepare_cuda()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no per-node placement chatter
    # ONNX Runtime's intra-op threads spin after each call by default, waiting for the next;
    # in a service they spin on the cores the HTTP layer and the neighbourhood building need.
    # Measured with `hashembed bench serve` on 2 cores (one busy with another job): 64-node
    # requests at concurrency 8 went from 30-32 to 48 requests/s with spinning off.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(model, sess_options=options, providers=providers,
                                       provider_options=provider_options(providers))
    except Exception as e:  # onnxruntime's pybind errors (Fail, InvalidGraph, …) share no base
        # keep ORT's last two sentences, not its C++ source location
        sentences = re.split(r"(?<=\.)\s+", " ".join(str(e).split())) or [type(e).__name__]
        raise BundleCorruptError(f"ONNX Runtime {ort.__version__} cannot load {model_path}: "
                                 f"{' '.join(sentences[-2:])[-400:]}") from None
    active = session.get_providers()[0]
    if providers[0] == CUDA and active != CUDA:
        if requested == "cuda":
            raise ProviderError(f"CUDA execution provider failed to initialise; got {active}")
        log.warning("CUDA execution provider failed to initialise (see ONNX Runtime's message "
                    "above); falling back to %s", active)
    if active not in _announced:
        _announced.add(active)
        log.info("ONNX Runtime execution provider: %s", active)
    return session
