"""Who holds a claim on sending a mail: this process, named so that another mailer on the
same machine can tell when the holder has died (killed mid-send) and take over at once
instead of waiting out the claim's lease.

A holder is `host:pid:machine:token`: `machine` is the boot id and the pid namespace (only a
process sharing both can judge the pid, so not a container's neighbour, nor another host
that happens to share the host name), `token` tells this process's claims apart. A holder
this process cannot judge, or whose pid is alive (maybe reused), is alive: wait for it; an
ended process its parent has not reaped yet (a zombie) is gone.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path


def _machine() -> str:
    """This process's boot and pid namespace; "" where Linux's /proc does not say."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return ""
    return f"{boot}.{namespace}"


def this_holder() -> str:
    """A fresh holder name for one claim of this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{_machine()}:{secrets.token_hex(4)}"


def holder_gone(holder: str) -> bool:
    """Whether `holder` was a process of this machine and pid namespace that has ended."""
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return False
    _, pid, machine, _ = parts
    if not machine or machine != _machine() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process (EPERM): alive
        return False
    return _ended(int(pid))


def _ended(pid: int) -> bool:
    """A zombie (ended, not yet reaped by its parent): its sockets are closed, so the broker
    may have given its job to another mailer before the pid is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True  # reaped since the signal test
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")
