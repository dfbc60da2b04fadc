"""Which workspace files the index may read: inside a workspace folder, not ignored by git,
not a secret, not binary, not huge (the index never reads anything else)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from rltab.feedback.secrets import is_secret_file

# Directories no one wants completions from, ignored even without a .gitignore.
ALWAYS_SKIPPED = {
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "dist",
    "build",
    ".idea",
    ".vscode",
    ".eggs",
}
# Text a code model can use; everything else is skipped without being opened.
SOURCE_SUFFIXES = {
    ".py",
    ".pyi",
    ".js",
    ".jsx",
    ".ts",
    ".tsx",
    ".mjs",
    ".cjs",
    ".go",
    ".rs",
    ".java",
    ".kt",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".rb",
    ".php",
    ".swift",
    ".scala",
    ".lua",
    ".sh",
    ".sql",
    ".md",
    ".rst",
    ".toml",
    ".yaml",
    ".yml",
    ".json",
    ".html",
    ".css",
    ".vue",
    ".svelte",
    ".ex",
    ".exs",
    ".hs",
    ".ml",
    ".zig",
}


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 256_000
    """Larger files (generated code, data, vendored bundles) are skipped."""
    max_files: int = 5_000
    """The index holds at most this many files..."""
    max_total_bytes: int = 48_000_000
    """...and at most this much text (bounded memory on a huge monorepo)."""


def inside(path: Path, roots: list[Path]) -> Path | None:
    """The workspace folder holding `path` (symlinks resolved), or None: outside every folder."""
    try:
        real = path.resolve()
    except OSError:
        return None
    for root in roots:
        if real == root or root in real.parents:
            return root
    return None


def readable_text(path: Path, limits: Limits) -> str | None:
    """The file's text, or None when it is not something to index (secret, binary, huge, unreadable)."""
    if is_secret_file(str(path)) or path.suffix.lower() not in SOURCE_SUFFIXES:
        return None
    try:
        if path.stat().st_size > limits.max_file_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class IgnoreRules:
    """A workspace folder's .gitignore files (the root's and every subdirectory's), as git reads them."""

    def __init__(self, root: Path):
        self.root = root
        self._specs: dict[Path, pathspec.PathSpec] = {}

    def load(self, directory: Path) -> None:
        f = directory / ".gitignore"
        if f.is_file():
            try:
                lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                return
            self._specs[directory] = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, path: Path, is_dir: bool = False) -> bool:
        if path.name in ALWAYS_SKIPPED and is_dir:
            return True
        for directory, spec in self._specs.items():
            if directory == path or directory not in path.parents:
                continue
            rel = path.relative_to(directory).as_posix() + ("/" if is_dir else "")
            if spec.match_file(rel):
                return True
        return False

    def ignored_with_parents(self, path: Path) -> bool:
        """For one changed file: it or any directory between it and the root is ignored."""
        for d in reversed(path.relative_to(self.root).parents[:-1]):
            if self.ignored(self.root / d, is_dir=True):
                return True
        return self.ignored(path)


def walk(root: Path, rules: IgnoreRules) -> Iterator[Path]:
    """Files under `root` that git would not ignore, in a stable order; symlinks are not followed."""
    for directory, dirs, files in os.walk(root, followlinks=False):
        d = Path(directory)
        rules.load(d)
        dirs[:] = sorted(x for x in dirs if not rules.ignored(d / x, is_dir=True))
        for name in sorted(files):
            p = d / name
            if not p.is_symlink() and not rules.ignored(p):
                yield p
