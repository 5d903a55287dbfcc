"""The audit's output folder: never anything but the audit's own files.

The output folder is checked before any training: it must not be, or
contain, the input file, the current directory or the home directory, and an
existing folder is replaced only with ``--force`` and only when it holds
nothing but the files of an earlier audit, listed in that audit's marker
file. The outputs are written into a staging folder next to it and swapped
into place at the end (:func:`swap_into_place`), so an interrupted run
leaves the old outputs intact.

The folder is claimed before training, atomically: it is created (when new)
and a lock file is created in it with ``O_EXCL``, so a second audit into the
same folder is refused while the first runs. The final swap checks again
that the folder holds nothing but this audit's lock and an earlier audit's
files, and deletes only those.
"""

import json
import os
import socket
import time
import uuid
from pathlib import Path

from ._interrupt import held
from ._table import AuditError

# The file that marks a folder as an audit's output, listing what it wrote.
MARKER = ".sk-zerror-audit"
MARKER_KIND = "sk-zerror audit output"
# The lock file of an audit that is writing into a folder.
LOCK = ".sk-zerror-audit.lock"
# Reads of a lock file still being written before it counts as empty.
LOCK_READ_TRIES = 50


def _written_by_audit(folder):
    """The files an earlier audit wrote into ``folder``, or None."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") != MARKER_KIND:
        return None
    files = marker.get("files")
    return set(files) if isinstance(files, list) else None


def _protected(inputs):
    """Paths the output folder must neither be nor contain, and their names."""
    places = [(Path(p).resolve(), f"the input file {p}") for p in inputs]
    places.append((Path.cwd().resolve(), "the current directory"))
    places.append((Path.home().resolve(), "your home directory"))
    return places


def _read_lock(folder, tries=LOCK_READ_TRIES):
    """The lock of the audit writing into ``folder``: a dict, or None.

    The lock file is created empty (``O_EXCL``) and its holder writes its
    process into it at once: an empty or partial file is read again, a few
    times, before it counts as a lock without a holder (``{}``).
    """
    for attempt in range(tries):
        try:
            lock = json.loads((folder / LOCK).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            if attempt + 1 < tries:
                time.sleep(0.01)
            continue
        except OSError:
            return {}
        return lock if isinstance(lock, dict) else {}
    return {}


def _in_use(out, lock):
    pid, host = lock.get("pid"), lock.get("host")
    stopped = ""
    if isinstance(pid, int) and host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stopped = f"; process {pid} no longer runs, so delete {out / LOCK}"
        except OSError:
            pass
    who = f" (process {pid} on {host})" if pid else ""
    return AuditError(
        f"output folder {out} is being written by another sk-zerror audit{who}: "
        f"wait for it to finish or choose another folder with --out{stopped}"
    )


def check_output_folder(out, *, force, inputs=(), token=None):
    """Refuse an output folder whose replacement could lose anyone's data.

    Parameters
    ----------
    out : path-like
        The output folder.
    force : bool
        Replace an earlier audit's output folder.
    inputs : sequence of path-like
        Files the audit reads; the output folder must not contain them.
    token : str, default=None
        This audit's claim on the folder (see :func:`claim_output_folder`):
        a lock file with another token means another audit is writing there.

    Returns
    -------
    out : Path
    replacing : bool
        Whether an earlier audit's folder will be replaced.
    """
    out = Path(out)
    if out.is_symlink():
        raise AuditError(
            f"output path {out} is a symbolic link; give the real folder or a "
            "new one with --out"
        )
    resolved = out.resolve()
    places = _protected(inputs)
    clashes = [("is", name) for place, name in places if resolved == place]
    clashes += [
        ("contains", name) for place, name in places if resolved in place.parents
    ]
    if clashes:
        verb, name = clashes[0]
        raise AuditError(
            f"output folder {out} {verb} {name}; replacing it would delete it: "
            "choose a new folder with --out"
        )
    if not out.exists():
        # The nearest existing folder above must let us create the outputs.
        ancestor = next(p for p in resolved.parents if p.exists())
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise AuditError(
                f"cannot create the output folder {out}: {ancestor} is not "
                "writable; choose another folder with --out"
            )
        return out, False
    if not out.is_dir():
        raise AuditError(f"output path {out} exists and is not a folder")
    lock = _read_lock(out)
    if lock is not None and (token is None or lock.get("token") != token):
        raise _in_use(out, lock)
    entries = {p.name for p in out.iterdir()} - {LOCK}
    if not entries:
        return out, False
    written = _written_by_audit(out)
    if written is None:
        raise AuditError(
            f"output folder {out} is not empty and was not written by sk-zerror "
            f"audit (no {MARKER} file); --force replaces only an earlier "
            "audit's folder: choose a new folder with --out"
        )
    foreign = sorted(entries - written - {MARKER})
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise AuditError(
            f"output folder {out} holds files an earlier audit did not write "
            f"({shown}); move them or choose a new folder with --out"
        )
    if not force:
        raise AuditError(
            f"output folder {out} holds an earlier audit; use --force to "
            "replace it, or choose a new folder with --out"
        )
    return out, True


class OutputClaim:
    """This audit's hold on its output folder, from before training to the end.

    Attributes
    ----------
    out : Path
    token : str
        Written into the lock file: only the audit holding it writes there.
    created : list of Path
        The folders the claim created, the output folder last (removed on
        release when nothing else was put in them).
    missing : list of Path
        The output folder and its parents that did not exist when the claim
        began (removed on release too, when empty).
    replacing : bool
        Whether an earlier audit's outputs are there, to be replaced.
    done : bool
        The new outputs are in place (the lock went with the old folder).
    kept : Path or None
        Where files that appeared in the folder while the outputs were being
        swapped in are kept (never deleted), if any did.
    """

    def __init__(self, out, token, created, replacing, missing=()):
        self.out, self.token = out, token
        self.created, self.replacing = created, replacing
        self.missing = list(missing)
        self.done, self.kept = False, None

    def release(self):
        """Remove the lock, and the folder if the claim created it and it is empty."""
        if self.done:
            return
        with held():
            lock = _read_lock(self.out)
            if lock is not None and lock.get("token") == self.token:
                (self.out / LOCK).unlink(missing_ok=True)
            # Deepest first: the folders this claim created, and those that
            # were missing when it began (another audit racing for the same
            # new folder may have created them); rmdir removes only empty ones.
            folders = {Path(f).absolute() for f in [*self.created, *self.missing]}
            for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
                try:
                    folder.rmdir()
                except OSError:  # someone put a file there, or it is gone: it stays
                    pass
            self.done = True


def claim_output_folder(out, *, force, inputs=()):
    """Check the output folder and claim it for this audit, atomically.

    The folder is created when it does not exist, and a lock file is
    created in it with ``O_EXCL``: of two audits started together into one
    folder, exactly one gets it; the other gets :class:`AuditError`. The
    folder's contents are checked again once the lock is held.

    Parameters
    ----------
    out : path-like
    force : bool
    inputs : sequence of path-like
        As for :func:`check_output_folder`.

    Returns
    -------
    OutputClaim
        Call its ``release`` when the audit ends, whatever the outcome.
    """
    # What is missing now, before any folder is made: another audit racing
    # for the same new folder may make them first.
    start = Path(out).absolute()
    missing = [f for f in [*start.parents, start] if not f.exists()]
    out, _ = check_output_folder(out, force=force, inputs=inputs)
    token = uuid.uuid4().hex
    lock = {"token": token, "pid": os.getpid(), "host": socket.gethostname()}
    with held():
        claim = OutputClaim(out, token, [], replacing=False, missing=missing)
        try:
            for folder in [*reversed(out.parents), out]:
                if folder.is_dir() and folder != out:
                    continue
                try:
                    folder.mkdir()
                    claim.created.append(folder)
                except FileExistsError:
                    pass
            fd = os.open(out / LOCK, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            claim.release()
            raise _in_use(out, _read_lock(out) or {}) from None
        except OSError as exc:
            claim.release()
            raise AuditError(f"cannot create the output folder {out}: {exc}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(lock, file)
    try:
        # Checked again, now that no other audit can claim it.
        _, claim.replacing = check_output_folder(
            out, force=force, inputs=inputs, token=token
        )
    except BaseException:
        claim.release()
        raise
    return claim


def _replaceable(claim):
    """What the swap may delete from the claimed folder; AuditError if more is there.

    Only this audit's lock, and an earlier audit's files with its marker.
    """
    out = claim.out
    if out.is_symlink() or not out.is_dir():
        raise AuditError(
            f"output folder {out} was moved or replaced during the audit; "
            "nothing was written: choose a new folder with --out"
        )
    lock = _read_lock(out)
    if lock is None or lock.get("token") != claim.token:
        raise AuditError(
            f"the lock of output folder {out} was removed or replaced during the "
            "audit; nothing was written: choose a new folder with --out"
        )
    entries = {p.name for p in out.iterdir()} - {LOCK}
    written = _written_by_audit(out) if claim.replacing else set()
    known = (written | {MARKER}) if written is not None else set()
    foreign = sorted(entries - known)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise AuditError(
            f"files appeared in the output folder {out} during the audit "
            f"({shown}); it was left as it was and nothing was written: move "
            "them or choose a new folder with --out"
        )
    return (entries & known) | {LOCK}


def swap_into_place(staging, claim):
    """Move ``staging`` to the claimed folder, deleting only what may go.

    A signal during the swap is acted on after it; once the new outputs are
    in place, the audit is complete. The old folder is renamed first and
    emptied of the files checked just before: a file that appeared in
    between is kept, in that renamed folder (``claim.kept``).
    """
    out = claim.out
    with held(commit=True):
        replaceable = _replaceable(claim)
        # A fresh name, so no existing file or folder is ever replaced.
        backup = out.with_name(f".{out.name}.old-{uuid.uuid4().hex}")
        out.rename(backup)
        try:
            staging.rename(out)
        except OSError:
            backup.rename(out)
            raise
        claim.done = True
    for name in replaceable:
        path = backup / name
        if path.is_symlink() or path.is_file():
            path.unlink()
    try:
        backup.rmdir()
    except OSError:  # something appeared after the check: it is kept
        claim.kept = backup
