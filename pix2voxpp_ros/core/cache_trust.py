"""Whether an on-disk cache of converted models may be trusted, and signing what it holds.

A converted model is code-like: whatever graph the cache holds is what runs. So a cache folder is
used only when nobody but the user can change it: the folder and every folder under it are owned
by the user and writable by nobody else, and each folder above it is owned by the user or root
and writable by nobody else unless it is sticky (``/tmp``). Each cache entry's manifest is then
signed with HMAC-SHA256 under a random key kept in the cache folder (mode 0600, never shared):
an entry another user planted, or copied from another machine, fails the signature and is
converted again. Pure Python.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any

from .errors import Pix2VoxError

KEY_NAME = 'cache.key'


class UntrustedCacheError(Pix2VoxError, RuntimeError):
    """A cache folder could be changed by another user; its contents must not be used."""


def writable_folder(folder: Path) -> None:
    """Create ``folder`` (mode 0700 when new) and prove that files can be written in it.

    :raises OSError: it cannot be created or written.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, prefix='.probe-'):
        pass


def _problem(path: Path, info: os.stat_result, *, own: bool) -> str | None:
    """Why ``path`` is not safe (owner, write bits), or None."""
    uid = os.geteuid()
    if info.st_uid != uid and (own or info.st_uid != 0):
        return f'{path} is owned by uid {info.st_uid}, not by this user ({uid})'
    others_write = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if others_write and (own or not info.st_mode & stat.S_ISVTX):
        return f'{path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})'
    return None


def check_trusted(folder: Path) -> None:
    """Refuse ``folder`` unless only this user (and root) can change what it holds.

    :param folder: an existing cache folder; it and its subfolders must be the user's own and
        writable by nobody else, the folders above it owned by the user or root and not
        writable by others unless sticky.
    :raises UntrustedCacheError: the first folder that breaks the rule, and why.
    """
    folder = folder.resolve()
    try:
        for path in (folder, *folder.parents):
            problem = _problem(path, path.stat(), own=path == folder)
            if problem:
                raise UntrustedCacheError(f'cache folder {folder} refused: {problem}')
        for root, dirs, _ in os.walk(folder):
            for name in dirs:
                path = Path(root, name)
                problem = _problem(path, path.lstat(), own=True)
                if problem:
                    raise UntrustedCacheError(f'cache folder {folder} refused: {problem}')
    except OSError as exc:
        raise UntrustedCacheError(f'cache folder {folder} cannot be checked ({exc})') from exc


def user_key(folder: Path) -> bytes:
    """Return the signing key kept in ``folder``, creating it (0600) on first use.

    A key file that is not a regular file of this user readable by nobody else is replaced:
    entries signed with it are then converted again.

    :raises OSError: the key cannot be read or written.
    """
    path = folder / KEY_NAME
    try:
        info = path.lstat()
    except FileNotFoundError:
        info = None
    if info is not None and (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid()
                             or info.st_mode & 0o077 or info.st_size != 32):
        path.unlink()
        info = None
    if info is None:
        key = secrets.token_bytes(32)
        temporary = folder / f'.{KEY_NAME}.{os.getpid()}'
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                             0o600)
        with os.fdopen(descriptor, 'wb') as stream:
            stream.write(key)
        try:
            os.link(temporary, path)  # never replaces a key another process wrote meanwhile
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, 'rb') as stream:
        return stream.read()


def sign(key: bytes, manifest: dict[str, Any]) -> str:
    """HMAC-SHA256 of a manifest's canonical JSON, hex."""
    text = json.dumps(manifest, sort_keys=True).encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def signature_holds(key: bytes, manifest: dict[str, Any], signature: Any) -> bool:
    """Whether ``signature`` is :func:`sign` of ``manifest`` under ``key`` (constant time)."""
    return isinstance(signature, str) and hmac.compare_digest(sign(key, manifest), signature)


def manifest_signed(path: Path, key: bytes, tag: str) -> bool:
    """Whether a JSON manifest names ``tag`` and carries this key's signature of itself."""
    try:
        manifest = json.loads(path.read_text())
        signature = manifest.pop('signature')
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False
    return manifest.get('tag') == tag and signature_holds(key, manifest, signature)


SIGNED_LIST = 'signed.json'


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(1 << 22), b''):
            digest.update(block)
    return digest.hexdigest()


def prune_unsigned(folder: Path, key: bytes) -> dict[str, str]:
    """Delete each file in ``folder`` that its signed list does not name with these bytes.

    For folders another program fills (OpenVINO's compiled blobs): what it wrote is signed
    afterwards with :func:`sign_folder`, and anything else found there is removed unread.

    :returns: the remaining files' digests, by name.
    """
    try:
        listed = json.loads((folder / SIGNED_LIST).read_text())
        files = listed['files'] if signature_holds(key, {'files': listed['files']},
                                                   listed.get('signature')) else {}
    except (OSError, ValueError, KeyError, TypeError):
        files = {}
    kept = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.name == SIGNED_LIST or not path.is_file() or path.is_symlink():
            continue
        digest = _digest(path)
        if isinstance(files, dict) and files.get(path.name) == digest:
            kept[path.name] = digest
        else:
            path.unlink()
    return kept


def sign_folder(folder: Path, key: bytes, known: dict[str, str]) -> None:
    """Sign the files now in ``folder`` (``known``: digests already computed, by name)."""
    files = {path.name: known.get(path.name) or _digest(path) for path in folder.iterdir()
             if path.name != SIGNED_LIST and path.is_file() and not path.is_symlink()}
    if files == known and (folder / SIGNED_LIST).exists():
        return
    temporary = folder / f'.{SIGNED_LIST}.{os.getpid()}'
    temporary.write_text(json.dumps({'files': files, 'signature': sign(key, {'files': files})}))
    temporary.replace(folder / SIGNED_LIST)
