"""Every Triton kernel in ``kernels/`` compiles for sm_90 (H100/H200), on a machine with no GPU.

The other kernel tests run the kernels under Triton's interpreter (``TRITON_INTERPRET=1``, set
by ``tests/conftest.py`` before any kernel is decorated), which never lowers them to PTX, so a
kernel that the interpreter accepts and the NVIDIA backend rejects (a ``tl.dot`` shape, a
layout, a type mismatch in a loop carry, an ``atomic_add`` semantics, ptxas running out of
registers) would first fail on a user's GPU. Here each kernel goes through Triton's whole
pipeline ahead of time, ``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 64))``,
ending in the ptxas bundled with the Triton wheel: TTIR, TTGIR, LLVM IR, PTX and a cubin.

The kernels must be decorated with the interpreter off, so the compiles run in child
processes (this file run as a script) with ``TRITON_INTERPRET`` removed from their
environment and a fresh ``TRITON_CACHE_DIR`` (each run compiles, no stale cache hit).

What is compiled: the specialisations the host code launches (``code_decode_forward``,
``code_decode_backward``, ``code_grad_deterministic``):

- ``_code_decode_fwd_kernel``: ``b`` in 1, 2, 4, 8, 16 (the byte-table path is ``BITS=8`` on
  fp32 merged tables) × fp32 and bf16 codebooks × every autotune config plus the rule's tiles
  (``_block_sizes``: the interpreter's and ``AUTOTUNE=False`` tile); fp16 codebooks at the
  rule's tiles only;
- ``_code_decode_bwd_atomic_kernel``: every ``b`` (``b <= 4`` takes the one-hot ``tl.dot``
  pre-reduction) × every autotune config plus the rule's tiles;
- the deterministic kernels at their fixed tiles (``KEYS_BLOCK``, ``CHUNK``, ``BLOCK_E``, the
  rule's ``BLOCK_D`` for every width class), every ``b`` for the keys, and the entry count
  ``E = B·m`` both as ``i32`` and as ``i64`` (what Triton passes once ``E >= 2^31``).

Pointers carry the 16-byte divisibility hint (torch allocations) and the widths are multiples
of 16, as in a typical launch; unhinted variants (the narrowest and widest tiles, every
deterministic tile) cover odd widths and offset views, and one case per kernel with every
integer argument the constexpr 1 covers how Triton specialises B = 1, m = 1, d_c = 1.
About 200 compiles, under a minute on two cores.

Besides "it compiles, to a non-empty sm_90 PTX and cubin", ptxas's register report is kept:
a register spill not listed in ``KNOWN_SPILLS`` fails ``test_no_unexpected_register_spills``.

``HASHEMBED_COMPILE_JOBS`` sets the number of compiling processes (default: up to 2).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("triton", reason="Triton is not installed")

TARGET = ("cuda", 90, 64)

# @triton.jit functions that are called from kernels, never launched: compiled as part of them.
HELPERS = {"load_indices", "_segmented_add", "_chunk_view"}
DECODE = "hashembed.kernels.decode"
DETERMINISTIC = "hashembed.kernels.deterministic"
FWD = "_code_decode_fwd_kernel"
BWD = "_code_decode_bwd_atomic_kernel"
KEYS = "_code_keys_kernel"
SEGSUM = "_segment_sum_kernel"
EDGES = "_segment_edges_kernel"
BITS_ALL = (1, 2, 4, 8, 16)
# the widths whose rule tiles differ: BLOCK_D 16, 32, 64, 128 (and 128 up to MAX_CODEBOOK_DIM)
RULE_DIMS = (16, 32, 64, 128)

# (kernel, BLOCK_D) that ptxas compiles with register spills (255 registers, local memory):
# known, and cheap to fix, but a GPU run pays for them. A spill not listed here fails, unless
# it is at most SPILL_TOLERANCE bytes per thread: ptxas makes a few such at low register
# pressure (12 B at 56 registers for the b = 2, 256x16 atomic backward), not worth a test.
SPILL_TOLERANCE = 32
KNOWN_SPILLS: dict[tuple[str, int], str] = {
    # none: the segment kernels' tiles stay at BLOCK_D <= 32 (deterministic.SEGMENT_BLOCK_D),
    # where the segmented scan does not spill (at 64 and 128 it spilled up to 500 B a thread)
}


# ---------------------------------------------------------------------------------------------
# The cases: plain data, built from the kernels' own configs and host constants.
# ---------------------------------------------------------------------------------------------

def _tiles(autotuner) -> list[tuple[int, int, int, int]]:
    """``(BLOCK_B, BLOCK_D, num_warps, num_stages)`` of every autotune config, then the rule's
    tiles (launched under ``AUTOTUNE=False`` with the ``Config`` defaults), without repeats."""
    import triton

    from hashembed.kernels.common import block_sizes

    tiles = [(c.kwargs["BLOCK_B"], c.kwargs["BLOCK_D"], c.num_warps, c.num_stages)
             for c in autotuner.configs]
    default = triton.Config({})
    for dim in RULE_DIMS:
        block_b, block_d = block_sizes(dim)
        tiles.append((block_b, block_d, default.num_warps, default.num_stages))
    return list(dict.fromkeys(tiles))


def _case(kernel, module, signature, constexprs, tag, num_warps=4, num_stages=3, hinted=True,
          ints_hinted=()):
    ident = f"{kernel}[{tag}]"
    return {"id": ident, "module": module, "kernel": kernel, "signature": signature,
            "constexprs": constexprs, "options": {"num_warps": num_warps,
                                                  "num_stages": num_stages},
            # arguments given tt.divisibility=16: every pointer, and the named integers
            "hinted": hinted, "ints_hinted": list(ints_hinted) if hinted else []}


def build_cases() -> list[dict]:
    from hashembed.kernels import common, decode, deterministic

    cases = []
    fwd_tiles = _tiles(decode._code_decode_fwd_kernel)
    bwd_tiles = _tiles(decode._code_decode_bwd_atomic_kernel)
    rule_tiles = {(*common.block_sizes(dim), 4, 3) for dim in RULE_DIMS}  # Config defaults
    ints = ("dim", "stride_codes")  # d_c = 64, c = 128 bits: both multiples of 16
    scalars = {"num_rows": "i32", "num_books": "i32", "dim": "i32", "stride_codes": "i32",
               "rows_bucket": "i32"}

    def fwd_sig(books):
        return {"codes_ptr": "*u8", "books_ptr": f"*{books}", "out_ptr": "*fp32", **scalars,
                "BITS": "constexpr", "BLOCK_B": "constexpr", "BLOCK_D": "constexpr"}

    for bits in BITS_ALL:
        for books in ("fp32", "bf16", "fp16"):
            for bb, bd, warps, stages in fwd_tiles:
                if books == "fp16" and (bb, bd, warps, stages) not in rule_tiles:
                    continue  # fp16 differs from bf16 only in the load's type: rule tiles only
                path = "byte-table/index" if bits == 8 and books == "fp32" else "index"
                cases.append(_case(FWD, DECODE, fwd_sig(books),
                                   {"BITS": bits, "BLOCK_B": bb, "BLOCK_D": bd},
                                   f"b{bits}-{books}-{path}-{bb}x{bd}-w{warps}", warps, stages,
                                   ints_hinted=ints))

    bwd_sig = {"codes_ptr": "*u8", "grad_out_ptr": "*fp32", "grad_books_ptr": "*fp32",
               **scalars, "BITS": "constexpr", "BLOCK_B": "constexpr", "BLOCK_D": "constexpr"}
    for bits in BITS_ALL:
        for bb, bd, warps, stages in bwd_tiles:
            path = ("onehot-dot" if bits <= 4 else "scatter") + ("/byte-table" if bits == 8 else "")
            cases.append(_case(BWD, DECODE, bwd_sig, {"BITS": bits, "BLOCK_B": bb, "BLOCK_D": bd},
                               f"b{bits}-{path}-{bb}x{bd}-w{warps}", warps, stages,
                               ints_hinted=ints))

    keys_sig = {"codes_ptr": "*u8", "keys_ptr": "*i32", "num_rows": "i32", "num_books": "i32",
                "stride_codes": "i32", "BITS": "constexpr", "BLOCK_B": "constexpr"}
    for bits in BITS_ALL:
        cases.append(_case(KEYS, DETERMINISTIC, keys_sig,
                           {"BITS": bits, "BLOCK_B": deterministic.KEYS_BLOCK},
                           f"b{bits}-{deterministic.KEYS_BLOCK}", ints_hinted=("stride_codes",)))

    block_ds = sorted({deterministic.segment_block_d(dim) for dim in RULE_DIMS})
    for entries in ("i32", "i64"):
        for block_d in block_ds:
            seg_sig = {"keys_ptr": "*i32", "order_ptr": "*i64", "grad_out_ptr": "*fp32",
                       "grad_ptr": "*fp32", "edges_ptr": "*fp32", "num_entries": entries,
                       "num_books": "i32", "dim": "i32", "CHUNK": "constexpr",
                       "BLOCK_E": "constexpr", "BLOCK_D": "constexpr"}
            cases.append(_case(SEGSUM, DETERMINISTIC, seg_sig,
                               {"CHUNK": deterministic.CHUNK, "BLOCK_E": deterministic.BLOCK_E,
                                "BLOCK_D": block_d},
                               f"E{entries}-{deterministic.CHUNK}-{deterministic.BLOCK_E}"
                               f"x{block_d}", ints_hinted=("dim",)))
            edge_sig = {"keys_ptr": "*i32", "grad_ptr": "*fp32", "edges_ptr": "*fp32",
                        "num_entries": entries, "num_chunks": "i32", "dim": "i32",
                        "CHUNK": "constexpr", "BLOCK_D": "constexpr"}
            cases.append(_case(EDGES, DETERMINISTIC, edge_sig,
                               {"CHUNK": deterministic.CHUNK, "BLOCK_D": block_d},
                               f"E{entries}-{deterministic.CHUNK}-{block_d}", ints_hinted=("dim",)))

    # no divisibility hints (an odd d_c, a code view at an odd offset), which changes the
    # vector widths and the registers: b = 4 fp32 at the narrowest and the widest tile, and
    # the deterministic kernels at every BLOCK_D
    def unhinted_too(case):
        c, sig = case["constexprs"], case["signature"]
        if case["kernel"] in (FWD, BWD):
            return (c["BITS"] == 4 and sig.get("books_ptr", "*fp32") == "*fp32"
                    and c["BLOCK_D"] in (min(block_ds), max(block_ds)))
        if case["kernel"] == KEYS:
            return c["BITS"] == 4
        return sig["num_entries"] == "i32"

    unhinted = [dict(case, id=case["id"] + "-unhinted", hinted=False, ints_hinted=[])
                for case in cases if unhinted_too(case)]
    # one case per kernel as Triton specialises a launch with B = 1, m = 1 (c = 8 at b = 8),
    # d_c = 1: every integer argument equal to 1 becomes the constexpr 1 (B = 1 puts
    # rows_bucket at 0, which stays an i32)
    ones = {}
    for case in cases:
        if case["kernel"] not in ones and case["constexprs"].get("BITS", 8) == 8:
            signature = dict(case["signature"])
            constexprs = dict(case["constexprs"])
            for name, kind in case["signature"].items():
                if kind in ("i32", "i64") and name != "rows_bucket":
                    signature[name] = "constexpr"
                    constexprs[name] = 1
            ones[case["kernel"]] = dict(case, id=case["id"] + "-ints1", signature=signature,
                                        constexprs=constexprs, ints_hinted=[])
    return cases + unhinted + list(ones.values())


# ---------------------------------------------------------------------------------------------
# The child process: decorate the kernels for real and compile each case.
# ---------------------------------------------------------------------------------------------

def _discover_kernels() -> dict[str, list[str]]:
    """Every ``@triton.jit`` function in ``hashembed.kernels``, by module (autotuners unwrapped)."""
    import importlib
    import pkgutil

    import hashembed.kernels as package
    from triton.runtime.jit import JITFunction

    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        names = []
        for name, obj in vars(module).items():
            fn = obj
            while not isinstance(fn, JITFunction) and hasattr(fn, "fn"):
                fn = fn.fn
            if isinstance(fn, JITFunction) and fn.__module__ == module.__name__:
                names.append(name)
        found[module.__name__] = sorted(names)
    return found


def _compile_case(case: dict) -> dict:
    import importlib

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    fn = getattr(importlib.import_module(case["module"]), case["kernel"])
    while not isinstance(fn, JITFunction) and hasattr(fn, "fn"):  # triton.autotune, heuristics
        fn = fn.fn
    if not isinstance(fn, JITFunction):
        return {"id": case["id"], "ok": False,
                "error": f"{case['kernel']} is a {type(fn).__name__}, not a JITFunction "
                         f"(was TRITON_INTERPRET set when it was decorated?)"}
    signature = case["signature"]
    attrs = {}
    if case["hinted"]:
        for index, name in enumerate(fn.arg_names):
            if signature[name].startswith("*") or name in case["ints_hinted"]:
                attrs[(index,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=fn, signature=signature, constexprs=case["constexprs"], attrs=attrs)
    start = time.perf_counter()
    log = io.StringIO()  # ptxas -v, printed by Triton under knobs.nvidia.dump_ptxas_log
    try:
        with contextlib.redirect_stdout(log):
            kernel = triton.compile(src, target=GPUTarget(*TARGET), options=case["options"])
    except Exception as exc:  # noqa: BLE001 - every failure is the result being reported
        message = f"{type(exc).__name__}: {exc}"
        return {"id": case["id"], "ok": False, "error": message[-6000:],
                "seconds": time.perf_counter() - start}
    asm = kernel.asm
    registers = re.search(r"Used (\d+) registers", log.getvalue())
    spills = re.search(r"(\d+) bytes spill stores", log.getvalue())
    return {"id": case["id"], "ok": True, "seconds": time.perf_counter() - start,
            "registers": int(registers.group(1)) if registers else None,
            "spill_bytes": int(spills.group(1)) if spills else None,
            "ptx_chars": len(asm.get("ptx", "")), "cubin_bytes": len(asm.get("cubin", b"")),
            "ptx_target": "sm_90" if ".target sm_90" in asm.get("ptx", "") else "?",
            "shared": kernel.metadata.shared}


def _worker() -> None:
    """``python test_compile_sm90.py < cases.json > results.json`` (interpreter off)."""
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.pop("TRITON_INTERPRET", None)
    from triton import knobs

    knobs.nvidia.dump_ptxas_log = True
    cases = json.load(sys.stdin)
    results = {"kernels": _discover_kernels(), "cases": [_compile_case(c) for c in cases]}
    json.dump(results, sys.stdout)


# ---------------------------------------------------------------------------------------------
# The tests.
# ---------------------------------------------------------------------------------------------

def _toolchain_missing() -> str | None:
    """Why sm_90 compiles cannot run here, or None."""
    try:
        from triton.backends import backends
        from triton.backends.compiler import GPUTarget
        from triton.compiler.compiler import make_backend
    except ImportError as exc:
        return f"Triton's compiler is not importable: {exc}"
    if "nvidia" not in backends:
        return f"Triton has no NVIDIA backend (backends: {sorted(backends)})"
    try:
        make_backend(GPUTarget(*TARGET))
        from triton.backends.nvidia.compiler import get_ptxas

        tool = get_ptxas(TARGET[1])
    except Exception as exc:  # noqa: BLE001
        return f"no ptxas for sm_{TARGET[1]} ({type(exc).__name__}: {exc})"
    if tool is None or not tool.path or not os.access(tool.path, os.X_OK):
        return f"no runnable ptxas for sm_{TARGET[1]} (set TRITON_PTXAS_BLACKWELL_PATH)"
    return None


def _run_workers(cases: list[dict], cache_dir: Path) -> dict:
    jobs = int(os.environ.get("HASHEMBED_COMPILE_JOBS", min(2, os.cpu_count() or 1)))
    jobs = max(1, min(jobs, len(cases)))
    # interleave so each process gets a share of the slow (wide, many-warp) tiles
    shares = [cases[j::jobs] for j in range(jobs)]
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(cache_dir)
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # the launch default; silences 3.9's warning
    procs = [subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=Path(__file__).resolve().parents[2])
             for _ in shares]
    # feed and drain every process concurrently (communicate() on one at a time would serialise)
    import threading

    outputs = [None] * len(procs)

    def talk(i):
        outputs[i] = procs[i].communicate(json.dumps(shares[i]), timeout=900)

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(procs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = {"kernels": None, "cases": {}}
    for proc, (out, err) in zip(procs, outputs):
        if proc.returncode != 0:
            raise AssertionError(f"compile worker exited with {proc.returncode}:\n{err[-6000:]}")
        result = json.loads(out)
        merged["kernels"] = result["kernels"]
        merged["cases"].update({r["id"]: r for r in result["cases"]})
    return merged


CASES = build_cases()


@pytest.fixture(scope="module")
def compiled():
    reason = _toolchain_missing()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="triton-sm90-") as cache:
        start = time.perf_counter()
        results = _run_workers(CASES, Path(cache))
        results["wall"] = time.perf_counter() - start
    return results



def test_every_kernel_is_covered(compiled):
    """A new ``@triton.jit`` kernel in ``kernels/`` fails here until it has cases above."""
    covered = {c["kernel"] for c in CASES}
    found = {name for names in compiled["kernels"].values() for name in names}
    assert found, "no @triton.jit functions found in hashembed.kernels"
    missing = found - covered - HELPERS
    assert not missing, f"kernels with no sm_90 compile case: {sorted(missing)}"
    assert not covered - found, f"cases for kernels that no longer exist: {sorted(covered - found)}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_compiles_for_sm90(compiled, case):
    result = compiled["cases"][case["id"]]
    assert result["ok"], (f"{case['kernel']} does not compile for sm_{TARGET[1]} with "
                          f"constexprs {case['constexprs']}, options {case['options']}, "
                          f"signature {case['signature']}:\n{result['error']}")
    assert result["ptx_chars"] > 0 and result["cubin_bytes"] > 0, result
    assert result["ptx_target"] == "sm_90", "PTX not built for sm_90"


def test_no_unexpected_register_spills(compiled):
    """ptxas spilling to local memory compiles, but slows a memory-bound kernel further."""
    spilling = {}
    for case in CASES:
        result = compiled["cases"][case["id"]]
        if result.get("ok") and result.get("spill_bytes"):
            spilling[case["id"]] = ((case["kernel"], case["constexprs"].get("BLOCK_D")),
                                    result["spill_bytes"], result["registers"])
    unexpected = {k: v for k, v in spilling.items()
                  if v[0] not in KNOWN_SPILLS and v[1] > SPILL_TOLERANCE}
    assert not unexpected, ("register spills for sm_90 (case: (kernel, BLOCK_D), spill bytes, "
                            f"registers): {unexpected}")
    known = {k: v for k, v in spilling.items() if v[0] in KNOWN_SPILLS}
    if known:
        import warnings

        warnings.warn(f"{len(known)} known sm_90 register spills: "
                      + ", ".join(f"{k} {v[1]} B" for k, v in known.items()))


if __name__ == "__main__":
    _worker()
