import json

import numpy as np
import pytest

from hashembed.bundle import (CODES_FILE, INDICES_FILE, INDPTR_FILE, MANIFEST_NAME, MODEL_FILE,
                              BundleWriter, open_bundle)
from hashembed.errors import (BundleChecksumError, BundleCorruptError, BundleExistsError,
                              BundleMissingFileError, BundleVersionError)


def write_toy_bundle(path, overwrite=False, fail_before_commit=False):
    codes = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with BundleWriter(path, overwrite=overwrite) as w:
        w.save_array(CODES_FILE, codes)
        w.save_array(INDPTR_FILE, np.array([0, 1, 2, 2], np.int64))
        w.save_array(INDICES_FILE, np.array([1, 0], np.int64))
        w.save_bytes(MODEL_FILE, b"not really onnx")
        w.write_manifest({"graph": {"num_nodes": 3, "num_csr_entries": 2},
                          "code_spec": {"bits": 32}, "model": {}})
        if fail_before_commit:
            raise RuntimeError("crash")
        w.commit()
    return codes


def test_round_trip_memory_maps_codes(tmp_path):
    codes = write_toy_bundle(tmp_path / "b")
    bundle = open_bundle(tmp_path / "b")
    assert isinstance(bundle.codes, np.memmap)
    np.testing.assert_array_equal(bundle.codes, codes)


def test_crash_before_commit_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        write_toy_bundle(tmp_path / "b", fail_before_commit=True)
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_is_kept_unless_overwrite(tmp_path):
    write_toy_bundle(tmp_path / "b")
    with pytest.raises(BundleExistsError, match="already exists"):
        write_toy_bundle(tmp_path / "b")
    write_toy_bundle(tmp_path / "b", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_flipped_byte_fails_checksum(tmp_path):
    write_toy_bundle(tmp_path / "b")
    path = tmp_path / "b" / CODES_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleChecksumError, match="sha256"):
        open_bundle(tmp_path / "b")


def test_truncated_file_is_named(tmp_path):
    write_toy_bundle(tmp_path / "b")
    path = tmp_path / "b" / INDICES_FILE
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BundleChecksumError, match="truncated"):
        open_bundle(tmp_path / "b")


def test_missing_file_and_missing_bundle(tmp_path):
    with pytest.raises(BundleMissingFileError, match="does not exist"):
        open_bundle(tmp_path / "nope")
    write_toy_bundle(tmp_path / "b")
    (tmp_path / "b" / MODEL_FILE).unlink()
    with pytest.raises(BundleMissingFileError, match=MODEL_FILE):
        open_bundle(tmp_path / "b")


def test_version_mismatch_and_corrupt_manifest(tmp_path):
    write_toy_bundle(tmp_path / "b")
    manifest_path = tmp_path / "b" / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(BundleVersionError, match="version 99"):
        open_bundle(tmp_path / "b")
    manifest_path.write_text("{not json")
    with pytest.raises(BundleCorruptError, match="not valid JSON"):
        open_bundle(tmp_path / "b")


def test_array_shape_must_match_manifest(tmp_path):
    write_toy_bundle(tmp_path / "b")
    manifest_path = tmp_path / "b" / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["code_spec"]["bits"] = 64  # says 8 bytes per node, file has 4
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(BundleCorruptError, match=r"uint8 \[3, 4\].*\[3, 8\]"):
        open_bundle(tmp_path / "b")
