"""``hashembed bench decode``: decode throughput of every path, against an fp32 table gather.

For ``B`` random node ids out of ``n`` it times, in one process, on the host (``host_rows``):

- ``fp32 table gather``: ``index_select`` of an ``n × d`` fp32 table (what codes replace);
- ``torch reference``: gather the ids' codes, then :func:`code_decode_reference` (unpack +
  ``embedding_bag``), the PyTorch path;
- ``torch embedding_bag``: ``embedding_bag`` alone on indices prepared beforehand (the floor
  of the PyTorch path; at ``b < 8`` on the merged byte tables, as the reference decodes);
- ``onnx <formulation>``: gather codes in numpy, decode in ONNX Runtime in chunks written
  into one reused output buffer (IOBinding), for each formulation the exporter can trace
  (:data:`ONNX_FORMULATIONS`);
- with ``hidden`` set, ``onnx decoder`` rows: the whole :class:`CodeDecoder` (codebook sum +
  MLP ``d_c -> h -> d``) exported unfolded and, where ``h <= d_c``, with its first Linear
  folded into the codebooks, so the gain of folding is measured, not assumed.

and on a device (``device``; CUDA by default where present), forward (``fwd``) and backward
(``bwd``, the codebook gradient of a retained graph, timed alone) for each codebook dtype in
``dtypes``: the table gather (its backward row is what ``SparseAdam`` does with the sparse
gradient of ``F.embedding(sparse=True)``, itself a free view of ``dz``: one ``step``, which
coalesces the ``B`` rows and updates the rows they name and both moments), the prepared
``embedding_bag``, the whole PyTorch path, the Triton kernel on each path
(``index``: ``m`` rows per node; ``bytes``: ``c/8`` merged rows, ``b < 8`` only), the
deterministic Triton backward, and ONNX Runtime on the device's provider with inputs and
outputs bound in device memory. Each row times its full-size call first (which compiles and
autotunes for ``B``), then checks the ``PROBE`` ids.

Rows that could not run (the CUDA provider missing from ONNX Runtime, e.g. the CPU wheel;
the ``deadline`` reached) are named in the result's ``skipped`` list, never dropped silently.

Decode here is the codebook sum ``[B, d_c]`` with ``d_c = d`` (no MLP), so each row matches a
table row. Bytes per node (the ``rows`` gathered per node are ``c/8`` for byte tables or
``b = 8``, ``m`` otherwise): DRAM = ids + codes (or table row, or prepared int64 indices) +
output; on-chip = ``rows · d_c`` codebook elements read (forward, in the codebooks' dtype) or
fp32 gradient rows added (backward), the term that bounds the decode on a GPU.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hashembed.bench.harness import environment, format_table, time_call, write_json
from hashembed.core.codeformat import CodeSpec, take_codes
from hashembed.export.onnx_model import quiet_onnx_export
from hashembed.kernels.reference import (ONNX_FORMULATIONS, byte_codebooks, code_decode_reference,
                                         codes_to_indices)
from hashembed.train.decoder import CodeDecoder, DecoderConfig

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PROBE = 4096  # nodes whose values (and gradients) are checked against the fp32 reference


class ProviderUnavailable(RuntimeError):
    """ONNX Runtime did not start the execution provider a row asked for."""


class _CodebookSum(torch.nn.Module):
    def __init__(self, codebooks: torch.Tensor, bits_per_index: int, formulation: str):
        super().__init__()
        self.codebooks = torch.nn.Parameter(codebooks, requires_grad=False)
        self.bits_per_index = bits_per_index
        self.formulation = formulation

    def forward(self, packed):
        return code_decode_reference(packed, self.codebooks, self.bits_per_index,
                                     self.formulation)


def _onnx_session(module: torch.nn.Module, bytes_per_node: int, threads: int, path: Path,
                  provider: str = "cpu"):
    """Export ``module`` (packed codes ``uint8 [N, c/8]`` -> ``float [N, ·]``) and open it on
    ``provider`` (``"cpu"`` or ``"cuda"``, through :mod:`hashembed.serve.providers`: TF32 off,
    CUDA libraries preloaded). Raises :class:`ProviderUnavailable` when CUDA was asked for
    but did not start."""
    import onnxruntime as ort

    from hashembed.serve import providers as eps

    example = torch.zeros(7, bytes_per_node, dtype=torch.uint8)
    with torch.no_grad(), quiet_onnx_export():
        program = torch.onnx.export(module.eval(), (example,),
                                    dynamo=True, input_names=["codes"],
                                    dynamic_shapes=({0: torch.export.Dim("num_nodes")},))
    program.save(str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    names = [eps.CUDA, eps.CPU] if provider == "cuda" else [eps.CPU]
    if provider == "cuda":
        eps.prepare_cuda()
    session = ort.InferenceSession(str(path), options, providers=names,
                                   provider_options=eps.provider_options(names))
    if session.get_providers()[0] != names[0]:
        raise ProviderUnavailable(f"ONNX Runtime {ort.__version__} did not start {names[0]} "
                                  f"(available: {', '.join(ort.get_available_providers())})")
    return session


def onnx_providers_available() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` where ONNX Runtime lists it and a CUDA driver loads."""
    from hashembed.serve.providers import CUDA, select_providers

    return ["cpu"] + (["cuda"] if select_providers("auto")[0] == CUDA else [])


