"""The repository's layout as pyproject.toml declares it (tests that check the house read it here)."""

from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
PACKAGES = {folder: name for name, folder in SETUPTOOLS["package-dir"].items()}
"""Source folder -> the package it installs as."""
