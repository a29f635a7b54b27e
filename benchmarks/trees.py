"""The source trees a benchmark measures: this checkout, and optionally a baseline (another
checkout, or a git ref checked out into a temporary `git worktree` removed afterwards).

Every jobsuite contender runs as `python -m <module>` started with cwd=<tree>: sys.path[0] is
then the tree, so the process imports that tree's own `shared`, `services` and `tests` (the
editable install's finder comes after the path finder on sys.meta_path). `open_trees` checks
this once per tree. Helper modules live at different paths in different trees
(`tests/bench/x.py` before the move to `benchmarks/`): `Tree.module` finds the one there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import Settings
from tests.support.processes import Spawner

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Tree:
    """A source tree and the label its figures carry ("" for this checkout)."""

    root: Path
    label: str = ""

    @property
    def is_baseline(self) -> bool:
        return bool(self.label)

    def named(self, what: str) -> str:
        """`what` as a row of this tree: "x" here, "x (baseline)" for the baseline."""
        return f"{what} ({self.label})" if self.label else what

    def module(self, *candidates: str) -> str | None:
        """The first of the dotted module names this tree has (a .py file or a package that
        `python -m` can run), else None."""
        for name in candidates:
            path = self.root.joinpath(*name.split("."))
            if path.with_suffix(".py").is_file() or (path / "__main__.py").is_file():
                return name
        return None

    def bench_module(self, name: str) -> str | None:
        """A benchmark helper: benchmarks/<name>.py, or tests/bench/<name>.py before the move."""
        return self.module(f"benchmarks.{name}", f"tests.bench.{name}")

    def command(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args]

    def start(self, module: str, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """`python -m module args` in this tree, output discarded (a worker being drained)."""
        return subprocess.Popen(
            self.command(module, *args),
            cwd=self.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def output(self, module: str, *args: str, timeout: float = 600) -> str:
        """Run `python -m module args` in this tree to its end and return its stdout."""
        return self.run(module, *args, timeout=timeout).stdout

    def run(
        self, module: str, *args: str, prefix: Sequence[str] = (), timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run `prefix… python -m module args` in this tree to its end (`prefix`: a tool it
        runs under, such as valgrind); RuntimeError with its stderr's end if it failed."""
        done = subprocess.run(
            [*prefix, *self.command(module, *args)],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(
                f"{module} in {self.root} exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        return done

    def spawner(self, settings: Settings, log_dir: Path) -> Spawner:
        """Services of one namespace started from this tree, logs kept (`start_gateway` & co.)."""
        return Spawner(settings, log_dir, cwd=self.root)

    def check_imports(self) -> None:
        """Fail unless a process started here imports this tree's packages, not another's."""
        code = "import shared, services; print(shared.__file__); print(services.__file__)"
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
        )
        files = [(self.root / f).resolve() for f in done.stdout.split()]
        if done.returncode or not all(f.is_relative_to(self.root) for f in files):
            raise SystemExit(f"{self.root}: its processes import {files} {done.stderr[-500:]}")


CURRENT = Tree(ROOT)


@dataclass(frozen=True)
class Trees:
    """This checkout and, when given, the baseline measured beside it in the same run."""

    current: Tree = CURRENT
    baseline: Tree | None = None
    described: str = ""  # where the baseline came from, for the header

    def in_turn(self, run: int) -> list[Tree]:
        """Every tree, the order swapped every other run so that neither always goes first."""
        trees = [self.current, *([self.baseline] if self.baseline else [])]
        return trees if run % 2 == 0 else trees[::-1]

    def find(self, what: str, pick: Callable[[Tree], str | None]) -> Modules:
        """The helper module `pick` chooses in each tree; a tree without one is left out of
        the measurements with a note (an old tree may predate a helper)."""
        found = {tree: module for tree in self.in_turn(0) if (module := pick(tree))}
        if self.current not in found:
            raise SystemExit(f"this checkout has no {what}")
        missing = [t for t in self.in_turn(0) if t not in found]
        notes = [f"{t.label}: not measured, {t.root} has no {what}" for t in missing]
        return Modules(self, found, notes)


@dataclass(frozen=True)
class Modules:
    """One helper module as found in each tree that has it."""

    trees: Trees
    found: dict[Tree, str]
    notes: list[str] = field(default_factory=list)

    def in_turn(self, run: int) -> list[tuple[Tree, str]]:
        return [(t, self.found[t]) for t in self.trees.in_turn(run) if t in self.found]

    @property
    def here(self) -> str:
        return self.found[self.trees.current]


@contextmanager
def open_trees(baseline: str) -> Iterator[Trees]:
    """The trees to measure. `baseline`: "" (none), a checkout directory (used as is) or a
    git ref of this repository (checked out into a temporary worktree, removed afterwards)."""
    if not baseline:
        yield Trees()
        return
    folder = Path(baseline).expanduser()
    if folder.is_dir():
        tree = Tree(folder.resolve(), "baseline")
        yield _checked(tree, f"the checkout {tree.root} ({_head(tree.root)})")
        return
    with _worktree(baseline) as (root, commit):
        yield _checked(Tree(root, "baseline"), f"{baseline} ({commit}) in a temporary worktree")


def _checked(baseline: Tree, described: str) -> Trees:
    for tree in (CURRENT, baseline):
        tree.check_imports()
    print(f"baseline: {described}", file=sys.stderr, flush=True)
    return Trees(CURRENT, baseline, described)


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _head(root: Path) -> str:
    try:
        return textwrap.shorten(_git("log", "-1", "--format=%h %s", cwd=root), 64)
    except SystemExit:
        return "not a git checkout"


@contextmanager
def _worktree(ref: str) -> Iterator[tuple[Path, str]]:
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except SystemExit:
        raise SystemExit(f"baseline {ref!r}: neither a directory nor a commit here") from None
    folder = Path(tempfile.mkdtemp(prefix="jobsuite-baseline-"))
    root = folder / "tree"
    try:
        _git("worktree", "add", "--detach", str(root), commit)
        yield root.resolve(), _head(root)
    finally:
        try:
            if root.exists():
                _git("worktree", "remove", "--force", str(root))
        except SystemExit as e:  # the run's own outcome matters more; prune cleans up later
            print(f"{e} (`git worktree prune` removes its record)", file=sys.stderr)
        shutil.rmtree(folder, ignore_errors=True)