def rows_per_node(bits: int, bits_per_index: int, byte_tables: bool = True) -> int:
    """Codebook rows a decode gathers per node: ``c/8`` through byte tables (or at b = 8),
    else ``m = c/b``."""
    if bits_per_index < 8 and byte_tables:
        return bits // 8
    return bits // bits_per_index


def _prepared_indices(packed: torch.Tensor, codebooks: torch.Tensor, bits_per_index: int):
    """``embedding_bag`` operands as the reference builds them: ``int64 [B, rows]`` flat row
    ids and the flat ``[rows_total, d_c]`` (byte-merged at ``b < 8``) codebooks."""
    if bits_per_index < 8:
        codebooks, bits_per_index = byte_codebooks(codebooks, bits_per_index), 8
    m, rows, dim = codebooks.shape
    offsets = torch.arange(m, device=packed.device) * rows
    return codes_to_indices(packed, bits_per_index) + offsets, codebooks.reshape(m * rows, dim)


class _Recorder:
    """Times calls and keeps one result row per call (see :func:`run_decode_bench`); past
    ``deadline`` (``time.time()`` seconds) it notes each row in ``skipped`` instead."""

    def __init__(self, batch: int, repeats: int, deadline: float | None = None):
        self.batch, self.repeats, self.deadline = batch, repeats, deadline
        self.rows, self.skipped = [], []

    def __call__(self, name, fn, memory, dram_per_node, onchip_per_node, device="cpu",
                 check=None, direction="fwd", dtype="fp32"):
        """``check``: the row's ``max_abs_err``, or a function computing it, called after
        the timed calls (so the first call, which compiles and tunes, is a full-size one)."""
        if self.deadline is not None and time.time() > self.deadline:
            self.skipped.append(f"{name} {direction} {dtype}: out of time")
            return
        on_gpu = torch.device(device).type == "cuda"
        if on_gpu:
            fn()  # compile and autotune before do_bench sizes its loop from a first call
        timing = time_call(fn, warmup=1, repeats=self.repeats, cuda=on_gpu)
        if callable(check):
            check = check()
        rate = self.batch / timing.median
        self.rows.append({
            "method": name, "pass": direction, "dtype": dtype, "device": str(device),
            "nodes_per_s": rate, "seconds_median": timing.median,
            "seconds_min": timing.min, "seconds_max": timing.max,
            "dram_GBps": rate * dram_per_node / 1e9,
            "onchip_GBps": None if onchip_per_node is None else rate * onchip_per_node / 1e9,
            "memory_bytes": memory, "max_abs_err": check,
        })


