"""Never store secrets: files that hold them and text that looks like them (design.md §5)."""
from __future__ import annotations

import re
from pathlib import PurePosixPath

SECRET_FILES = re.compile(
    r"(^|/)(\.env(\..*)?|.*\.pem|.*\.key|id_(rsa|dsa|ecdsa|ed25519)|\.netrc|\.pgpass|credentials(\.json)?|"
    r".*secrets?\.(ya?ml|json|toml))$", re.I)

SECRET_TEXT = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\b(ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),  # OpenAI-style keys
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API key
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWT
    # name = "long opaque value" where the name says it is secret
    re.compile(r"(?i)(password|passwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token|private[_-]?key)"
               r"\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"),
]


def is_secret_file(path: str) -> bool:
    return bool(SECRET_FILES.search(PurePosixPath(path).as_posix()))


def contains_secret(text: str) -> bool:
    return any(p.search(text) for p in SECRET_TEXT)
