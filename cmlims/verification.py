"""Verifying the audit trail: the chain, its sequence and every stored anchor (``manage.py verify_audit``).

What each check catches:
- HMAC per entry: an edited entry, or one rewritten with a recomputed plain SHA-256 (no key, no valid HMAC).
- prev_hash link: an entry removed and the rest renumbered, or entries swapped.
- sequence gaps: an entry deleted from the middle.
- anchors (signatures, documents, checkpoints) past the end or at another hash: the newest entries cut off
  or the chain replaced.
- stored files (``cmlims.storedfiles``: generated documents, raw-data attachments) re-hashed: a file missing
  from storage or changed since it was stored, named.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass, field

from cmlims.anchors import checkpoint_mac, iter_anchors
from cmlims.audit import GENESIS_HASH, ChainHead, entry_canonical, hmac_key
from cmlims.storedfiles import FileProblem, stored_files_verify

MAX_PROBLEMS = 200


@dataclass(frozen=True)
class ChainProblem:
    sequence: int  # the first entry the problem concerns (sorts the report)
    kind: str  # gap | link | hmac | anchor | truncated | checkpoint
    detail: str

    def __str__(self) -> str:
        return f"entry #{self.sequence} [{self.kind}]: {self.detail}"


@dataclass
class ChainReport:
    entries: int = 0
    head: ChainHead = ChainHead(0, GENESIS_HASH)
    anchors_checked: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    files_checked: int = 0
    file_problems: list[FileProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.file_problems

    @property
    def first_problem(self) -> ChainProblem | None:
        return min(self.problems, key=lambda p: p.sequence) if self.problems else None

    def summary(self) -> str:
        if self.ok:
            return (f"Audit trail intact: {self.entries} entries, head #{self.head.sequence} "
                    f"{self.head.hash[:16]}…, {self.anchors_checked} anchors checked, "
                    f"{self.files_checked} stored files match their SHA-256.")
        if not self.problems:
            return (f"Audit trail intact but stored files BROKEN: {len(self.file_problems)} of "
                    f"{self.files_checked} stored files missing or changed; first: {self.file_problems[0]}.")
        first = self.first_problem
        return (f"Audit trail BROKEN at entry #{first.sequence} ({first.kind}): {first.detail}. "
                f"{len(self.problems)} problem(s) in {self.entries} entries.")

    def as_dict(self) -> dict:
        """The report as the API and the admin page show it."""
        return {
            "ok": self.ok, "summary": self.summary(), "entries_checked": self.entries,
            "head": {"sequence": self.head.sequence, "hash": self.head.hash},
            "anchors_checked": self.anchors_checked,
            "problems": [{"sequence": p.sequence, "kind": p.kind, "detail": p.detail} for p in self.problems],
            "files_checked": self.files_checked,
            "file_problems": [{"model": p.source, "id": p.object_id, "file": p.name, "problem": p.kind}
                              for p in self.file_problems],
        }

    def add(self, sequence: int, kind: str, detail: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(ChainProblem(sequence, kind, detail))


def _check_checkpoint_macs(report: ChainReport, using: str) -> None:
    from cmlims.models import AuditCheckpoint

    rows = AuditCheckpoint.objects.using(using).order_by("sequence").values_list("pk", "sequence", "hash", "at", "mac")
    for pk, sequence, chain_hash, at, mac in rows.iterator(chunk_size=2000):
        expected = checkpoint_mac(sequence=sequence, chain_hash=chain_hash, at=at)
        if not hmac.compare_digest(expected, mac):
            report.add(sequence, "checkpoint", f"checkpoint {pk} was altered or forged (its HMAC does not match)")


def audit_chain_verify(*, using: str = "default", min_head: int = 0) -> ChainReport:
    """Recompute the whole chain and check every anchor; problems are collected, not raised.

    ``min_head``: the chain must reach at least this sequence (e.g. the head a backup recorded)."""
    from cmlims.models import AuditEntry

    report = ChainReport()
    # Anchors first: entries read afterwards include every entry an anchor can point at.
    wanted: dict[int, list] = defaultdict(list)
    for anchor in iter_anchors(using=using):
        wanted[anchor.sequence].append(anchor)
        report.anchors_checked += 1
    _check_checkpoint_macs(report, using)

    key = hmac_key()
    expected_sequence = 1
    prev = GENESIS_HASH
    found: dict[int, str] = {}
    entries = AuditEntry.objects.using(using).order_by("sequence")
    for entry in entries.iterator(chunk_size=5000):
        report.entries += 1
        if entry.sequence != expected_sequence:
            missing = (f"#{expected_sequence}" if entry.sequence == expected_sequence + 1
                       else f"#{expected_sequence}–#{entry.sequence - 1}")
            report.add(expected_sequence, "gap", f"{missing} missing before #{entry.sequence} (deleted)")
        elif entry.prev_hash != prev:
            report.add(entry.sequence, "link", "its prev_hash is not the hash of the entry before it "
                       "(an entry was removed or replaced)")
        computed = hmac.new(key, (entry.prev_hash + entry_canonical(entry)).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(computed, entry.hash):
            report.add(entry.sequence, "hmac", f"content does not match its HMAC (edited, or hash recomputed "
                       f"without the key): {entry.action} {entry.object_type}:{entry.object_id}")
        if entry.sequence in wanted:
            found[entry.sequence] = entry.hash
        prev = entry.hash
        expected_sequence = entry.sequence + 1
        report.head = ChainHead(entry.sequence, entry.hash)

    for sequence, anchors in sorted(wanted.items()):
        for anchor in anchors:
            where = f"{anchor.source} {anchor.object_id}"
            if sequence == 0:
                if anchor.hash != GENESIS_HASH:
                    report.add(1, "anchor", f"{where} anchors the empty chain with a hash other than genesis")
            elif sequence > report.head.sequence:
                report.add(report.head.sequence + 1, "truncated",
                           f"{where} anchors entry #{sequence} but the chain ends at #{report.head.sequence} "
                           f"(the newest entries were removed)")
            elif sequence not in found:
                report.add(sequence, "anchor", f"{where} anchors entry #{sequence}, which is missing")
            elif found[sequence] != anchor.hash:
                report.add(sequence, "anchor", f"{where} anchors entry #{sequence} with another hash "
                           f"(the chain was rewritten)")
    if report.head.sequence < min_head:
        report.add(report.head.sequence + 1, "truncated",
                   f"the chain should reach #{min_head} but ends at #{report.head.sequence}")
    report.problems.sort(key=lambda p: p.sequence)
    report.files_checked, report.file_problems = stored_files_verify(using=using)
    return report