def _time_onnx(record, name, session, codes_of, expected, out_dim, memory, dram, onchip,
               chunk, device="cpu"):
    """Time ``session`` over the batch in ``chunk``-node calls, inputs and outputs bound in
    ``device`` memory. ``codes_of(None)`` gives the batch's codes (numpy on the host, a tensor
    on a device), ``codes_of(k)`` the first ``k``'s."""
    out_name = session.get_outputs()[0].name
    on_host = device == "cpu"
    batch_codes = codes_of(None)
    batch = batch_codes.shape[0]
    if on_host:
        output = np.empty((batch, out_dim), np.float32)
    else:
        output = torch.empty((batch, out_dim), dtype=torch.float32, device=device)
    kind = torch.device(device).type
    index = torch.device(device).index or 0

    def onnx_decode():
        # Outputs are bound straight into one reused buffer (as torch's allocator
        # reuses its blocks), so no per-chunk allocation or copy is timed.
        codes = take_codes(*codes_of.host) if on_host else codes_of(None)
        if kind == "cuda":  # ORT reads the codes on its own stream: torch's gather must be done
            torch.cuda.current_stream(device).synchronize()
        for s in range(0, batch, chunk):
            e = min(s + chunk, batch)
            binding = session.io_binding()
            if on_host:
                binding.bind_cpu_input("codes", codes[s:e])
                pointer = output[s:e].ctypes.data
            else:
                part = codes[s:e]
                binding.bind_input("codes", kind, index, np.uint8, list(part.shape),
                                   part.data_ptr())
                pointer = output[s:e].data_ptr()
            binding.bind_output(out_name, kind, index, np.float32, [e - s, out_dim], pointer)
            session.run_with_iobinding(binding)
        return output

    probe = codes_of(PROBE)
    got = session.run(None, {"codes": probe if on_host else probe.cpu().numpy()})[0]
    err = float(np.abs(got - expected.numpy()).max())
    # ORT returns once its stream is done, so CUDA events on torch's stream span the calls
    record(name, onnx_decode, memory, dram, onchip, device=device, check=err)


