"""Issue 12's promises, each checked against the real thing: no network (strace), no stored
secrets, forgetting that leaves no bytes behind, a private home, a server that survives broken
models and concurrent starts, and a CLI that answers bad input in one line."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import completable_doc
from raw_lsp import RawServer

from rltab.feedback.ledger import Ledger, SuggestionRecord
from rltab.feedback.secrets import contains_secret, is_secret_file
from rltab.policy.completion.prompt import cursor_window
from rltab.policy.learning.synthetic import QUOTE_CONTEXTS, serve_round
from rltab.policy.model.checkpoint import STARTER_DIR, write_meta
from rltab.policy.model.formats import EXPORT_FORMAT, ONNX_FORMAT_FILE
from rltab.policy.model.home import current_version, make_private, set_current
from rltab.server.documents import find_repo

CLI = [sys.executable, "-m", "rltab.server.cli"]
PEM_BODY = "\n".join(
    "MIIEpAIBAAKCAQEA0Z3VS5JJcds3xfn" + f"{i:02d}" + "ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB" for i in range(40)
)
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n"


def rltab(*args, env=None, timeout=600):
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


# -- no network ---------------------------------------------------------------------------------
def foreign_sockets(trace: Path) -> list[str]:
    """strace lines that create or use a socket that is not AF_UNIX."""
    bad = []
    for line in trace.read_text().splitlines():
        if (re.search(r"\bsocket\(", line) and "AF_UNIX" not in line and "resumed" not in line) or (
            re.search(r"\b(connect|sendto)\(", line) and re.search(r"sa_family=AF_(INET|INET6|NETLINK|PACKET)", line)
        ):
            bad.append(line)
    return bad


@pytest.fixture
def strace():
    path = shutil.which("strace")
    if path is None or subprocess.run([path, "-f", "-o", "/dev/null", "true"]).returncode != 0:
        pytest.skip("strace is missing or cannot trace here (.ci/run installs it)")
    return path


def test_serve_and_train_open_no_network_socket(tmp_path, strace, starter):
    """A fresh ONNX cache (the int8 build runs), a completion with learning on, then one
    `train --once` cycle that exports and guards a candidate: not one non-AF_UNIX socket."""
    home, cache = tmp_path / "home", tmp_path / "fresh-cache"
    env = {"RLTAB_CACHE": str(cache)}
    src, cursor = completable_doc(starter)
    server = RawServer(
        home,
        env=env,
        prefix=[strace, "-f", "-qq", "-e", "trace=socket,connect,sendto", "-o", str(tmp_path / "serve.trace")],
    )
    server.initialize({"learning": {"enabled": True}})
    server.open("file:///w/point.py", src)
    assert server.inline(
        1,
        "file:///w/point.py",
        *cursor,
    )["result"]["items"]
    server.close()
    assert list(cache.rglob("model.int8.onnx")), "the int8 model was built in this run"

    serve_round(home, QUOTE_CONTEXTS, lambda t: t.lstrip().startswith("'"), seed=0)
    config = json.dumps({"min_events": 8, "guard_pass_tasks": 0})
    r = subprocess.run(
        [
            strace,
            "-f",
            "-qq",
            "-e",
            "trace=socket,connect,sendto",
            "-o",
            str(tmp_path / "train.trace"),
            *CLI,
            "train",
            "--once",
            "--home",
            str(home),
            "--config",
            config,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    for trace in ("serve.trace", "train.trace"):
        assert (tmp_path / trace).exists()
        assert foreign_sockets(tmp_path / trace) == [], trace
    check_private(home)


# -- a private home -----------------------------------------------------------------------------
def check_private(home: Path) -> None:
    wrong = [
        f"{p} {oct(p.stat().st_mode & 0o777)}"
        for p in [home, *home.rglob("*")]
        if not p.is_symlink() and (p.stat().st_mode & 0o777) != (0o700 if p.is_dir() else 0o600)
    ]
    assert wrong == []


def test_make_private_tightens_copied_files(tmp_path):
    home = tmp_path / "home"
    (home / "models" / "v1").mkdir(parents=True)
    shutil.copy2(STARTER_DIR / "tokenizer.json", home / "models" / "v1" / "tokenizer.json")
    (home / "models" / "v1" / "model.int8.onnx").write_bytes(b"x")
    os.chmod(home / "models" / "v1" / "model.int8.onnx", 0o644)
    os.chmod(home, 0o755)
    make_private(home)
    check_private(home)


# -- secrets ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "\n".join(PEM.splitlines()[5:]),  # the body and END line; BEGIN is outside the window
        "\n".join(PEM.splitlines()[5:8]),  # body lines only
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGR...",
        "[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "export GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n",
        "export API_TOKEN=3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c\n",
        'password = "hunter2hunter2"\n',
    ],
)
def test_secrets_are_recognised(text):
    assert contains_secret(text, "settings.py")


@pytest.mark.parametrize(
    "text",
    [
        "    token = self._next_token()\n",
        "def add(a, b):\n    return a + b\n",
        'url = "https://example.com/path?q=1"\n',
        "password = get_password_from_environment()\n",
        'BASE = "http://localhost:8080',  # a URL being typed, cut at its port
        "def login(self, password: str, token: Optional[str] = None) -> bool:\n",
        "secret_key = settings.SECRET_KEY\n",
        "token = tokens[i + 1]\n",
    ],
)
def test_code_is_not_a_secret(text):
    assert not contains_secret(text, "code.py")


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.local",
        ".envrc",
        "a/server.pem",
        "id_rsa",
        "id_ed25519.pub",
        ".netrc",
        "credentials",
        "credentials.json",
        "tls.key",
    ],
)
def test_secret_files(name):
    assert is_secret_file(f"/w/{name}")


def test_no_secret_reaches_the_ledger_with_learning_on(tmp_path, starter):
    home = tmp_path / "home"
    code, cursor = completable_doc(starter)
    lines = code.split("\n")
    # A long key block right above the code: its BEGIN line falls outside the prompt window, its
    # last lines and END line inside.
    key_doc = PEM + "\n".join(lines)
    key_cursor = (cursor[0] + PEM.count("\n"), cursor[1])
    before = "\n".join(key_doc.split("\n")[: key_cursor[0]] + [key_doc.split("\n")[key_cursor[0]][: key_cursor[1]]])
    window = cursor_window(before, "", starter.encode).before
    assert "END RSA PRIVATE KEY" in window and "BEGIN" not in window, window
    server = RawServer(home)
    server.initialize({"learning": {"enabled": True}})
    server.open("file:///w/keys.py", key_doc)
    server.inline(1, "file:///w/keys.py", *key_cursor)
    server.open("file:///w/.envrc", code)
    server.inline(2, "file:///w/.envrc", *cursor)
    server.open("file:///w/clean.py", code)
    assert server.inline(3, "file:///w/clean.py", *cursor)["result"]["items"]
    server.close()
    db = sqlite3.connect(home / "ledger.db")
    rows = {Path(f).name: p for f, p in db.execute("select file, prefix_text from suggestion")}
    db.close()
    assert rows.get("keys.py") is None and rows.get(".envrc") is None
    assert rows["clean.py"], "a clean window is kept for learning"
    raw = b"".join(p.read_bytes() for p in home.glob("ledger.db*") if p.is_file())
    assert b"MIIEpAIBAAKCAQEA" not in raw and b"PRIVATE KEY" not in raw


def test_detect_secrets_runs_with_its_plugins():
    """feedback/secrets.py once entered detect-secrets' defaults through a context manager that
    was dropped at once, leaving its settings empty: none of its plugins ran."""
    from detect_secrets.settings import get_settings

    contains_secret("x = 1", "a.py")
    assert len(get_settings().plugins) > 20
    assert contains_secret('aws = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "a.py")  # detect-secrets' own


# The kinds an independent sweep found in the ledger (issue 26), each with the fragments that must
# never be stored: typed into a file, copied from a workspace file, or typed as a demonstration.
PASSWORD = "Zq8v1x9PwQ7"
JWT_PARTS = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "eyJzdWIiOiIxMjM0NTY3ODkwIn0", "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9")
SECRET_FRAGMENTS = (PASSWORD, "9f8e7d6c5b4a3f2e", "Tr0ub4dor", "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c", *JWT_PARTS)
SECRET_LINES = [
    f'DB_URL = "postgres://app:{PASSWORD}@db/app"',
    'MIRROR = "https://deploy:9f8e7d6c5b4a3f2e@git.example.com/repo.git"',
    "# admin password: Tr0ub4dor&3x",
    'HEADERS = {"Authorization": "Bearer 3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"}',
    f'TOKEN = "{JWT_PARTS[0]}.{JWT_PARTS[1]}.{JWT_PARTS[2]}PlFUP0THsR8U"',
    f'DATABASES = {{"default": {{"PASSWORD": "{PASSWORD}"}}}}',
]
CLEAN_CODE = "".join(
    f"\n\ndef handler_{i}(request, response):\n    response.status = {200 + i}\n    return response\n"
    for i in range(12)
)


@pytest.mark.parametrize("name", SECRET_LINES)
def test_each_kind_is_a_secret(name):
    assert contains_secret(name, "app.py")


def test_no_secret_kind_reaches_any_ledger_column(tmp_path, starter):
    """Typed with learning on, as the sweep did: the secrets in a Python and a shell file, a
    workspace file holding the password (repository context and copying), and every later
    demonstration. No column of any table holds a fragment, decoded token ids included."""
    from rltab.harness.lsp_client import ServerSession
    from rltab.harness.typing_sim import Typist

    ws, home = tmp_path / "ws", tmp_path / "home"
    (ws / ".git").mkdir(parents=True)
    (ws / "config").mkdir()
    (ws / "config" / "settings_db.py").write_text(
        f'DATABASES = {{"default": {{"USER": "app", "PASSWORD": "{PASSWORD}"}}}}\nDB_PASSWORD = "{PASSWORD}"\n'
    )
    app = "import os\n\n" + "\n".join(SECRET_LINES) + "\n" + CLEAN_CODE
    deploy = f"#!/bin/sh\nexport PGPASSWORD={PASSWORD}\npsql -h db -U app\n"
    env = {"RLTAB_DEMONSTRATION_DELAY": "0.2", "RLTAB_RETENTION_DELAYS": "0.3"}
    session = ServerSession(home, env=env)
    try:
        session.initialize({"learning": {"enabled": True}}, folders=[str(ws)])
        Typist(session).type_files([(str(ws / "app.py"), app), (str(ws / "deploy.sh"), deploy)])
        time.sleep(2.5)  # the demonstrations and retention checks come due (checked every second)
    finally:
        session.close()
    db = sqlite3.connect(home / "ledger.db")
    stored = []
    for table in ("suggestion", "event"):
        for row in db.execute(f"select * from {table}"):
            stored += [str(v) for v in row if v is not None]
    for prompt, completion in db.execute(
        "select prompt_ids, completion_ids from suggestion where prompt_ids is not null"
    ):
        stored.append(starter.tokenizer.decode(json.loads(prompt)))
        stored.append(starter.tokenizer.decode(json.loads(completion)))
    kept = db.execute("select count(*) from suggestion where prompt_ids is not null").fetchone()[0]
    demos = db.execute("select count(*) from suggestion where demonstration is not null").fetchone()[0]
    db.close()
    assert kept > 20 and demos > 10, (kept, demos)  # learning did store the clean code around them
    leaked = sorted({f for f in SECRET_FRAGMENTS for text in stored if f in text})
    assert leaked == []
    raw = b"".join(p.read_bytes() for p in home.glob("ledger.db*") if p.is_file())
    assert not [f for f in SECRET_FRAGMENTS if f.encode() in raw]


def learned(prefix: str, completion: str) -> SuggestionRecord:
    """A suggestion recorded with learning on (its text and token ids kept)."""
    return SuggestionRecord(
        "starter",
        "line",
        3,
        1.0,
        prompt_ids=[1],
        completion_ids=[2],
        logprobs=[-0.1],
        prefix_text=prefix,
        completion_text=completion,
    )


def test_migration_scrubs_secrets_learned_before(tmp_path):
    db_path = tmp_path / "ledger.db"
    ledger = Ledger(db_path)
    sid = ledger.record_suggestion(learned("x = 1\n" + PEM_BODY[:200], "abc"))
    clean = ledger.record_suggestion(learned("x = 1\n", "abc"))
    ledger.db.execute("delete from _sqlite_migrations where name = 'm005_scrub_secrets'")
    ledger.close()
    ledger = Ledger(db_path)  # the migration runs again, as on an upgrade
    assert ledger.suggestion(sid)["prefix_text"] is None and ledger.suggestion(sid)["prompt_ids"] is None
    assert ledger.suggestion(clean)["prefix_text"] == "x = 1\n"
    ledger.close()


def test_upgrade_scrubs_what_the_old_detector_let_through(tmp_path):
    """m008: rows stored while detect-secrets ran no plugin, and a JWT split between the prompt
    and the demonstration, lose their text and token ids on upgrade."""
    db_path = tmp_path / "ledger.db"
    ledger = Ledger(db_path)
    url = ledger.record_suggestion(learned(f'DB = "postgres://app:{PASSWORD}', "@db"))
    jwt = ledger.record_suggestion(learned(f'T = "{JWT_PARTS[0]}.', "x"))
    ledger.record_demonstration(jwt, f'{JWT_PARTS[1]}.{JWT_PARTS[2]}"')
    ledger.db.execute("delete from _sqlite_migrations where name = 'm008_scrub_secrets_detect_secrets_ran'")
    ledger.close()
    ledger = Ledger(db_path)
    for sid in (url, jwt):
        row = ledger.suggestion(sid)
        assert row["prefix_text"] is None and row["prompt_ids"] is None and row["demonstration"] is None
    assert not [t for (t,) in ledger.db.execute("select text from event") if t]
    ledger.close()


# -- forgetting ---------------------------------------------------------------------------------
def rec(repo, file, text="remember me"):
    return SuggestionRecord(
        "starter", "line", 3, 1.0, repo=repo, file=file, prompt_ids=[1], prefix_text=text, completion_text=text
    )


def test_forget_repo_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    (real / ".git").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    home = tmp_path / "home"
    ledger = Ledger(home / "ledger.db")
    ledger.record_suggestion(rec(find_repo(str(link / "a.py")), str(link / "a.py")))  # recorded resolved
    ledger.record_suggestion(rec(str(link), str(link / "b.py")))  # recorded unresolved (older rltab)
    ledger.record_suggestion(rec("/elsewhere", "/elsewhere/c.py"))
    ledger.close()
    for spelling in (str(link), str(real)):
        r = rltab("forget", "--repo", spelling, "--home", str(home))
        assert r.returncode == 0, r.stderr
    ledger = Ledger(home / "ledger.db")
    assert [row["repo"] for row in ledger.rows()] == ["/elsewhere"]
    ledger.close()


def test_forget_all_under_load_leaves_no_bytes(tmp_path):
    home = tmp_path / "home"
    ledger = Ledger(home / "ledger.db")
    for i in range(200):
        ledger.record_suggestion(rec("/w", f"/w/{i}.py", f"FORGETME-{i:04d} " * 20))
    stop = threading.Event()

    def load():  # another process's worth of writes while forget runs
        other = Ledger(home / "ledger.db")
        while not stop.is_set():
            other.record_suggestion(rec("/w", "/w/x.py", "harmless"))
        other.close()

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.2)
        r = rltab("forget", "--all", "--home", str(home))
    finally:
        stop.set()
        t.join()
    ledger.close()
    assert r.returncode == 0, r.stderr
    for name in ("ledger.db", "ledger.db-wal"):
        p = home / name
        assert not p.exists() or b"FORGETME" not in p.read_bytes(), name


def test_forget_removes_models_trained_on_it(tmp_path):
    home = tmp_path / "home"
    for version, parent in (("v1", "starter"), ("v2", "v1"), ("imported", None)):
        d = home / "models" / version
        d.mkdir(parents=True)
        write_meta(d, {"version": version, "parent": parent, "time": time.time()})
    set_current(home, "v2")
    ledger = Ledger(home / "ledger.db")
    sid = ledger.record_suggestion(rec("/w", "/w/a.py"))
    ledger.mark_trained([sid], "v1")
    ledger.close()
    r = rltab("forget", "--all", "--home", str(home))
    assert r.returncode == 0, r.stderr
    assert "v1, v2" in r.stdout
    assert not (home / "models" / "v1").exists() and not (home / "models" / "v2").exists()
    assert (home / "models" / "imported").exists() and current_version(home) == "starter"


# -- faults -------------------------------------------------------------------------------------
def broken_home(tmp_path: Path, how: str) -> Path:
    home = tmp_path / "home"
    d = home / "models" / "v1"
    if how != "missing":
        shutil.copytree(STARTER_DIR, d)
        write_meta(d, {"version": "v1", "parent": "starter", "time": 1.0, "serve_fim": False})
    if how == "no tokenizer":
        (d / "tokenizer.json").unlink()
    elif how in ("corrupt onnx", "older onnx"):
        (d / "model.int8.onnx").write_bytes(b"\x08\x01garbage" * 100)
        if how == "corrupt onnx":  # of today's export format: served as it is, so it fails
            (d / ONNX_FORMAT_FILE).write_text(str(EXPORT_FORMAT))
    elif how == "bad meta":
        (d / "meta.json").write_text("{not json")
    home.mkdir(parents=True, exist_ok=True)
    (home / "current").write_text("v1\n")
    return home


@pytest.mark.parametrize("how", ["no tokenizer", "corrupt onnx", "bad meta", "missing", "older onnx"])
def test_a_broken_model_falls_back_and_says_so(tmp_path, starter, how):
    """A model that cannot load: the server serves its parent and says so once. A `current` naming
    a deleted version just means the starter; a version's own ONNX file of an older export format
    (no format file beside it) is built again from its weights and served, nothing to say."""
    home = broken_home(tmp_path, how)
    src, cursor = completable_doc(starter)
    server = RawServer(home)
    server.initialize()
    server.open("file:///w/a.py", src)
    for i in range(3):
        r = server.inline(i, "file:///w/a.py", *cursor)
        assert r["result"]["items"], r
    server.close()
    if how == "older onnx":
        served = [n["params"]["modelVersion"] for n in server.notifications if n["method"] == "rltab/status"]
        assert "v1" in served, served
    if how not in ("missing", "older onnx"):
        shown = [n["params"]["message"] for n in server.notifications if n["method"] == "window/showMessage"]
        assert len([m for m in shown if "cannot load model v1" in m]) == 1, shown
        assert "cannot load model v1" in server.stderr_text()
    assert "Traceback" not in server.stderr_text()
    r = rltab("versions", "--home", str(home))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_two_servers_opening_a_new_home_at_once(tmp_path):
    code = "import sys; from rltab.feedback.ledger import Ledger; Ledger(sys.argv[1]).close()"
    for round_ in range(12):
        db = tmp_path / f"h{round_}" / "ledger.db"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE) for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()[-1500:]


# -- the CLI under bad input --------------------------------------------------------------------
@pytest.fixture
def bad_homes(tmp_path):
    file_home = tmp_path / "a-file"
    file_home.write_text("x")
    dir_ledger = tmp_path / "dirledger"
    (dir_ledger / "ledger.db").mkdir(parents=True)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "ledger.db").write_bytes(b"this is not a database" * 100)
    good = tmp_path / "good"
    Ledger(good / "ledger.db").close()
    return {"file": file_home, "dirledger": dir_ledger, "corrupt": corrupt, "good": good, "tmp": tmp_path}


BAD = [
    ("stats", "--home", "{file}"),
    ("stats", "--home", "{dirledger}"),
    ("stats", "--home", "{corrupt}"),
    ("forget", "--all", "--home", "{corrupt}"),
    ("forget", "--all", "--home", "{dirledger}"),
    ("versions", "--home", "{file}"),
    ("train", "--once", "--home", "{good}", "--config", "{{not json"),
    ("train", "--once", "--home", "{good}", "--config", '{{"nope": 1}}'),
    ("train", "--once", "--home", "{good}", "--config", '{{"lr": "x"}}'),
    ("train", "--once", "--home", "{good}", "--config", "[1]"),
    ("complete", "{tmp}/x.py", "--line", "1", "--col", "1", "--max-lines", "0"),
    ("bench", "latency", "--repeats", "0", "--home", "{good}"),
    ("stats", "--home", "{good}", "--plot", "{tmp}/no/such/dir/p.png"),
    ("demo", "--lines", "-5", "--home", "{good}"),
    ("replay", "{tmp}", "--frozen", "--every", "0"),
    ("replay", "{tmp}", "--learn", "--config", '{{"epochs": "many"}}', "--home", "{good}"),
    ("eval", "humaneval-infill", "--n", "0"),
    ("complete", "{tmp}/missing.py", "--line", "1", "--col", "1"),
    # issue 26's sweep: the seven that printed a traceback
    ("serve", "--engine", "http://[::1", "--home", "{good}"),
    ("serve", "--engine", "http://127.0.0.1:99999", "--home", "{good}"),
    ("complete", "{tmp}/x.py", "--line", "1", "--col", "1", "--model", "{tmp}/emptytok", "--home", "{good}"),
    ("stats", "--home", "{good}", "--plot", "{tmp}/x.notanimageformat"),
    ("replay", "--compare", "{tmp}/list.json", "{tmp}/obj.json", "--plot", "{tmp}/c.png"),
    ("replay", "{tmp}/empty.py", "--frozen", "--home", "{good}"),
    ("import-model", "{tmp}/listconfig", "--home", "{good}"),
]


def test_a_bad_environment_variable_is_one_line_and_exit_2(tmp_path):
    r = subprocess.run(
        [*CLI, "serve", "--home", str(tmp_path / "h")],
        env={**os.environ, "RLTAB_RETENTION_DELAYS": "abc"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "RLTAB_RETENTION_DELAYS" in r.stderr, r.stderr


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a[:3]) for a in BAD])
def test_bad_input_is_one_line_and_exit_2(bad_homes, argv):
    tmp = bad_homes["tmp"]
    (tmp / "x.py").write_text("x = 1\n")
    (tmp / "empty.py").write_text("")
    (tmp / "list.json").write_text("[]")
    (tmp / "obj.json").write_text("{}")
    (tmp / "emptytok").mkdir(exist_ok=True)
    (tmp / "emptytok" / "tokenizer.json").write_text("{}")
    (tmp / "listconfig").mkdir(exist_ok=True)
    (tmp / "listconfig" / "config.json").write_text("[]")
    args = [a.format(**bad_homes) for a in argv]
    r = rltab(*args, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
