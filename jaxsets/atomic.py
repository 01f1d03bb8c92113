"""Outputs appear whole or not at all: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path: str):
  """Yields a temporary path beside `path`; on success renames it onto `path`, else removes it."""
  folder = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
  os.close(fd)
  try:
    yield tmp
    # mkstemp makes the file private (0600); give it the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)


def write_json(path: str, payload) -> None:
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      json.dump(payload, f, indent=2)
      f.write("\n")


def check_writable_dir(folder: str, what: str = "output folder") -> None:
  """Creates `folder` if needed and proves it can be written, before any long work starts."""
  from jaxsets.errors import UserError
  try:
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
      pass
  except OSError as e:
    raise UserError(f"cannot write to the {what} {folder!r} ({e.strerror}). "
                    "Choose a folder you can write to.") from e
