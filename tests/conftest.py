import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One ONNX cache for the whole run (and for the servers the tests start): built once, not per test.
os.environ.setdefault("RLTAB_CACHE", str(Path(os.environ.get("PYTEST_RLTAB_CACHE", "/tmp/rltab-test-cache"))))

import torch
from helpers import make_tiny_model

# One thread, as the product runs: two OpenMP threads spin against any other busy process.
torch.set_num_threads(1)

from rltab.policy.model.checkpoint import STARTER_DIR  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A real, tiny Llama (2 layers, d=64) with its own tokenizer, built once per session."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory) -> Path:
    """An rltab home shared by the tests that only read models (the ONNX cache lives here)."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir, session_home):
    from rltab.policy.inference.loading import load_model

    return load_model(session_home, model_path=tiny_model_dir)


@pytest.fixture(scope="session")
def starter(session_home):
    if not (STARTER_DIR / "model.safetensors").exists():
        pytest.fail("the shipped starter model is missing from policy/starter")
    from rltab.policy.inference.loading import load_model

    return load_model(session_home)


def pytest_collection_modifyitems(session, config, items):
    """The remote-engine tests need llama.cpp's server, the real-VS-Code test code-server: start
    building and installing them now (minutes, at low priority, cached between runs), so the work
    overlaps the tests that come before them."""
    names = {item.path.name for item in items}
    if "test_remote_engine.py" in names:
        from rltab.harness import llama_cpp

        config._llama_build = llama_cpp.build_in_background(llama_cpp.cache_dir().parent / "llama-build.log")
    if "test_vscode_real.py" in names:
        from rltab.harness import code_server

        config._code_server = code_server.install_in_background(
            code_server.cache_dir().parent / "code-server-install.log"
        )
