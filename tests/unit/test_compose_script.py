"""deploy/compose.sh and `make up`/`make down` pick `docker compose` or `docker-compose`,
whichever exists: run against a PATH of fake `docker` and `docker-compose` scripts that
record how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "compose.sh"


def fake(bin_dir: Path, name: str, compose_plugin: bool = True) -> None:
    """A fake command that appends its name and arguments, one a line, to $RECORD; a fake
    `docker` answers `compose version` with success only when it has the plugin."""
    check = "" if compose_plugin else 'if [ "$1" = compose ]; then exit 1; fi\n'
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\n{check}printf "%s\\n" "{name}" "$@" >> "$RECORD"\n')
    script.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH of its own, so the machine's real Docker is never found: only bash (for the
    script's `env bash`) and whichever fakes a test puts there."""
    path = tmp_path / "bin"
    path.mkdir()
    bash = shutil.which("bash")
    assert bash
    (path / "bash").symlink_to(bash)
    return path


def run(command: list[str], bin_dir: Path, record: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "RECORD": str(record), "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


def calls(record: Path) -> list[list[str]]:
    """Each call's argv, without the `compose version` probe."""
    lines = record.read_text().splitlines() if record.exists() else []
    out: list[list[str]] = []
    for line in lines:
        if line in ("docker", "docker-compose"):
            out.append([line])
        else:
            out[-1].append(line)
    return [c for c in out if c[1:] != ["compose", "version"]]


def test_the_compose_plugin_is_used_where_docker_has_it(bin_dir: Path, tmp_path: Path) -> None:
    fake(bin_dir, "docker", compose_plugin=True)
    fake(bin_dir, "docker-compose")
    record = tmp_path / "record"
    result = run([str(SCRIPT), "up", "--detach"], bin_dir, record)
    assert result.returncode == 0, result.stderr
    assert calls(record) == [["docker", "compose", "up", "--detach"]]


def test_docker_compose_v1_is_used_where_docker_has_no_plugin(
    bin_dir: Path, tmp_path: Path
) -> None:
    fake(bin_dir, "docker", compose_plugin=False)
    fake(bin_dir, "docker-compose")
    record = tmp_path / "record"
    result = run([str(SCRIPT), "down"], bin_dir, record)
    assert result.returncode == 0, result.stderr
    assert calls(record) == [["docker-compose", "down"]]


def test_docker_compose_v1_alone_is_used(bin_dir: Path, tmp_path: Path) -> None:
    fake(bin_dir, "docker-compose")
    record = tmp_path / "record"
    result = run([str(SCRIPT), "ps"], bin_dir, record)
    assert result.returncode == 0, result.stderr
    assert calls(record) == [["docker-compose", "ps"]]


def test_without_any_compose_it_says_how_to_get_one(bin_dir: Path, tmp_path: Path) -> None:
    fake(bin_dir, "docker", compose_plugin=False)
    record = tmp_path / "record"
    result = run([str(SCRIPT), "up"], bin_dir, record)
    assert result.returncode == 127
    assert "deploy/ensure-docker.sh" in result.stderr
    assert calls(record) == []


@pytest.mark.parametrize("plugin", [True, False])
def test_make_up_and_down_go_through_the_script(
    bin_dir: Path, tmp_path: Path, plugin: bool
) -> None:
    make = shutil.which("make")
    assert make, "make is needed"
    fake(bin_dir, "docker", compose_plugin=plugin)
    fake(bin_dir, "docker-compose")
    record = tmp_path / "record"
    up = run([make, "--no-print-directory", "up", "SCALE=resizer=4,renderer=2"], bin_dir, record)
    assert up.returncode == 0, up.stderr
    down = run([make, "--no-print-directory", "down"], bin_dir, record)
    assert down.returncode == 0, down.stderr
    compose = ["docker", "compose"] if plugin else ["docker-compose"]
    scale = ["--scale", "resizer=4", "--scale", "renderer=2"]
    assert calls(record) == [
        [*compose, "up", "--detach", "--build", *scale],
        [*compose, "down"],
    ]
