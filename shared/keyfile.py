"""The local key file: where `make run` keeps the admin key it made, and the CLI finds it.

`~/.config/jobsuite/<namespace or "default">.key` (HOME from the environment, so tests point
it at a folder of their own): the key alone, mode 0600, in a folder of mode 0700.
`JOBSUITE_API_KEY` overrides it.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.config import Settings
from shared.errors import ConfigError


def key_file(namespace: str) -> Path:
    return Path.home() / ".config" / "jobsuite" / f"{namespace or 'default'}.key"


def read_key_file(path: Path) -> str | None:
    """The key saved at `path`, or None when there is none."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read the key file {path}: {e.strerror or e}") from None
    return text or None


def write_key_file(path: Path, key: str) -> None:
    """Save `key` readable by its owner only (written under 0600 from the start)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    partial = path.with_name(path.name + ".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    os.chmod(partial, 0o600)
    partial.replace(path)


def client_key(settings: Settings) -> str | None:
    """The key the CLI sends: JOBSUITE_API_KEY, else the local key file, else None."""
    return settings.jobsuite_api_key or read_key_file(key_file(settings.namespace))


def auth_header(settings: Settings) -> dict[str, str]:
    key = client_key(settings)
    return {"Authorization": f"Bearer {key}"} if key else {}
