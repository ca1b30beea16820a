"""What a wheel holds: every package folder is listed in pyproject.toml, and the bundled data."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOT_PACKAGES = {"tests", "docs", "scripts", ".venv", ".git", "build", "dist", "runs"}


def package_folders() -> set[str]:
    """Import names of the folders that hold Python modules (the root is ``hashembed``)."""
    found = {"hashembed"}
    for folder in REPO.iterdir():
        if not folder.is_dir() or folder.name in NOT_PACKAGES or folder.name.startswith("."):
            continue
        for sub in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            if "__pycache__" in sub.parts or sub.name.endswith(".egg-info"):
                continue
            if any(sub.glob("*.py")) or any(sub.glob("*.npz")):
                found.add("hashembed." + ".".join(sub.relative_to(REPO).parts))
    return found


def test_every_package_folder_is_listed_for_the_wheel():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"hashembed": "."}
    assert set(config["packages"]) == package_folders()


def test_the_bundled_default_graph_is_package_data():
    from importlib import resources

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-data"] == {"hashembed.graph.data": ["*.npz"]}
    assert resources.files("hashembed.graph").joinpath("data/cora.npz").is_file()
