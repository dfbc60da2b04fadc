"""Python, by imports: which workspace modules the current file imports, and the signatures of
the names it takes from them (what Continue's import-definitions source shows its model)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

IMPORT_LINE = re.compile(r"^(?:from\s+\S+\s+import\s+.+|import\s+.+)$")


@dataclass(frozen=True)
class Imported:
    module: str  # dotted, relative ones with their leading dots
    names: tuple[str, ...]  # names taken from it; () for `import module`
    alias: str = ""  # what `import module as alias` binds (the module's last part when no alias)


def imports_of(text: str) -> list[Imported]:
    """Import statements of `text`, which may not parse (the user is typing): each import line
    is parsed alone, with its parenthesised continuation lines."""
    out: list[Imported] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not IMPORT_LINE.match(line):
            continue
        stmt = line
        while "(" in stmt and ")" not in stmt and i < len(lines):
            stmt += " " + lines[i].strip()
            i += 1
        try:
            node = ast.parse(stmt.rstrip("\\")).body[0]
        except (SyntaxError, IndexError, ValueError):
            continue
        if isinstance(node, ast.ImportFrom):
            names = tuple(a.name for a in node.names if a.name != "*")
            out.append(Imported("." * node.level + (node.module or ""), names))
        elif isinstance(node, ast.Import):
            out.extend(Imported(a.name, (), a.asname or a.name.split(".")[-1]) for a in node.names)
    return out


def module_name(path: Path, is_package_dir) -> str:
    """Dotted name of a .py file: its directories up to the first one that is not a package."""
    parts = [] if path.stem == "__init__" else [path.stem]
    d = path.parent
    while is_package_dir(d):
        parts.insert(0, d.name)
        d = d.parent
    return ".".join(parts)


def resolve(imp: Imported, current: Path, modules: dict[str, str]) -> list[tuple[str, tuple[str, ...]]]:
    """(path, names) of the workspace modules an import refers to. `from pkg import mod` names
    a submodule as often as a function: both are tried."""
    name = imp.module
    if name.startswith("."):
        level = len(name) - len(name.lstrip("."))
        here = module_name(current, lambda d: (d / "__init__.py").exists()).split(".")
        package = here if current.stem == "__init__" else here[:-1]
        base = package[: len(package) - (level - 1)]
        name = ".".join([*base, name.lstrip(".")] if name.lstrip(".") else base)
    out = []
    if name in modules:
        out.append((modules[name], imp.names))
    for n in imp.names:
        sub = f"{name}.{n}" if name else n
        if sub in modules:
            out.append((modules[sub], ()))
    return out


def _signature(lines: list[str], node: ast.stmt) -> list[str]:
    """A def/class header on one line (a signature spread over lines costs tokens for its
    indentation), keeping the header's own indentation."""
    start = node.lineno - 1
    body = getattr(node, "body", None)
    end = body[0].lineno - 1 if body else start + 1
    header = lines[start : max(start + 1, end)]
    for k, line in enumerate(header):  # stop at the line that opens the body
        if line.rstrip().endswith(":"):
            header = header[: k + 1]
            break
    else:
        header = header[:1]
    indent = header[0][: len(header[0]) - len(header[0].lstrip())]
    one = " ".join(h.strip() for h in header).replace("( ", "(").replace(", )", ")").replace(",)", ")")
    return [indent + one[:240]]


def definitions(text: str) -> dict[str, str]:
    """Top-level name -> a short snippet: a function's signature, a class's header with its
    public methods' signatures, a constant's assignment line (names and shapes are what a small
    model can copy; docstrings would crowd them out of the budget)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}
    lines = text.split("\n")
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[node.name] = "\n".join(_signature(lines, node))
        elif isinstance(node, ast.ClassDef):
            parts = _signature(lines, node)
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    parts += _signature(lines, item)
            out[node.name] = "\n".join(parts)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = lines[node.lineno - 1][:160]
    return out


def used_attributes(text: str, alias: str) -> list[str]:
    """Names used as `alias.name` in `text`, in order of first use."""
    seen: dict[str, None] = {}
    for m in re.finditer(rf"\b{re.escape(alias)}\.([A-Za-z_]\w*)", text):
        seen.setdefault(m.group(1))
    return list(seen)
