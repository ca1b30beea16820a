"""The bundle format: atomic writing, typed manifest, and every check open_bundle makes."""

import json
from dataclasses import replace

import numpy as np
import pytest

from hashembed.core.bundle import (CODES_FILE, INDICES_FILE, MANIFEST_NAME, MODEL_FILE, Manifest,
                              open_bundle, read_manifest)
from hashembed.core.errors import (BundleChecksumError, BundleCorruptError, BundleExistsError,
                              BundleMissingFileError, BundleVersionError, OutputPathError)
from hashembed.core.integrity import CHUNK_BYTES, LazyVerifiedArray, seal
from helpers import toy_manifest, write_toy_bundle


def edit_manifest(bundle, change, reseal=True):
    """Apply ``change(dict)`` to the manifest on disk, re-sealing its digest if asked."""
    path = bundle / MANIFEST_NAME
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(seal(content) if reseal else content))


def test_round_trip_memory_maps_codes_and_keeps_the_typed_manifest(tmp_path):
    codes = write_toy_bundle(tmp_path / "b")
    bundle = open_bundle(tmp_path / "b")
    assert isinstance(bundle.codes, np.memmap)
    np.testing.assert_array_equal(bundle.codes, codes)
    manifest = read_manifest(tmp_path / "b")
    assert isinstance(manifest, Manifest) and manifest.class_names == ("a", "b")
    assert manifest == replace(toy_manifest(), files=manifest.files, created=manifest.created)
    assert manifest.files[CODES_FILE]["chunk_sha256"] and MODEL_FILE in manifest.files


def test_crash_before_commit_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        write_toy_bundle(tmp_path / "b", fail_before_commit=True)
    assert list(tmp_path.iterdir()) == []


def test_existing_bundle_is_kept_unless_overwrite(tmp_path):
    write_toy_bundle(tmp_path / "b")
    with pytest.raises(BundleExistsError, match="already holds a bundle"):
        write_toy_bundle(tmp_path / "b")
    write_toy_bundle(tmp_path / "b", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_overwrite_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputPathError, match="is not a hashembed bundle; refusing to replace"):
        write_toy_bundle(folder, overwrite=True)
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging left behind


@pytest.mark.parametrize("verify", ["full", "lazy"])
def test_flipped_byte_fails_checksum(tmp_path, verify):
    write_toy_bundle(tmp_path / "b")
    path = tmp_path / "b" / CODES_FILE
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleChecksumError, match="sha256"):
        bundle = open_bundle(tmp_path / "b", verify=verify)
        bundle.codes[np.array([2])]  # lazy: the first read of the piece fails


def test_lazy_verification_checks_only_the_pieces_read(tmp_path):
    n = CHUNK_BYTES // 4 * 3  # codes span three 4 MiB pieces (+ the .npy header)
    codes = write_toy_bundle(tmp_path / "b", n=n)
    path = tmp_path / "b" / CODES_FILE
    with open(path, "r+b") as f:  # corrupt a byte in the last piece only
        f.seek(path.stat().st_size - 1)
        last = f.read(1)[0]
        f.seek(path.stat().st_size - 1)
        f.write(bytes([last ^ 1]))
    bundle = open_bundle(tmp_path / "b", verify="lazy")
    assert isinstance(bundle.codes, LazyVerifiedArray)
    np.testing.assert_array_equal(bundle.codes.take(np.array([0, 5, n // 3])),
                                  codes[[0, 5, n // 3]])
    with pytest.raises(BundleChecksumError, match="do not match their sha256"):
        bundle.codes.take(np.array([1, n - 1]))
    with pytest.raises(BundleChecksumError):  # and it stays refused
        bundle.codes.take(np.array([0]))


def test_truncated_file_is_named(tmp_path):
    write_toy_bundle(tmp_path / "b")
    path = tmp_path / "b" / INDICES_FILE
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BundleChecksumError, match="truncated"):
        open_bundle(tmp_path / "b", verify="lazy")


def test_missing_file_and_missing_bundle(tmp_path):
    with pytest.raises(BundleMissingFileError, match="does not exist"):
        open_bundle(tmp_path / "nope")
    write_toy_bundle(tmp_path / "b")
    (tmp_path / "b" / MODEL_FILE).unlink()
    with pytest.raises(BundleMissingFileError, match=MODEL_FILE):
        open_bundle(tmp_path / "b")


def test_version_mismatch_and_corrupt_manifest(tmp_path):
    write_toy_bundle(tmp_path / "b")
    edit_manifest(tmp_path / "b", lambda m: m.update(format_version=99))
    with pytest.raises(BundleVersionError, match="version 99"):
        open_bundle(tmp_path / "b")
    (tmp_path / "b" / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(BundleCorruptError, match="not valid JSON"):
        open_bundle(tmp_path / "b")


def test_an_edited_manifest_fails_its_digest(tmp_path):
    write_toy_bundle(tmp_path / "b")
    edit_manifest(tmp_path / "b", lambda m: m["model"].update(edge_hops=3), reseal=False)
    with pytest.raises(BundleChecksumError, match="does not match its digest"):
        open_bundle(tmp_path / "b")


@pytest.mark.parametrize("change, message", [
    (lambda m: m["model"].update(edge_hops=1), "edge_hops 1 is less than the model's 2 layers"),
    (lambda m: m.update(class_names=["a"]), "1 class names for 2 classes"),
    (lambda m: m.update(thresholds=[0.0]), "1 thresholds for c = 32 bits"),
    (lambda m: m["model"].update(num_layers="2"), "field 'num_layers' is '2', expected int"),
    (lambda m: m.pop("graph"), "lacks or mistypes a field"),
])
def test_an_inconsistent_manifest_is_refused_even_when_sealed(tmp_path, change, message):
    write_toy_bundle(tmp_path / "b")
    edit_manifest(tmp_path / "b", change)
    with pytest.raises(BundleCorruptError, match=message):
        open_bundle(tmp_path / "b")


def test_array_shape_must_match_manifest(tmp_path):
    write_toy_bundle(tmp_path / "b")
    edit_manifest(tmp_path / "b", lambda m: m.update(
        code_spec={**m["code_spec"], "bits": 64, "num_codebooks": 8}, thresholds=None))
    with pytest.raises(BundleCorruptError, match=r"uint8 \[3, 4\].*\[3, 8\]"):
        open_bundle(tmp_path / "b")


def test_a_manifest_of_multi_hop_codes_must_carry_its_shifts():
    from hashembed.core.codeformat import CodeSpec

    manifest = toy_manifest()
    hops = replace(manifest.code_spec, hops=3)
    with pytest.raises(BundleCorruptError, match="hop shifts absent for hash codes of 3 hops"):
        replace(manifest, code_spec=hops)
    bits = hops.bits
    good = replace(manifest, code_spec=hops, hop_shifts=((0,) * bits, (1,) * bits))
    assert Manifest.from_dict(good.to_dict()).hop_shifts == good.hop_shifts
    with pytest.raises(BundleCorruptError, match="hop shifts 1 x"):
        replace(manifest, code_spec=hops, hop_shifts=((0,) * bits,))
    with pytest.raises(BundleCorruptError, match="hop shifts"):
        replace(manifest, hop_shifts=((0,) * bits,))  # 1-hop codes have none
    assert CodeSpec.from_dict(manifest.code_spec.to_dict()).hops == 1
