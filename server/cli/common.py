"""What every command shares: the usage error (one line on stderr, exit 2), the home and the model
a command works on, and the argument types that check their input where it is read."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


class UsageError(Exception):
    """A problem with what the user asked for: reported on stderr with exit code 2."""


def home_of(args) -> Path:
    from rltab.policy.model.home import default_home

    home = Path(args.home).expanduser() if getattr(args, "home", None) else default_home()
    if home.exists() and not home.is_dir():
        raise UsageError(f"the rltab home {home} is not a directory")
    return home


def count(minimum: int):
    """An argparse type: an integer of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def config_from_json(cls, text: str, flag: str = "--config"):
    """A config dataclass from a JSON object, every key known and every value of its field's type."""
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{flag} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{flag} must be a JSON object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise UsageError(f"{flag}: unknown key(s) {', '.join(unknown)} (known: {', '.join(fields)})")
    for key, value in raw.items():
        kind = type(fields[key].default)
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise UsageError(f"{flag}: {key} must be {kind.__name__}, got {value!r}")
    return cls(**raw)


def writable_parent(path: str, flag: str) -> None:
    parent = Path(path).expanduser().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: no such directory {parent}")


def image_path(path: str, flag: str) -> None:
    """A file matplotlib can write, in a directory that exists: checked before the work."""
    writable_parent(path, flag)
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in kinds:
        raise UsageError(f"{flag} {path}: not an image format matplotlib writes ({', '.join(sorted(kinds))})")


def threads_flag(p) -> None:
    """--threads: the engine's, where the machine's choice should not stand (policy/inference/threads.py)."""
    p.add_argument(
        "--threads",
        type=count(1),
        default=0,
        help="threads the model runs on (default: the machine's cores up to two, all but one above, at most "
        "two for a small model like the starter; or RLTAB_THREADS)",
    )


def model_of(args):
    from rltab.policy.inference.loading import load_model

    model_path = Path(args.model) if getattr(args, "model", None) else None
    try:  # threads 0: chosen by the machine and the model (inference/threads.py)
        return load_model(home_of(args), model_path=model_path, threads=getattr(args, "threads", 0))
    except (FileNotFoundError, ValueError) as e:  # no model there, or a file that is not what it says
        raise UsageError(str(e)) from e


def repo_of(args) -> str | None:
    """--repo PATH, resolved (symlinks, `..`) as the server records repositories."""
    return str(Path(args.repo).resolve()) if getattr(args, "repo", None) else None
