"""Comparing a verified chain with its checkpoints: what `jobsuite audit verify` adds to the
chain's own check. Pure: a Report and the checkpoint history in, one line per finding out.

- TRUNCATED: a checkpoint recorded a seq past the log's end (records cut off the end);
- REWRITTEN: a record at a checkpointed seq has another hash (a chain recomputed from some
  point on, while the checkpoints were left alone);
- ANCHOR: the log starts later than the audit service ever pruned (oldest segments deleted
  and anchor.json written by hand), or anchor.json names another hash;
- SIGNATURE, UNSIGNED (with the key): the checkpoints were edited, or the newest one was
  not written by a service holding the key (a chain recomputed with its checkpoints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.audit.verify import Report
from shared.state import Checkpoint, Signer
from shared.words import count

NO_CHECKPOINT = (
    "no checkpoint of this log in the state store: records removed from its end, a forged"
    " anchor.json or a chain recomputed from scratch cannot be detected (the audit service"
    " writes one when it starts)"
)


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def wanted_seqs(history: Sequence[Checkpoint]) -> set[int]:
    """The seqs whose record hashes the comparison needs."""
    return {cp.seq for cp in history} | {cp.base_seq for cp in history}


def compare(report: Report, history: Sequence[Checkpoint], signer: Signer | None) -> Findings:
    found = Findings()
    if not history:
        if signer:
            found.problems.append(f"MISSING: AUDIT_SIGNING_KEY is set but {NO_CHECKPOINT}")
        else:
            found.warnings.append(NO_CHECKPOINT)
        return found
    _signatures(history, signer, found)
    latest, first = history[-1], history[0]
    if not report.ok:
        found.notes.append("the chain is broken, so it was not compared with the checkpoints")
        return found
    _truncation(report, history, found)
    _rewrites(report, history, found)
    _anchor(report, latest, found)
    found.notes.append(
        f"checked against {count(len(history), 'checkpoint')}; the newest #{latest.id} "
        f"({latest.reason}, {latest.at}) at seq {latest.seq}"
    )
    if first.reason == "adopted":
        found.notes.append(
            f"records up to seq {first.seq} were written before checkpoints were kept "
            f"(adopted {first.at}): for them only the chain's own links speak"
        )
    return found


def _signatures(history: Sequence[Checkpoint], signer: Signer | None, found: Findings) -> None:
    latest = history[-1]
    if signer is None:
        if any(cp.signature for cp in history):
            found.notes.append(
                "the checkpoints are signed: set AUDIT_SIGNING_KEY to check them (without it a"
                " chain recomputed together with its checkpoints cannot be detected)"
            )
        return
    mine = [cp for cp in history if cp.signature and cp.key_id == signer.key_id]
    bad = [cp for cp in mine if not signer.valid(cp)]
    if bad:
        found.problems.append(
            f"SIGNATURE: {count(len(bad), 'checkpoint')} "
            f"{'does not match its' if len(bad) == 1 else 'do not match their'} signature, "
            f"the first "
            f"#{bad[0].id} (seq {bad[0].seq}, {bad[0].at}): the checkpoint store was edited"
        )
    if latest.signature is None:
        found.problems.append(
            f"UNSIGNED: the newest checkpoint #{latest.id} (seq {latest.seq}, {latest.at}) is "
            "not signed: written without AUDIT_SIGNING_KEY, or not by the audit service"
        )
    elif latest.key_id != signer.key_id:
        found.problems.append(
            f"SIGNATURE: the newest checkpoint #{latest.id} was signed with another key "
            f"(key id {latest.key_id}; AUDIT_SIGNING_KEY here has key id {signer.key_id})"
        )
    older = sum(1 for cp in history if cp.signature is None)
    if older and latest.signature is not None:
        are = "is" if older == 1 else "are"
        found.notes.append(
            f"{count(older, 'older checkpoint')} {are} unsigned (before the key was set)"
        )


def _truncation(report: Report, history: Sequence[Checkpoint], found: Findings) -> None:
    top = max(history, key=lambda cp: (cp.seq, cp.id))
    if top.seq > report.head_seq:
        found.problems.append(
            f"TRUNCATED: the log ends at seq {report.head_seq} but checkpoint #{top.id} "
            f"({top.reason}, {top.at}) recorded seq {top.seq}: records "
            f"{report.head_seq + 1}..{top.seq} were removed from its end"
        )


def _rewrites(report: Report, history: Sequence[Checkpoint], found: Findings) -> None:
    for cp in history:
        for seq, expected in ((cp.seq, cp.hash), (cp.base_seq, cp.base_hash)):
            if not report.base.seq < seq <= report.head_seq:
                continue  # pruned since, or past the end (TRUNCATED says so)
            if report.hashes.get(seq) != expected:
                found.problems.append(
                    f"REWRITTEN: the record at seq {seq} is not the one checkpoint #{cp.id} "
                    f"({cp.reason}, {cp.at}) recorded: the chain was rewritten at or before "
                    f"seq {seq}"
                )
                return


def _anchor(report: Report, latest: Checkpoint, found: Findings) -> None:
    base = report.base
    if base.seq > latest.base_seq:
        found.problems.append(
            f"ANCHOR: the log starts after seq {base.seq} (anchor.json) but the audit service "
            f"pruned only up to seq {latest.base_seq}: segments were deleted and anchor.json "
            "was not written by the service"
        )
    elif base.seq == latest.base_seq and base.hash != latest.base_hash:
        found.problems.append(
            f"ANCHOR: anchor.json's hash for seq {base.seq} is not the one the audit service "
            "recorded when it pruned: anchor.json was edited"
        )
