"""Compare ONNX Runtime outputs with PyTorch's: one helper for the export check and the tests."""

from __future__ import annotations

import numpy as np

from hashembed.core.errors import ShapeMismatchError, ToleranceError


def compare_outputs(expected: dict[str, np.ndarray], actual: dict[str, np.ndarray],
                    atol: float) -> dict[str, float]:
    """Check names, shapes and values; raise one error listing every failure.

    Args:
        expected: output name -> PyTorch result.
        actual: output name -> ONNX Runtime result.
        atol: largest allowed absolute difference.

    Returns:
        output name -> max absolute difference (all within ``atol``).

    Raises:
        ShapeMismatchError: names or shapes differ.
        ToleranceError: some output differs by more than ``atol`` (or is not finite).
    """
    if set(expected) != set(actual):
        raise ShapeMismatchError(f"outputs differ: PyTorch {sorted(expected)}, "
                                 f"ONNX Runtime {sorted(actual)}")
    shape_problems = [f"{k}: PyTorch {list(expected[k].shape)}, ONNX Runtime "
                      f"{list(actual[k].shape)}" for k in expected
                      if expected[k].shape != actual[k].shape]
    if shape_problems:
        raise ShapeMismatchError("output shapes differ: " + "; ".join(shape_problems))
    diffs, problems = {}, []
    for name in expected:
        diff = np.abs(expected[name].astype(np.float64) - actual[name].astype(np.float64))
        worst = float(diff.max()) if diff.size else 0.0
        diffs[name] = worst
        if not np.isfinite(worst) or worst > atol:
            bad = np.argwhere(~(diff <= atol))
            problems.append(f"{name}: max |diff| {worst:.3g} > {atol:g} at {bad.shape[0]} "
                            f"entries, first at {bad[0].tolist()}")
    if problems:
        raise ToleranceError("ONNX Runtime differs from PyTorch: " + "; ".join(problems))
    return diffs
