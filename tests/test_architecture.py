"""The layers (docs/architecture.md): what may import what, checked on the source, and a real
serving process that never loads the learning stack."""

import ast
import json
import os
from pathlib import Path

from layout import PACKAGES, ROOT

from rltab.harness.lsp_client import ServerSession

LEARNING_STACK = ("torch", "transformers", "peft", "onnx")


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function, as absolute names."""
    package = PACKAGES[path.relative_to(ROOT).parts[0]]
    here = [package, *path.relative_to(ROOT).parts[1:-1]]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1]) if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offenders(folders, rule) -> list[str]:
    return [
        f"{p.relative_to(ROOT)}: {m}" for f in folders for p in sources(f) for m in sorted(imports(p)) if rule(p, m)
    ]


def test_policy_and_feedback_never_import_the_server_or_the_harness():
    assert not offenders(["policy", "feedback"], lambda p, m: m.startswith(("rltab.server", "rltab.harness")))


def test_only_the_cli_imports_the_harness():
    allowed = {ROOT / "server" / "cli.py", *(ROOT / "server" / "cli").glob("*.py")}
    assert not offenders(
        ["server", "policy", "feedback"], lambda p, m: m.startswith("rltab.harness") and p not in allowed
    )


def test_the_server_package_never_imports_the_learning_stack():
    assert not offenders(["server"], lambda p, m: m.split(".")[0] in LEARNING_STACK)


def test_serving_a_completion_never_loads_the_learning_stack(tmp_path):
    """A real `rltab serve`, with a cold ONNX cache (the int8 file is built in a process of its own):
    after a completion, none of torch, transformers, peft, onnx is loaded in the server."""
    hook = tmp_path / "hook"
    hook.mkdir()
    # The server runs unmodified; this only reports its modules when it exits.
    (hook / "sitecustomize.py").write_text(
        "import atexit, json, os, sys\n"
        "atexit.register(lambda: open(os.environ['RLTAB_TEST_MODULES'], 'w').write(json.dumps(sorted(sys.modules))))\n"
    )
    out = tmp_path / "modules.json"
    env = {
        "PYTHONPATH": os.pathsep.join([str(hook), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "RLTAB_TEST_MODULES": str(out),
        "RLTAB_CACHE": str(tmp_path / "cache"),
    }
    client = ServerSession(tmp_path / "home", env=env)
    try:
        client.initialize({}, [])
        uri = (tmp_path / "a.py").as_uri()
        client.open(uri, "import os\nimport ")
        r = client.inline(uri, 1, len("import "))
        assert r["result"]["items"] and r["result"]["items"][0]["insertText"], r
    finally:
        client.close()
    loaded = set(json.loads(out.read_text()))
    assert "onnxruntime" in loaded and "rltab.server.app" in loaded
    assert not loaded & set(LEARNING_STACK), sorted(loaded & set(LEARNING_STACK))


# policy/ by concern (policy/__init__.py): the serving side never reaches into the learning side,
# and each layer of it imports only those below it.
ABOVE_SERVING = ("rltab.policy.learning", "rltab.policy.evaluation", "rltab.policy.pretraining")
IMPORTER = ROOT / "policy" / "model" / "importer.py"  # it measures the model it imports (evaluation)


def test_inference_completion_and_workspace_never_import_learning_evaluation_or_pretraining():
    assert not offenders(
        ["policy/inference", "policy/completion", "policy/workspace"], lambda p, m: m.startswith(ABOVE_SERVING)
    )


def test_model_imports_no_other_concern_but_runtime():
    others = (*ABOVE_SERVING, "rltab.policy.inference", "rltab.policy.completion", "rltab.policy.workspace")
    assert not offenders(["policy/model"], lambda p, m: m.startswith(others) and p != IMPORTER)


def test_inference_imports_only_model():
    assert not offenders(
        ["policy/inference"], lambda p, m: m.startswith(("rltab.policy.completion", "rltab.policy.workspace"))
    )


def test_each_policy_subpackage_says_what_lives_there_and_what_it_may_import():
    for init in sorted((ROOT / "policy").glob("*/__init__.py")):
        doc = (init.read_text().split('"""') + ["", ""])[1].strip()
        assert doc and "import" in doc.lower(), f"{init.relative_to(ROOT)}: no docstring saying what it may import"


def test_modules_and_functions_stay_small_unless_their_module_says_why():
    """No module over ~400 lines, no function over ~60, unless the module's docstring names it and
    says why it is better whole ("`name` is one function on purpose")."""
    too_big = []
    for folder in ("server", "policy", "feedback", "harness"):
        for path in sources(folder):
            text = path.read_text(encoding="utf-8")
            tree = ast.parse(text)
            doc = ast.get_docstring(tree) or ""
            if len(text.splitlines()) > 420:
                too_big.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1
                    said = (f"`{node.name}`" in doc or f".{node.name}`" in doc) and "on purpose" in doc
                    if n > 65 and not said:
                        too_big.append(f"{path.relative_to(ROOT)}: {node.name} {n} lines")
    assert too_big == []
