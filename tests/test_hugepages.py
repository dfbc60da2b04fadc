"""Huge pages for the weights (issue 30): rltab's serving processes ask glibc's malloc for
transparent huge pages (policy/runtime/hugepages.py), so a decoding step walks fewer page tables.
The server starts itself again once with the tunable set and still speaks LSP on the editor's
pipes; the updater it starts (torch) runs without."""

import os
import time

import pytest
from raw_lsp import RawServer

from rltab.policy.runtime import hugepages


def test_the_tunable_is_added_beside_the_users_own_and_never_twice(monkeypatch):
    monkeypatch.setattr(hugepages, "available", lambda env=os.environ: env.get("RLTAB_HUGEPAGES", "1") != "0")
    assert hugepages.environment({})["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    mine = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert hugepages.environment(mine)["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    again = hugepages.environment(hugepages.environment(mine))
    assert again["GLIBC_TUNABLES"].count("hugetlb") == 1
    chosen = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}  # the user's own choice stands
    assert hugepages.environment(chosen) == chosen
    assert "GLIBC_TUNABLES" not in hugepages.environment({"RLTAB_HUGEPAGES": "0"})
    # A process that only builds the int8 file goes without (torch's export is slower on 2 MB pages).
    assert hugepages.without(hugepages.environment(mine)) == mine
    assert "GLIBC_TUNABLES" not in hugepages.without(hugepages.environment({}))


def test_available_only_on_linux_with_a_glibc_that_has_the_tunable():
    assert hugepages.available({"RLTAB_HUGEPAGES": "0"}) is False
    name, version = os.confstr("CS_GNU_LIBC_VERSION").split()  # Linux: "glibc 2.36"
    expected = (
        name == "glibc"
        and tuple(int(p) for p in version.split(".")[:2]) >= (2, 35)
        and hugepages.THP_MODE.exists()
        and "[never]" not in hugepages.THP_MODE.read_text()
    )
    assert hugepages.available({}) is expected


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = (item.decode().partition("=") for item in f.read().split(b"\0") if item)
    return {k: v for k, _, v in pairs}


@pytest.mark.skipif(not hugepages.available(), reason="no glibc >= 2.35 with transparent huge pages here")
def test_the_server_runs_with_huge_pages_and_answers_on_the_same_pipes(starter, tmp_path):
    server = RawServer(tmp_path / "home", env={"GLIBC_TUNABLES": ""})
    try:
        assert "capabilities" in server.initialize()["result"]
        server.open("file:///work/demo/pages.py", "import os\n\n\ndef read_config(path):\n    ")
        answer = server.inline(1, "file:///work/demo/pages.py", 4, 4)  # the model loaded and ran
        assert "error" not in answer and isinstance(answer["result"]["items"], list)
        # The same process (exec keeps the pid the editor holds), now with the tunable. (glibc cuts
        # the tunables' string at its first ':' where /proc shows it: one tunable here.)
        assert _environ(server.proc.pid)["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
    finally:
        server.close()
    assert server.proc.returncode == 0


def test_rltab_hugepages_0_leaves_the_process_as_started(tmp_path):
    server = RawServer(tmp_path / "home", env={"RLTAB_HUGEPAGES": "0", "GLIBC_TUNABLES": ""})
    try:
        assert "capabilities" in server.initialize()["result"]
        assert _environ(server.proc.pid)["GLIBC_TUNABLES"] == ""
    finally:
        server.close()


def _updaters(pid: int) -> list[int]:
    """The `rltab train` processes `pid` started."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(c) for c in f.read().split()]
    out = []
    for c in children:
        try:
            with open(f"/proc/{c}/cmdline", "rb") as f:
                if b"\0train\0" in f.read():
                    out.append(c)
        except OSError:  # gone already
            pass
    return out


@pytest.mark.skipif(not hugepages.available(), reason="no glibc >= 2.35 with transparent huge pages here")
def test_the_updater_the_server_starts_runs_without_them(tmp_path):
    server = RawServer(tmp_path / "home", env={"GLIBC_TUNABLES": ""})
    try:
        server.initialize({"learning": {"enabled": True}})
        deadline = time.monotonic() + 30
        while not (updaters := _updaters(server.proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        (updater,) = updaters
        assert _environ(server.proc.pid)["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
        assert "GLIBC_TUNABLES" not in _environ(updater)  # and `rltab train` does not start itself again
        time.sleep(1.0)
        assert "GLIBC_TUNABLES" not in _environ(updater)
    finally:
        server.close()
