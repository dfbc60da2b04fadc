"""Never store secrets: files that hold them and text that looks like them (architecture.md §5).

Text is checked by Yelp's detect-secrets (its line plugins and false-positive filters, as
`detect-secrets scan` runs them) plus rltab's own rules for what a completion window sees and
detect-secrets does not: the body or END line of a key block whose BEGIN line lies outside the
window, and unquoted `name = value` assignments of secret-named settings (shell, INI, .envrc).
The server checks the whole prompt window, the suggestion and every demonstration before anything
is stored; a window with a secret anywhere in it is not learned from at all.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache
from pathlib import PurePosixPath

SECRET_FILES = re.compile(
    r"(^|/)(\.env[^/]*|[^/]*\.pem|[^/]*\.key|[^/]*\.p12|[^/]*\.pfx|id_(rsa|dsa|ecdsa|ed25519)[^/]*|\.netrc|"
    r"\.pgpass|\.pypirc|\.npmrc|\.git-credentials|credentials[^/]*|[^/]*secrets?\.(ya?ml|json|toml|ini|env))$",
    re.I,
)

KEY_BLOCK = re.compile(r"-----(BEGIN|END) [A-Z0-9 ]*(PRIVATE KEY|PRIVATE KEY BLOCK|SECRET KEY)[A-Z ]*-----")
BASE64_LINE = re.compile(r"^\s*[A-Za-z0-9+/]{40,}={0,2}\s*$")  # a line of a PEM or PGP armoured block
SECRET_NAME = (
    r"[\w.-]*(secret|passw(or)?d|passphrase|token|api[_-]?key|access[_-]?key|private[_-]?key|credential)[\w.-]*"
)
UNQUOTED_ASSIGNMENT = re.compile(rf"(?i)\b{SECRET_NAME}\s*[:=]\s*([A-Za-z0-9/+_=.~-]{{16,}})")
# `export PGPASSWORD=...`, `# admin password: ...`: a short unquoted value after a secret-named
# setting, unless it reads as code (a name, a call, a subscript, a type, a $VARIABLE).
UNQUOTED_VALUE = re.compile(rf"(?i)\b{SECRET_NAME}\s*[:=]\s*([^\s'\"$(){{}}\[\]<>,;]{{6,}})(?=\s|$)")
CODE_LIKE = re.compile(r"[A-Za-z_][A-Za-z_.]*")  # a name or attribute path, no digits or symbols
OWN_PATTERNS = [
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\b(ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),  # OpenAI-style keys
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API key
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWT
    re.compile(r"\beyJ[A-Za-z0-9_-]{17,}"),  # a JWT's header alone (a window or a line cut after it)
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*"),  # Authorization: Bearer <token>
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]{3,}@"),  # scheme://user:password@host
    # ...and cut at the cursor before its `@` (not a host:port: a port is digits)
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?!\d+$)[^/\s@'\"]{6,}$"),
    re.compile(rf"(?i)\b{SECRET_NAME}\s*[:=]\s*['\"][^'\"\s]{{8,}}['\"]"),  # name = "opaque value"
]


def is_secret_file(path: str) -> bool:
    return bool(SECRET_FILES.search(PurePosixPath(path.replace("\\", "/")).as_posix()))


def contains_secret(text: str, filename: str = "snippet.py") -> bool:
    """Whether `text` holds anything that looks like a credential. Cheap on a window that slides
    as the user types: results are cached per line."""
    if not text:
        return False
    if KEY_BLOCK.search(text) or _key_block_body(text):
        return True
    suffix = PurePosixPath(filename).suffix or ".txt"
    return any(_line_has_secret(line, suffix) for line in text.splitlines() if line.strip())


def _key_block_body(text: str) -> bool:
    """Base64 lines of an armoured key whose BEGIN line was cut off: two in a row, or one PEM-long."""
    run = 0
    for line in text.splitlines():
        if BASE64_LINE.match(line) and _entropy(line.strip()) > 4.5:
            run += 1
            if run >= 2 or len(line.strip()) >= 60:
                return True
        else:
            run = 0
    return False


@lru_cache(maxsize=16384)
def _line_has_secret(line: str, suffix: str) -> bool:
    if any(p.search(line) for p in OWN_PATTERNS):
        return True
    m = UNQUOTED_ASSIGNMENT.search(line)
    if m and m.lastindex and _opaque(m.group(m.lastindex)):
        return True
    m = UNQUOTED_VALUE.search(line)
    if m and m.lastindex and not CODE_LIKE.fullmatch(m.group(m.lastindex)):
        return True
    return bool(_detect_secrets(line, suffix))


def _opaque(value: str) -> bool:
    """A value that reads like a generated credential, not like code (`token = next_token()`)."""
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and _entropy(value) >= 3.0


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def _detect_secrets(line: str, suffix: str) -> list:
    # detect-secrets' own scan loop for one line (plugins, then its false-positive filters);
    # the file name only selects the keyword detector's per-language patterns.
    from detect_secrets.core.scan import _process_line_based_plugins

    _configure()
    return list(_process_line_based_plugins([(1, line)], f"snippet{suffix}"))


_configured = False


def _configure() -> None:
    """detect-secrets keeps its settings in a global: every plugin, its default filters, once for
    this process. (Its `default_settings()` is a context manager that restores the empty settings
    on exit, so it cannot be entered and left behind: that ran no plugin at all.)"""
    global _configured
    if not _configured:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.settings import cache_bust, configure_settings_from_baseline

        cache_bust()
        classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
        plugins = [{"name": plugin.__name__} for plugin in classes]
        configure_settings_from_baseline({"plugins_used": plugins})
        _configured = True
