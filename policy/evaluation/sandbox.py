"""Run untrusted model output (a filled-in program plus its tests) away from the server.

A fresh `python -I` subprocess in its own temporary directory and process group, with limits on
CPU time, address space, file size and process count, and a wall-clock timeout after which the
whole group is killed. Before the program runs, a bootstrap installs an audit hook (PEP 578) that
refuses writes outside that directory, any network use, new processes and native code loading;
a refused action ends the run as a reported violation. This is a guard against accidents and
runaway code, not a security boundary against a determined attacker (for that, use a VM).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

VIOLATION = 86  # exit status the bootstrap uses for a refused action

_BOOTSTRAP = r"""
import os, sys
root = os.path.realpath(os.getcwd())
source = open("program.py", encoding="utf-8").read()

def refuse(what):
    sys.stderr.write("rltab-sandbox: refused " + what + "\n")
    sys.stderr.flush()
    os._exit(%(violation)d)

def inside(path):
    try:
        p = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else "/proc/self/fd/%%d" %% path)
    except Exception:
        return False
    return p == root or p.startswith(root + os.sep) or p == os.devnull

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

def hook(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(flags & WRITE_FLAGS)
        if writing and path is not None and not inside(path):
            refuse("writing " + str(path))
    elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.link",
                   "os.symlink", "shutil.rmtree", "os.utime"):
        if not inside(args[0]):
            refuse(event + " " + str(args[0]))
    elif event in ("os.rename", "shutil.move", "shutil.copyfile"):
        if not (inside(args[0]) and inside(args[1])):
            refuse(event + " " + str(args[0]) + " -> " + str(args[1]))
    elif event.startswith("socket."):
        refuse("network (" + event + ")")
    elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                   "os.forkpty", "pty.spawn", "os.kill", "os.killpg"):
        refuse("process control (" + event + ")")
    elif event in ("ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "os.add_dll_directory"):
        refuse("native code (" + event + ")")

sys.addaudithook(hook)
code = compile(source, "program.py", "exec")
del source
exec(code, {"__name__": "__main__"})
"""


@dataclass(frozen=True)
class RunResult:
    status: str  # passed | failed | timeout | violation
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _limits(cpu_s: int, memory_mb: int, file_mb: int):
    def apply():
        os.setsid()  # own process group: a timeout kills everything it started
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_program(program: str, timeout_s: float = 5.0, memory_mb: int = 512, file_mb: int = 8) -> RunResult:
    """Run `program`; "passed" when it exits 0 within the limits."""
    with tempfile.TemporaryDirectory(prefix="rltab-sandbox-") as tmp:
        Path(tmp, "program.py").write_text(program, encoding="utf-8")
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": tmp,
            "TMPDIR": tmp,
            "no_proxy": "*",
            "OMP_NUM_THREADS": "1",
        }
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _BOOTSTRAP % {"violation": VIOLATION}],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_limits(max(1, int(timeout_s) + 1), memory_mb, file_mb),
        )
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return RunResult("timeout", f"no result within {timeout_s:g} s")
        text = err.decode("utf-8", "replace")
        if proc.returncode == 0:
            return RunResult("passed")
        if proc.returncode == VIOLATION:
            line = next((ln for ln in text.splitlines() if ln.startswith("rltab-sandbox: refused")), "refused")
            return RunResult("violation", line.removeprefix("rltab-sandbox: "))
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return RunResult("timeout", "CPU time limit")
        last = text.strip().splitlines()[-1] if text.strip() else f"exit status {proc.returncode}"
        return RunResult("failed", last[-300:])