def run_decode_bench(num_nodes: int = 10_000_000, batch: int = 1_000_000, bits: int = 128,
                     bits_per_index: int = 8, dim: int = 64, onnx_chunk: int = 4096,
                     repeats: int = 5, threads: int | None = None, seed: int = 0,
                     hidden: int | None = None, out: str | Path | None = None,
                     print_table: bool = True, host_rows: bool = True,
                     device: str | None = None, dtypes=("fp32", "bf16"),
                     onnx_providers=None, onnx_device_chunk: int = 262_144,
                     deadline: float | None = None) -> dict:
    """Run the benchmark; returns (and writes to ``out``) ``{"config", "env", "results",
    "skipped"}``.

    Args:
        hidden: ``h``; adds the host's full-decoder ONNX rows, folded and not.
        host_rows: time the host rows (off for a GPU-only run).
        device: where the device rows run: ``"cuda"`` (default where available), ``"none"``
            to skip them, or ``"cpu"`` (Triton under its interpreter: for tests, tiny sizes).
        dtypes: codebook dtypes of the device rows, from ``"fp32"``, ``"bf16"``.
        onnx_providers: ONNX Runtime rows to time, from ``"cpu"`` (the CPU provider, a host
            row) and ``"cuda"`` (the device's provider, inputs and outputs in device memory);
            default: every one that starts here.
        onnx_device_chunk: nodes per ONNX Runtime call on a device.
        deadline: ``time.time()`` after which no further row starts (each is noted in
            ``skipped``); ``None``: no limit.

    Each result row: ``method``, ``pass`` (fwd/bwd), ``dtype``, ``device``, ``nodes_per_s``,
    ``seconds_median/min/max``, ``dram_GBps``, ``onchip_GBps`` (codebook bytes), ``memory_bytes``
    and ``max_abs_err`` against the fp32 reference on the first ``PROBE`` ids (gradients for
    ``bwd``). ``skipped``: one line per row or group of rows that did not run, and why.
    """
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "none"
    skipped = []
    if onnx_providers is None:
        onnx_providers = onnx_providers_available()
        if device != "none" and torch.device(device).type == "cuda" and (
                "cuda" not in onnx_providers):
            import onnxruntime as ort

            skipped.append(f"onnx cuda rows: ONNX Runtime {ort.__version__} offers no usable "
                           f"CUDA provider (available: {', '.join(ort.get_available_providers())})")
    spec = CodeSpec("random", bits=bits, bits_per_index=bits_per_index, seed=seed)
    m, rows = spec.num_codebooks, spec.codebook_size
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 256, (num_nodes, spec.bytes_per_node), dtype=torch.uint8,
                          generator=gen)
    codebooks = torch.randn(m, rows, dim, generator=gen)
    ids = torch.randint(0, num_nodes, (batch,), generator=gen)

    record = _Recorder(batch, repeats, deadline)
    code_bytes = num_nodes * spec.bytes_per_node
    book_bytes = codebooks.numel() * 4
    expected = code_decode_reference(codes[ids[:PROBE]], codebooks, bits_per_index)
    gathered = rows_per_node(bits, bits_per_index)
    dram_decode = 8 + spec.bytes_per_node + dim * 4
    dram_bag = gathered * 8 + dim * 4  # prepared int64 indices in, output out
    onchip_decode = gathered * dim * 4
    if host_rows:
        table = torch.empty(num_nodes, dim).normal_(generator=gen)
        record("fp32 table gather", lambda: torch.index_select(table, 0, ids), table.numel() * 4,
               8 + 2 * dim * 4, None)
        table = None
        record("torch reference", lambda: code_decode_reference(codes[ids], codebooks,
                                                                bits_per_index),
               code_bytes + book_bytes, dram_decode, onchip_decode)
        prepared, flat = _prepared_indices(codes[ids], codebooks, bits_per_index)
        record("torch embedding_bag", lambda: F.embedding_bag(prepared, flat, mode="sum"),
               code_bytes + book_bytes, dram_bag, onchip_decode)
        prepared = None

    with tempfile.TemporaryDirectory() as tmp:
        for provider in onnx_providers:
            # the CPU provider is a host row; the CUDA provider runs on the device
            where = "cpu" if provider == "cpu" else device
            if (provider == "cpu" and not host_rows) or where == "none":
                continue
            # (a device row with device="cpu", for tests, runs the CPU provider)
            runs_on = "cuda" if torch.device(where).type == "cuda" else "cpu"
            for formulation in ONNX_FORMULATIONS:
                try:
                    session = _onnx_session(_CodebookSum(codebooks, bits_per_index, formulation),
                                            spec.bytes_per_node, threads,
                                            Path(tmp) / f"decode_{provider}_{formulation}.onnx",
                                            runs_on)
                except ProviderUnavailable as e:
                    log.warning("%s; the onnx %s rows are left out", e, provider)
                    skipped.append(f"onnx {provider} rows: {e}")
                    break
                label = f"onnx {formulation}" if provider == "cpu" else (
                    f"{where} onnx {formulation}")
                _time_onnx(record, label, session, _codes_source(codes, ids, where), expected,
                           dim, code_bytes + book_bytes, dram_decode, onchip_decode,
                           onnx_chunk if provider == "cpu" else onnx_device_chunk, where)
        if hidden is not None and host_rows:
            _time_onnx_decoders(record, codes, ids, bits, bits_per_index, dim, hidden, seed,
                                threads, onnx_chunk, code_bytes, dram_decode, Path(tmp))

    if device not in ("none", None):
        _device_rows(record, torch.device(device), codes, codebooks, ids, bits, bits_per_index,
                     dtypes, seed, code_bytes, expected)

    config = {"num_nodes": num_nodes, "batch": batch, "bits": bits,
              "bits_per_index": bits_per_index, "num_codebooks": m, "dim": dim,
              "rows_per_node": gathered, "onnx_chunk": onnx_chunk,
              "onnx_device_chunk": onnx_device_chunk, "repeats": repeats, "threads": threads,
              "seed": seed, "hidden": hidden, "device": device, "dtypes": list(dtypes),
              "onnx_providers": list(onnx_providers)}
    payload = {"benchmark": "decode", "config": config, "env": environment(),
               "results": record.rows, "skipped": skipped + record.skipped}
    if print_table:
        print(markdown_table(record.rows), flush=True)
        for note in payload["skipped"]:
            print(f"- skipped: {note}", flush=True)
    if out is not None:
        write_json(out, payload)
    return payload


