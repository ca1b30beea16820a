"""``hashembed bench decode``: decode throughput of every path, against an fp32 table gather.

For ``B`` random node ids out of ``n`` it times, in one process:

- ``fp32 table gather``: ``index_select`` of an ``n × d`` fp32 table (what codes replace);
- ``torch reference``: gather the ids' codes, then :func:`code_decode_reference` (unpack +
  ``embedding_bag``), the PyTorch path;
- ``torch embedding_bag``: ``embedding_bag`` alone on indices prepared beforehand (the floor
  of the PyTorch path);
- ``onnx <formulation>``: gather codes in numpy, decode in ONNX Runtime in chunks written
  into one reused output buffer (IOBinding), for each formulation the exporter can trace
  (:data:`ONNX_FORMULATIONS`);
- ``triton``: the fused kernel (CUDA only);
- with ``hidden`` set, ``onnx decoder`` rows: the whole :class:`CodeDecoder` (codebook sum +
  MLP ``d_c -> h -> d``) exported unfolded and, where ``h <= d_c``, with its first Linear
  folded into the codebooks, so the gain of folding is measured, not assumed.

Decode here is the codebook sum ``[B, d_c]`` with ``d_c = d`` (no MLP), so each row matches a
table row. Bytes per node: DRAM = ids + codes (or table row) + output; on-chip = the ``m``
codebook rows read (``m · d_c · 4`` for fp32), the term that bounds the decode on a GPU.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hashembed.bench.harness import environment, format_table, time_call, write_json
from hashembed.codeformat import CodeSpec, take_codes
from hashembed.export.onnx_model import quiet_onnx_export
from hashembed.kernels.reference import ONNX_FORMULATIONS, code_decode_reference, codes_to_indices
from hashembed.train.decoder import CodeDecoder, DecoderConfig

log = logging.getLogger(__name__)


class _CodebookSum(torch.nn.Module):
    def __init__(self, codebooks: torch.Tensor, bits_per_index: int, formulation: str):
        super().__init__()
        self.codebooks = torch.nn.Parameter(codebooks, requires_grad=False)
        self.bits_per_index = bits_per_index
        self.formulation = formulation

    def forward(self, packed):
        return code_decode_reference(packed, self.codebooks, self.bits_per_index,
                                     self.formulation)


def _onnx_session(module: torch.nn.Module, bytes_per_node: int, threads: int, path: Path):
    """Export ``module`` (packed codes ``uint8 [N, c/8]`` -> ``float [N, ·]``) and open it."""
    import onnxruntime as ort

    example = torch.zeros(7, bytes_per_node, dtype=torch.uint8)
    with torch.no_grad(), quiet_onnx_export():
        program = torch.onnx.export(module.eval(), (example,),
                                    dynamo=True, input_names=["codes"],
                                    dynamic_shapes=({0: torch.export.Dim("num_nodes")},))
    program.save(str(path))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_decode_bench(num_nodes: int = 10_000_000, batch: int = 1_000_000, bits: int = 128,
                     bits_per_index: int = 8, dim: int = 64, onnx_chunk: int = 4096,
                     repeats: int = 5, threads: int | None = None, seed: int = 0,
                     hidden: int | None = None, out: str | Path | None = None,
                     print_table: bool = True) -> dict:
    """Run the benchmark; returns (and writes to ``out``) ``{"config", "env", "results"}``.
    ``hidden`` (``h``) adds the full-decoder rows, folded and not."""
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    spec = CodeSpec("random", bits=bits, bits_per_index=bits_per_index, seed=seed)
    m, rows = spec.num_codebooks, spec.codebook_size
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 256, (num_nodes, spec.bytes_per_node), dtype=torch.uint8,
                          generator=gen)
    codes_np = codes.numpy()
    codebooks = torch.randn(m, rows, dim, generator=gen)
    table = torch.empty(num_nodes, dim).normal_(generator=gen)
    ids = torch.randint(0, num_nodes, (batch,), generator=gen)
    ids_np = ids.numpy()

    code_bytes = num_nodes * spec.bytes_per_node
    book_bytes = codebooks.numel() * 4
    table_bytes = table.numel() * 4
    results = []

    def record(name, fn, memory, dram_per_node, onchip_per_node, cuda=False, check=None):
        timing = time_call(fn, warmup=1, repeats=repeats, cuda=cuda)
        rate = batch / timing.median
        results.append({
            "method": name, "nodes_per_s": rate, "seconds_median": timing.median,
            "seconds_min": timing.min, "seconds_max": timing.max,
            "dram_GBps": rate * dram_per_node / 1e9,
            "onchip_GBps": None if onchip_per_node is None else rate * onchip_per_node / 1e9,
            "memory_bytes": memory, "max_abs_err": check,
        })

    expected = code_decode_reference(codes[ids[:4096]], codebooks, bits_per_index)
    dram_decode = 8 + spec.bytes_per_node + dim * 4
    onchip_decode = m * dim * 4
    record("fp32 table gather", lambda: torch.index_select(table, 0, ids), table_bytes,
           8 + 2 * dim * 4, None)
    record("torch reference", lambda: code_decode_reference(codes[ids], codebooks,
                                                            bits_per_index),
           code_bytes + book_bytes, dram_decode, onchip_decode)
    flat = codebooks.reshape(m * rows, dim)
    prepared = codes_to_indices(codes[ids], bits_per_index) + torch.arange(m) * rows
    record("torch embedding_bag", lambda: F.embedding_bag(prepared, flat, mode="sum"),
           code_bytes + book_bytes, dram_decode, onchip_decode)

    def time_onnx(name, session, expected_out, out_dim, memory, onchip=onchip_decode):
        out_name = session.get_outputs()[0].name

        def onnx_decode(output=np.empty((batch, out_dim), np.float32)):
            # Outputs are bound straight into one reused buffer (as torch's allocator
            # reuses its blocks), so no per-chunk allocation or copy is timed.
            batch_codes = take_codes(codes_np, ids_np)
            for s in range(0, batch, onnx_chunk):
                e = min(s + onnx_chunk, batch)
                binding = session.io_binding()
                binding.bind_cpu_input("codes", batch_codes[s:e])
                binding.bind_output(out_name, "cpu", 0, np.float32, [e - s, out_dim],
                                    output[s:e].ctypes.data)
                session.run_with_iobinding(binding)
            return output

        got = session.run(None, {"codes": take_codes(codes_np, ids_np[:4096])})[0]
        err = float(np.abs(got - expected_out.numpy()).max())
        record(name, onnx_decode, memory, dram_decode, onchip, check=err)

    with tempfile.TemporaryDirectory() as tmp:
        for formulation in ONNX_FORMULATIONS:
            session = _onnx_session(_CodebookSum(codebooks, bits_per_index, formulation),
                                    spec.bytes_per_node, threads,
                                    Path(tmp) / f"decode_{formulation}.onnx")
            time_onnx(f"onnx {formulation}", session, expected, dim, code_bytes + book_bytes)
        if hidden is not None:
            folds = (False, True) if hidden <= dim else (False,)
            decoder_config = DecoderConfig(bits, bits_per_index, codebook_dim=dim,
                                           hidden_dim=hidden, embedding_dim=dim)
            torch.manual_seed(seed)
            decoder = CodeDecoder(decoder_config, backend="reference").eval()
            with torch.no_grad():
                decoder_expected = decoder(codes[ids[:4096]])
            decoder_bytes = code_bytes + 4 * sum(p.numel() for p in decoder.parameters())
            for fold in folds:
                decoder.fold_first_linear = fold
                label = "folded" if fold else "unfolded"
                session = _onnx_session(decoder, spec.bytes_per_node, threads,
                                        Path(tmp) / f"decoder_{label}.onnx")
                # folded rows are h wide, not d_c
                time_onnx(f"onnx decoder h={hidden} {label}", session, decoder_expected, dim,
                          decoder_bytes, onchip=m * (hidden if fold else dim) * 4)

    if torch.cuda.is_available():
        from hashembed.kernels.decode import code_decode_forward

        codes_gpu, books_gpu, ids_gpu = codes.cuda(), codebooks.cuda(), ids.cuda()
        table_gpu = table.cuda()
        record("cuda fp32 table gather", lambda: torch.index_select(table_gpu, 0, ids_gpu),
               table_bytes, 8 + 2 * dim * 4, None, cuda=True)
        flat_gpu, prepared_gpu = flat.cuda(), prepared.cuda()
        record("cuda torch embedding_bag",
               lambda: F.embedding_bag(prepared_gpu, flat_gpu, mode="sum"),
               code_bytes + book_bytes, dram_decode, onchip_decode, cuda=True)
        got = code_decode_forward(codes_gpu[ids_gpu[:4096]], books_gpu, bits_per_index)
        record("cuda triton", lambda: code_decode_forward(codes_gpu[ids_gpu], books_gpu,
                                                          bits_per_index),
               code_bytes + book_bytes, dram_decode, onchip_decode, cuda=True,
               check=float((got.cpu() - expected).abs().max()))

    config = {"num_nodes": num_nodes, "batch": batch, "bits": bits,
              "bits_per_index": bits_per_index, "num_codebooks": m, "dim": dim,
              "onnx_chunk": onnx_chunk, "repeats": repeats, "threads": threads, "seed": seed,
              "hidden": hidden}
    payload = {"benchmark": "decode", "config": config, "env": environment(), "results": results}
    if print_table:
        print(format_table(results, [
            ("method", "method", "s"), ("nodes_per_s", "nodes/s", ",.0f"),
            ("dram_GBps", "DRAM GB/s", ".2f"), ("onchip_GBps", "codebook GB/s", ".2f"),
            ("memory_bytes", "memory (bytes)", ",d"), ("max_abs_err", "max |err|", ".1e")]),
              flush=True)
    if out is not None:
        write_json(out, payload)
    return payload
