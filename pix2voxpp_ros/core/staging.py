"""Outputs written under a hidden temporary name first, and what killed runs left behind.

A tool writes each output (a file, or a folder such as a bag) beside its final path under
``.NAME.partial-PID`` and renames it into place only when everything is written, so a failure
never leaves a half-written output where the user looks. A run killed before it could clean up
leaves its partial behind: :func:`remove_stale_partials` removes those whose process is gone,
never one that a running process (another run writing now) still owns.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Optional

#: ``.NAME.partial-PID`` or, for a file with a suffix kept, ``.STEM.partial-PID.SUFFIX``.
_PARTIAL = re.compile(r'^\.(?P<stem>.+)\.partial-(?P<pid>[0-9]+)(?P<suffix>(\.[^.]*)?)$')


def partial_name(path: Path, pid: Optional[int] = None, *, keep_suffix: bool = False) -> Path:
    """Return the hidden sibling under which ``path`` is written before it is renamed.

    :param keep_suffix: ``.STEM.partial-PID.SUFFIX`` instead of ``.NAME.partial-PID``, for
        writers that choose the format by the suffix (OpenCV) or append one (``np.save``).
    """
    pid = os.getpid() if pid is None else pid
    if keep_suffix and path.suffix:
        return path.with_name(f'.{path.stem}.partial-{pid}{path.suffix}')
    return path.with_name(f'.{path.name}.partial-{pid}')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or unknowable: leave its output alone
    return True


def remove_stale_partials(path: Path) -> list[Path]:
    """Remove the partials of ``path`` (either naming) whose process no longer runs.

    Only siblings of exactly that pattern for this path's name are touched: folders are
    removed with their contents, files unlinked; symbolic links and a live process's partial
    stay. Returns what was removed.
    """
    removed: list[Path] = []
    try:
        siblings = list(path.parent.iterdir()) if path.parent.is_dir() else []
    except OSError:
        return removed
    for sibling in siblings:
        match = _PARTIAL.match(sibling.name)
        if match is None or sibling.is_symlink():
            continue
        ours = (match['stem'] == path.name and not match['suffix']) or (
            match['stem'] == path.stem and match['suffix'] == path.suffix and path.suffix)
        pid = int(match['pid'])
        if not ours or pid == os.getpid() or _alive(pid):
            continue
        if sibling.is_dir():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed
