"""Nothing leaves the machine: what every rltab process sets before it loads onnxruntime,
transformers or onnx (the CLI calls `seal()` first thing; tests/test_trust.py checks it under strace:
no socket but AF_UNIX, ever).

What each line stops, as measured here:
- onnxruntime >= 1.29 sends session telemetry from its Linux builds (a DNS lookup on first use);
  ORT_DISABLE_TELEMETRY switches it off before the library loads.
- transformers and huggingface_hub never look for a hub: every file is local.
- accelerate (imported by transformers) imports boto3, when installed, for its SageMaker wizard,
  and boto3 pulls in urllib3, whose import opens an IPv6 socket to probe the stack. rltab never
  needs a cloud SDK, so its processes do not load one.
- urllib3 (imported by detect-secrets' plugins, through requests) opens an IPv6 socket at import
  to probe the stack; rltab opens no network socket, so it tells Python there is no IPv6.
- onnx names external-data files with uuid1(), which asks libuuid for the machine's MAC address
  through an AF_INET socket; a random node id (RFC 4122 §4.5) needs none.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import uuid

OFFLINE_ENV = {
    "ORT_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
}
NEVER_IMPORTED = ("boto3",)


def seal() -> None:
    """Make this process (and the processes it starts, through the environment) offline."""
    os.environ.update(OFFLINE_ENV)
    for name in NEVER_IMPORTED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # `import boto3` now fails; find_spec() says absent
    socket.has_ipv6 = False
    if getattr(uuid, "_generate_time_safe", None) is not None:
        uuid._generate_time_safe = None  # type: ignore[attr-defined]
    uuid._node = secrets.randbits(48) | (1 << 40)  # type: ignore[attr-defined]  # multicast bit: not a MAC
