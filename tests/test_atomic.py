"""Outputs are written whole or not at all."""
import json

import pytest

from jaxsets import atomic


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
  path = tmp_path / "baseline.json"
  atomic.write_json(str(path), {"a": 1})
  with pytest.raises(TypeError):
    atomic.write_json(str(path), {"a": object()})
  assert json.loads(path.read_text()) == {"a": 1}
  assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def test_unwritable_dir_is_a_clear_error(tmp_path):
  from jaxsets.errors import UserError
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(UserError, match="cannot write"):
    atomic.check_writable_dir(str(blocker / "sub"))


def test_written_files_get_ordinary_permissions(tmp_path):
  import os
  import stat
  path = tmp_path / "r.json"
  atomic.write_json(str(path), {"a": 1})
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