def markdown_table(results: list[dict]) -> str:
    """The result rows as one Markdown table."""
    return format_table(results, [
        ("method", "method", "s"), ("pass", "pass", "s"), ("dtype", "dtype", "s"),
        ("nodes_per_s", "nodes/s", ",.0f"), ("dram_GBps", "DRAM GB/s", ".2f"),
        ("onchip_GBps", "codebook GB/s", ".2f"), ("memory_bytes", "memory (bytes)", ",d"),
        ("max_abs_err", "max |err|", ".1e")])


def _codes_source(codes: torch.Tensor, ids: torch.Tensor, device: str):
    """``f(k)``: the codes of the first ``k`` ids (all with ``None``), numpy on the host, a
    tensor on a device; ``f.host`` is what ``take_codes`` needs for the timed host gather."""
    if device == "cpu":
        codes_np, ids_np = codes.numpy(), ids.numpy()

        def on_host(k):
            return take_codes(codes_np, ids_np if k is None else ids_np[:k])
        on_host.host = (codes_np, ids_np)
        return on_host
    codes_dev, ids_dev = codes.to(device), ids.to(device)

    def on_device(k):
        return codes_dev[ids_dev if k is None else ids_dev[:k]]
    return on_device


def _time_onnx_decoders(record, codes, ids, bits, bits_per_index, dim, hidden, seed, threads,
                        chunk, code_bytes, dram, tmp: Path):
    """The whole decoder in ONNX Runtime on the host, unfolded and (``h <= d_c``) folded."""
    folds = (False, True) if hidden <= dim else (False,)
    config = DecoderConfig(bits, bits_per_index, codebook_dim=dim, hidden_dim=hidden,
                           embedding_dim=dim)
    torch.manual_seed(seed)
    decoder = CodeDecoder(config, backend="reference").eval()
    with torch.no_grad():
        expected = decoder(codes[ids[:PROBE]])
    memory = code_bytes + 4 * sum(p.numel() for p in decoder.parameters())
    for fold in folds:
        decoder.fold_first_linear = fold
        label = "folded" if fold else "unfolded"
        session = _onnx_session(decoder, codes.shape[1], threads, tmp / f"decoder_{label}.onnx")
        gathered = rows_per_node(bits, bits_per_index)
        # folded rows are h wide, not d_c
        _time_onnx(record, f"onnx decoder h={hidden} {label}", session,
                   _codes_source(codes, ids, "cpu"), expected, dim, memory, dram,
                   gathered * (hidden if fold else dim) * 4, chunk)


