"""wrk, the C load generator, POSTing one JSON body over many keep-alive connections for a
while: its client costs next to nothing next to the server, so the server gets its core to
itself (a Python client's threads would take one of the two). deploy/ensure-wrk.sh installs it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# wrk calls done() once with the totals of all its threads; this line is what we read back.
_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("JOBSUITE_WRK %d %d %d %d %d %d %d\\n", summary.requests,
    e.status, e.connect, e.read, e.write, e.timeout, summary.duration))
end
"""


@dataclass(frozen=True)
class WrkRun:
    requests: int  # answered, whatever their status
    non_2xx: int  # answered with a status outside 2xx and 3xx
    socket_errors: int  # connect, read, write errors and timeouts
    seconds: float

    @property
    def answered_2xx(self) -> int:
        return self.requests - self.non_2xx


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("no wrk on PATH: run deploy/ensure-wrk.sh (as root)")
    return found


def post_for(
    url: str,
    body: object,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    threads: int = 1,
) -> WrkRun:
    """POST `body` as JSON to `url` from `connections` keep-alive connections for `seconds`."""
    lines = [f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()]
    lines.append(f"wrk.headers[{_lua('Content-Type')}] = {_lua('application/json')}")
    body_text = json.dumps(body, separators=(",", ":"))
    if "]==]" in body_text:
        raise ValueError("the body cannot hold ]==]")
    script = _SCRIPT.format(body=body_text, headers="\n".join(lines))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "post.lua"
        path.write_text(script)
        command = [
            wrk_binary(),
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            "--timeout=30s",
            f"--script={path}",
            url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("JOBSUITE_WRK "):
            requests, status, *errors, micros = (int(x) for x in line.split()[1:])
            return WrkRun(requests, status, sum(errors), micros / 1e6)
    raise RuntimeError(
        f"wrk printed no totals (exit {done.returncode}):\n{done.stdout}{done.stderr}"
    )


def _lua(text: str) -> str:
    """`text` as a Lua string literal (JSON's escapes are Lua's for printable ASCII)."""
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"not printable ASCII: {text!r}")
    return json.dumps(text)
