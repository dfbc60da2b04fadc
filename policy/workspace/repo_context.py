"""What of the repository goes in front of the model: three sources, each with its own token
budget, assembled once per place the user types at (so the prompt's start stays put and the
KV cache keeps working while they type there).

1. definitions of the names the file imports from the workspace (Python, by `ast`);
2. the windows of other files (and of this file, outside the prompt) most similar to the lines
   before the cursor, by identifier Jaccard (Copilot's neighbouring-tabs measure);
3. this file's recently edited lines that lie outside the prompt's window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from rltab.feedback.secrets import contains_secret
from rltab.policy.completion.prompt import Snippet

from . import python_defs as P
from .index import WorkspaceIndex, cut_windows, identifiers

STRIDE_LINES = 8
"""The context is chosen again when the cursor moves to another block of this many lines."""
QUERY_LINES = 10
"""Lines before the cursor whose identifiers are the similarity query."""
EDIT_RADIUS = 2
"""Lines shown on each side of a recently edited line."""
MAX_EDITS = 8
"""Recently edited places remembered per document."""


@dataclass(frozen=True)
class Budgets:
    imports: int = 64
    similar: int = 64
    edits: int = 32
    """Tokens per source; what one source leaves unused goes to the similar windows."""

    @property
    def total(self) -> int:
        return self.imports + self.similar + self.edits


@dataclass(frozen=True)
class Where:
    """The request, as the context sources need it."""

    path: str
    text: str  # the whole document
    cursor_line: int
    window: tuple[int, int]  # document lines [first, end) the prompt already shows
    language: str

    @classmethod
    def around(cls, path: str, text: str, cursor_line: int, win, language: str) -> Where:
        """The place of a request whose prompt shows `win` (fim.Window: `before` starts at
        document line `first_line`, `after` runs on from the cursor's line)."""
        return cls(path, text, cursor_line, (win.first_line, cursor_line + win.after.count("\n") + 1), language)

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def query(self) -> set[str]:
        """Identifiers of the lines just before the cursor (the similarity query)."""
        return identifiers("\n".join(self.lines[max(0, self.cursor_line - QUERY_LINES) : self.cursor_line + 1]))


class RepoContext:
    def __init__(self, index: WorkspaceIndex, budgets: Budgets = Budgets()):
        self.index = index
        self.budgets = budgets
        self._cache: dict[str, tuple[tuple, list[Snippet]]] = {}
        self._edits: dict[str, list[int]] = {}  # path -> recently edited lines, most recent last
        self._modules: tuple[int, dict[str, str]] = (-1, {})
        self._defs: dict[str, tuple[str, dict[str, str]]] = {}  # path -> (the text parsed, its definitions)
        self._lock = threading.Lock()

    # -- what the editor tells us ------------------------------------------------------------
    def edited(self, path: str, line: int) -> None:
        """An edit at `line` (0-based) of `path`, most recent last."""
        with self._lock:
            marks = [ln for ln in self._edits.get(path, []) if abs(ln - line) > EDIT_RADIUS]
            self._edits[path] = [*marks, line][-MAX_EDITS:]

    def forget(self, path: str) -> None:
        with self._lock:
            self._edits.pop(path, None)
            self._cache.pop(path, None)

    # -- the context of one request ----------------------------------------------------------
    def snippets(self, where: Where, encode: Callable[[str], Sequence[int]]) -> list[Snippet]:
        """The snippets for this place, the same ones while the cursor stays in its block of lines."""
        key = (where.cursor_line // STRIDE_LINES, where.window[0])
        cached = self._cache.get(where.path)
        if cached is not None and cached[0] == key:
            return cached[1]
        out = self._assemble(where, encode)
        self._cache[where.path] = (key, out)
        return out

    def _assemble(self, where: Where, encode) -> list[Snippet]:
        b = self.budgets
        imports, used_i = self._fit(self._import_snippets(where), b.imports, encode)
        edits, used_e = self._fit(self._edit_snippets(where), b.edits, encode)
        similar, _ = self._fit(self._similar_snippets(where), b.total - used_i - used_e, encode)
        # Most relevant last, nearest the code: definitions, similar code, then this file's edits.
        return imports + similar + edits

    @staticmethod
    def _fit(candidates: list[Snippet], budget: int, encode) -> tuple[list[Snippet], int]:
        """The candidates, best first, that fit in `budget` tokens (the last one cut by lines),
        and the tokens they take (counted with the comment marks the starter's layout adds)."""
        out, used = [], 0
        for s in candidates:
            if contains_secret(s.text, s.path):
                continue  # a credential in another file never goes into a prompt
            cost = len(encode(f"# {s.path}\n"))
            lines = []
            for line in s.text.split("\n"):
                n = len(encode(f"# {line}\n"))
                if used + cost + n > budget:
                    break
                lines.append(line)
                cost += n
            if lines and "\n".join(lines).strip():
                out.append(Snippet(s.path, "\n".join(lines)))
                used += cost
            if used + 8 >= budget:
                break
        return out, used

    def display(self, path: str) -> str:
        """A path as the model sees it: relative to its workspace folder, else the file name."""
        for root in self.index.roots:
            try:
                return Path(path).relative_to(root).as_posix()
            except ValueError:
                continue
        return Path(path).name

    def _module_map(self) -> dict[str, str]:
        gen, modules = self._modules
        if gen == self.index.paths_generation:
            return modules
        paths = [p for p in self.index.paths() if p.endswith(".py")]
        known = set(paths)
        modules = {}
        for p in paths:
            name = P.module_name(Path(p), lambda d: str(d / "__init__.py") in known)
            modules.setdefault(name, p)
        self._modules = (self.index.paths_generation, modules)
        return modules

    def _import_snippets(self, where: Where) -> list[Snippet]:
        if where.language != "python" and not where.path.endswith((".py", ".pyi")):
            return []
        modules = self._module_map()
        near = where.query
        wanted: dict[str, list[str]] = {}  # module path -> names, in import order
        for imp in P.imports_of(where.text):
            for path, names in P.resolve(imp, Path(where.path), modules):
                if path != where.path:
                    wanted.setdefault(path, []).extend(names or P.used_attributes(where.text, imp.alias))
        out = []
        for path, wanted_names in wanted.items():
            defs = self._definitions(path)
            # Names used near the cursor first: those are the ones about to be typed again.
            ordered = sorted(dict.fromkeys(wanted_names), key=lambda n: n not in near)
            parts = [defs[n] for n in ordered if n in defs]
            if parts:
                out.append(Snippet(self.display(path), "\n".join(parts)))
        return out

    def _definitions(self, path: str) -> dict[str, str]:
        source = self.index.text(path)
        if source is None:
            return {}
        cached = self._defs.get(path)
        if cached is None or cached[0] is not source:
            cached = self._defs[path] = (source, P.definitions(source))
        return cached[1]

    def _similar_snippets(self, where: Where) -> list[Snippet]:
        """Similar windows of other files (from the index) and of this document outside the
        prompt's window (cut from the request's own text: what the user sees now)."""
        first, end = where.window
        own = [w for w in cut_windows(where.path, where.text) if w.end <= first or w.start >= end]
        out = []
        for m in self.index.similar(where.query, k=4, exclude_path=where.path, extra=own):
            if m.window.path == where.path:
                lines = where.lines
            elif (text := self.index.text(m.window.path)) is not None:
                lines = text.split("\n")
            else:
                continue
            body = "\n".join(lines[m.window.start : m.window.end])
            out.append(Snippet(self.display(m.window.path), body.strip("\n")))
        return out

    def _edit_snippets(self, where: Where) -> list[Snippet]:
        with self._lock:
            marks = list(self._edits.get(where.path, []))
        lines = where.lines
        first, end = where.window
        out = []
        for line in reversed(marks):  # most recent first
            a, b = max(0, line - EDIT_RADIUS), min(len(lines), line + EDIT_RADIUS + 1)
            if (b > first and a < end) or a >= len(lines):
                continue  # already in the prompt, or gone
            body = "\n".join(lines[a:b]).strip("\n")
            if body.strip():
                out.append(Snippet(self.display(where.path), body))
        return out