def _device_rows(record, device: torch.device, codes, codebooks, ids, bits, bits_per_index,
                 dtypes, seed, code_bytes, expected):
    """Forward and backward rows on ``device`` for each codebook dtype (see module doc)."""
    from hashembed.kernels.decode import code_decode_triton

    dev = device.type
    batch, dim = ids.numel(), codebooks.shape[2]
    gen = torch.Generator(device=device).manual_seed(seed)
    codes_dev, ids_dev = codes.to(device), ids.to(device)
    probe = ids_dev[:PROBE]
    grad_out = torch.randn(batch, dim, generator=gen, device=device)
    code_row = codes.shape[1]
    table = torch.randn(codes.shape[0], dim, generator=gen, device=device)
    table_leaf = table.detach().requires_grad_(True)  # same storage; the forward row stays
    # free of autograd, as the decode rows' do
    record(f"{dev} fp32 table gather", lambda: torch.index_select(table, 0, ids_dev),
           table.numel() * 4, 8 + 2 * dim * 4, None, device=device)
    # The sparse gradient of F.embedding(sparse=True) is a view of dz (nothing to time); the
    # work is SparseAdam's step: coalesce the B rows (sort the ids, sum duplicates), then
    # update the rows they name and both moments. Bytes per node: the id, dz read by the
    # coalesce, its output written and read, weight and two moments read and written.
    gathered_rows = F.embedding(ids_dev, table_leaf, sparse=True)
    optimizer = torch.optim.SparseAdam([table_leaf])

    def sparse_adam_step():
        (table_leaf.grad,) = torch.autograd.grad(gathered_rows, table_leaf, grad_out,
                                                 retain_graph=True)
        optimizer.step()

    record(f"{dev} fp32 table gather", sparse_adam_step, 3 * table.numel() * 4,
           8 + 9 * dim * 4, None, device=device, direction="bwd")
    # free the table and the optimiser's moments before the decode rows
    gathered_rows = table = table_leaf = optimizer = None

    ref_books = codebooks.clone().requires_grad_(True)
    code_decode_reference(codes[ids[:PROBE]], ref_books, bits_per_index).backward(
        grad_out[:PROBE].cpu())
    expected_grad = ref_books.grad

    def max_err(actual, wanted):
        return float((actual.float().cpu() - wanted).abs().max())

    # (name, decode, codebook rows gathered per node (None: backward only), rows read in fp32
    # whatever the codebooks' dtype: the kernel's byte tables are merged in fp32)
    methods = [("torch reference", lambda p, c: code_decode_reference(p, c, bits_per_index),
                rows_per_node(bits, bits_per_index), False)]
    paths = (("index", False), ("bytes", True)) if bits_per_index < 8 else (("", None),)
    for label, byte_tables in paths:
        methods.append((f"triton {label}".strip(),
                        lambda p, c, t=byte_tables: code_decode_triton(p, c, bits_per_index,
                                                                       byte_tables=t),
                        rows_per_node(bits, bits_per_index, bool(byte_tables)),
                        bool(byte_tables)))
    methods.append(("triton deterministic",
                    lambda p, c: code_decode_triton(p, c, bits_per_index, deterministic=True),
                    None, False))
    for dtype_name in dtypes:
        dtype = DTYPES[dtype_name]
        books = codebooks.to(device=device, dtype=dtype)
        grad_cast = grad_out.to(dtype)
        elem = books.element_size()
        memory = code_bytes + books.numel() * elem
        prepared, flat = _prepared_indices(codes_dev[ids_dev], books, bits_per_index)
        flat = flat.detach().requires_grad_(True)
        n_bag = prepared.shape[1]
        record(f"{dev} torch embedding_bag",
               lambda: F.embedding_bag(prepared, flat.detach(), mode="sum"),
               memory, n_bag * 8 + dim * 4, n_bag * dim * elem, device=device, dtype=dtype_name)
        bag_out = F.embedding_bag(prepared, flat, mode="sum")
        record(f"{dev} torch embedding_bag", lambda: torch.autograd.grad(
            bag_out, flat, grad_cast, retain_graph=True), memory, n_bag * 8 + dim * 4,
            n_bag * dim * 4, device=device, direction="bwd", dtype=dtype_name)
        bag_out = prepared = flat = None
        for name, decode, gathered, fp32_rows in methods:
            # each check runs after its row's full-size calls, so those compile and tune
            # for B (the autotuner keys on B's size class) before the probe does
            if gathered is not None:  # the deterministic kernel is a backward only
                record(f"{dev} {name}", lambda: decode(codes_dev[ids_dev], books), memory,
                       8 + code_row + dim * 4, gathered * dim * (4 if fp32_rows else elem),
                       device=device,
                       check=lambda: max_err(decode(codes_dev[probe], books), expected),
                       dtype=dtype_name)
            leaf = books.detach().requires_grad_(True)
            out = decode(codes_dev[ids_dev], leaf)
            dz = grad_out if out.dtype == torch.float32 else grad_cast

            def probe_grad_err():
                probe_leaf = books.detach().requires_grad_(True)
                decode(codes_dev[probe], probe_leaf).backward(grad_cast[:PROBE])
                return max_err(probe_leaf.grad, expected_grad)

            backward_rows = gathered or rows_per_node(bits, bits_per_index)
            record(f"{dev} {name}", lambda: torch.autograd.grad(out, leaf, dz, retain_graph=True),
                   memory, code_row + dim * 4, backward_rows * dim * 4, device=device,
                   check=probe_grad_err, direction="bwd", dtype=dtype_name)
            out = leaf = None  # the retained graph goes before the next method's
