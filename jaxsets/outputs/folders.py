"""A folder that appears whole or not at all: build it in a hidden sibling, then swap it in.

jaxsets.atomic does this for single files; a support set is a tree (PNGs, manifest, TFDS shards),
so the same idea is applied to a directory. A reader of `workdir/support_set` sees either the old
complete set or the new complete set, never a half-written one.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import secrets
import shutil

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: str, b: str) -> bool:
  """Swaps two existing paths in one atomic step (Linux renameat2); False where unsupported
  (another OS, an old glibc, a file system without RENAME_EXCHANGE such as some network mounts)."""
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    renameat2 = libc.renameat2
  except (OSError, AttributeError):
    return False
  renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
  return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _remove_leftovers(path: str) -> None:
  """Deletes hidden build/old folders that a killed process left beside `path`."""
  parent, name = os.path.split(path)
  for prefix in (f".{name}.tmp-", f".{name}.old-"):
    for stale in glob.glob(os.path.join(glob.escape(parent), glob.escape(prefix) + "*")):
      shutil.rmtree(stale, ignore_errors=True)


def replace_dir(tmp: str, path: str) -> None:
  """Puts the complete folder `tmp` at `path`, replacing any folder there."""
  if not os.path.exists(path):
    os.rename(tmp, path)
    return
  if _exchange(tmp, path):
    shutil.rmtree(tmp, ignore_errors=True)  # now holds the old folder
    return
  # Fallback: two renames. Between them `path` is briefly absent; a crash there leaves the old
  # set as a hidden `.NAME.old-*` that the next write removes, and the new one already complete.
  old = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.old-{secrets.token_hex(6)}")
  os.rename(path, old)
  os.rename(tmp, path)
  shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str):
  """Yields an empty hidden folder beside `path`; on success it replaces `path`, else it is removed
  and `path` is left as it was."""
  path = os.path.abspath(path)
  parent = os.path.dirname(path)
  os.makedirs(parent, exist_ok=True)
  _remove_leftovers(path)
  # os.mkdir, not tempfile.mkdtemp: mkdtemp makes the folder 0700, and the support set is for
  # sharing, so it gets the user's usual permissions (umask) like any folder they make.
  tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{secrets.token_hex(6)}")
  os.mkdir(tmp)
  try:
    yield tmp
    replace_dir(tmp, path)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
