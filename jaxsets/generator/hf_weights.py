"""Stable Diffusion weight files -> Flax parameter trees, one tensor at a time.

Which files hold a component's weights (Flax msgpack, PyTorch safetensors, sharded or not, with a
`variant` such as "fp16", or pickled `.bin`), reading them lazily, and renaming/transposing
PyTorch tensors into the Flax tree whose shapes `jax.eval_shape` gives. Nothing here builds or
initialises a model: each tensor is read, cast to the target dtype, put on the device and its
source dropped, so loading holds the loaded parameters plus about one tensor in flight.
diffusers' and transformers' converters need an initialised model to learn the shapes (a full
random init: 47 s for SD 2.1's UNet on 2 cores); the renaming rules below are theirs.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import re
import struct
import threading
from typing import Iterator

import jax
import ml_dtypes
import numpy as np
from flax import serialization, traverse_util

from jaxsets.errors import UserError

COMPONENTS = ("text_encoder", "unet", "vae")
FLAX_FILES = {"text_encoder": "flax_model.msgpack", "unet": "diffusion_flax_model.msgpack",
              "vae": "diffusion_flax_model.msgpack"}
# (safetensors stem, .bin stem) of each component's PyTorch weights, as the hub names them.
_PT_STEMS = {"text_encoder": ("model", "pytorch_model"),
             "unet": ("diffusion_pytorch_model", "diffusion_pytorch_model"),
             "vae": ("diffusion_pytorch_model", "diffusion_pytorch_model")}
# Buffers some PyTorch checkpoints carry that are not parameters (older CLIPTextModel saves).
_BUFFERS = ("position_ids", "num_batches_tracked")
_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
                       "BF16": ml_dtypes.bfloat16, "I64": np.int64, "I32": np.int32,
                       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


# ----------------------------------------------------------------------------- which file
def weight_file_names(kind: str, variant: str = "") -> tuple[str, ...]:
  """The files that can hold `kind`'s weights, most preferred first.

  Without a variant Flax msgpack comes first (no conversion); a variant ("fp16") names PyTorch
  files only, as the hub's variants are (`diffusion_pytorch_model.fp16.safetensors`).
  """
  infix = f".{variant}" if variant else ""
  st, pt = _PT_STEMS[kind]
  flax = () if variant else (FLAX_FILES[kind],)
  return flax + (f"{st}{infix}.safetensors", f"{st}{infix}.safetensors.index.json",
                 f"{pt}{infix}.bin", f"{pt}{infix}.bin.index.json")


def hub_patterns(kind: str, variant: str = "") -> list[list[str]]:
  """snapshot_download allow_patterns for `kind`'s weights, one list per kind of file, in the order
  of `weight_file_names` (a sharded checkpoint's shards are `<stem><infix>-00001-of-00002.*`)."""
  infix = f".{variant}" if variant else ""
  st, pt = _PT_STEMS[kind]
  stages = [] if variant else [[f"{kind}/{FLAX_FILES[kind]}"]]
  stages.append([f"{kind}/{st}{infix}.safetensors", f"{kind}/{st}{infix}.safetensors.index.json",
                 f"{kind}/{st}{infix}-*.safetensors"])
  stages.append([f"{kind}/{pt}{infix}.bin", f"{kind}/{pt}{infix}.bin.index.json",
                 f"{kind}/{pt}{infix}-*.bin"])
  return stages


def find_weight_file(folder: str, kind: str, variant: str = "") -> str:
  """The preferred weights file of `folder/kind`, or a UserError naming the files expected."""
  names = weight_file_names(kind, variant)
  for name in names:
    path = os.path.join(folder, kind, name)
    if os.path.isfile(path):
      return path
  sub = os.path.join(folder, kind)
  present = sorted(f for f in (os.listdir(sub) if os.path.isdir(sub) else [])
                   if f.endswith((".safetensors", ".bin", ".msgpack")))
  hint = (f" It has {', '.join(present)}: a variant such as 'fp16' is named by the infix "
          "(variant / generator.variant)." if present else "")
  raise UserError(f"no weights in {sub}: expected one of {', '.join(names)}"
                  f"{f' (variant {variant!r})' if variant else ''}.{hint} Copy the component's "
                  f"weights there (e.g. `huggingface-cli download MODEL --include '{kind}/*'`), "
                  "or re-save the model with save_pretrained.")


# ----------------------------------------------------------------------------- reading
def file_bytes(path: str) -> int:
  """The size of a weights file, or of all the shards a sharded checkpoint's index.json names."""
  return sum(map(os.path.getsize, _shards(path))) if path.endswith(".index.json") \
      else os.path.getsize(path)


def _shards(index_path: str) -> list[str]:
  """The shard files an index.json names, each once, in first-mention order; a UserError naming
  any that is missing."""
  with open(index_path) as f:
    weight_map = json.load(f)["weight_map"]
  shards = [os.path.join(os.path.dirname(index_path), name)
            for name in dict.fromkeys(weight_map.values())]
  missing = [os.path.basename(p) for p in shards if not os.path.isfile(p)]
  if missing:
    raise UserError(f"{index_path} names shards that are not there: {', '.join(missing[:3])}. "
                    "Download the component's weights again (all its shards).")
  return shards


def read_tensors(path: str) -> Iterator[tuple[str, np.ndarray]]:
  """(PyTorch name, tensor) for every tensor in a safetensors / .bin file or a sharded checkpoint's
  index.json: a safetensors tensor as a `StoredTensor`, read when it is copied; a .bin tensor as a
  numpy array, memory-mapped where torch can."""
  if path.endswith(".index.json"):
    for shard in _shards(path):
      yield from read_tensors(shard)
  elif path.endswith(".safetensors"):
    yield from _read_safetensors(path)
  elif path.endswith(".bin"):
    yield from _read_torch_pickle(path)
  else:
    raise UserError(f"{path}: not a weights format jaxsets reads (.safetensors, .bin, .msgpack).")


def _read_safetensors(path: str) -> Iterator[tuple[str, "StoredTensor"]]:
  """safetensors' layout: u64 header length, JSON header {name: dtype, shape, data_offsets}, data.
  Yields each tensor as a `StoredTensor`, whose bytes are read only when it is copied into its
  parameter (`_copy_stored`)."""
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    try:
      (length,) = struct.unpack("<Q", f.read(8))
      header = json.loads(f.read(length))
    except (struct.error, ValueError, UnicodeDecodeError) as e:
      raise UserError(f"{path} is not a valid safetensors file ({e}); download it again.") from e
  header.pop("__metadata__", None)
  for name, info in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
    if info["dtype"] not in _SAFETENSORS_DTYPES:
      raise UserError(f"{path}: tensor {name} has dtype {info['dtype']}, which jaxsets does not "
                      f"read ({', '.join(_SAFETENSORS_DTYPES)}); convert the file to float32/16.")
    dtype, shape = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]), tuple(info["shape"])
    start, end = info["data_offsets"]
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if end - start != nbytes or 8 + length + end > size:
      raise UserError(f"{path} is truncated or corrupt (tensor {name}); download it again.")
    yield name, StoredTensor(path, 8 + length + start, dtype, shape, tuple(range(len(shape))))


@dataclasses.dataclass(frozen=True)
class StoredTensor:
  """A tensor in a safetensors file, not yet read: where its bytes start, its dtype and stored
  shape, and the axis order it is to be copied in. The PyTorch -> Flax transposes of `_flax_key`
  are recorded here (`.T`, `.transpose`) and done while copying."""
  path: str
  offset: int
  dtype: np.dtype
  stored_shape: tuple[int, ...]
  axes: tuple[int, ...]

  @property
  def shape(self) -> tuple[int, ...]:
    return tuple(self.stored_shape[a] for a in self.axes)

  @property
  def ndim(self) -> int:
    return len(self.stored_shape)

  @property
  def T(self) -> "StoredTensor":
    return self.transpose(*reversed(range(self.ndim)))

  @property
  def nbytes(self) -> int:
    return int(np.prod(self.stored_shape, dtype=np.int64)) * self.dtype.itemsize

  def transpose(self, *axes: int) -> "StoredTensor":
    return dataclasses.replace(self, axes=tuple(self.axes[a] for a in axes))


def _copy_stored(source: StoredTensor, out: np.ndarray) -> None:
  """Reads `source` into `out` (C order, the source's shape after its transpose, maybe another
  dtype). The file is read with pread, not mapped: a map's pages are faulted in one by one and
  count as the process's memory while mapped (pread loaded SD 2.1-base faster in every A/B run,
  studies/issue16). Bytes that need no change go straight into `out`; the rest pass through a
  small per-thread buffer, in runs of the source's leading rows, which a transpose makes `out`'s
  slabs along one axis."""
  stored = source.stored_shape or (1,)
  axes = source.axes or (0,)
  target = out.reshape(stored) if not source.stored_shape else out
  identity = axes == tuple(range(len(axes)))
  with open(source.path, "rb", buffering=0) as f:
    if identity and out.dtype == source.dtype:
      _pread(f, source.offset, target.reshape(-1).view(np.uint8))
      return
    row_bytes = int(np.prod(stored[1:], dtype=np.int64)) * source.dtype.itemsize
    rows = _SLAB if not identity else max(1, _CHUNK_BYTES // max(row_bytes, 1))
    row_axis = axes.index(0)  # where the source's rows land in `out`
    for first in range(0, stored[0], rows):
      count = min(rows, stored[0] - first)
      chunk = _scratch(count * row_bytes)
      _pread(f, source.offset + first * row_bytes, chunk)
      index = [slice(None)] * len(axes)
      index[row_axis] = slice(first, first + count)
      target[tuple(index)] = chunk.view(source.dtype).reshape((count,) + stored[1:]).transpose(axes)


def _pread(f, offset: int, buffer: np.ndarray) -> None:
  """Fills the uint8 array `buffer` from the open file `f` at `offset` (os.preadv releases the
  GIL)."""
  view, done = memoryview(buffer), 0
  while done < len(view):
    n = os.preadv(f.fileno(), [view[done:]], offset + done)
    if n == 0:
      raise UserError(f"{f.name} ended at byte {offset + done} while loading: it changed or was "
                      "truncated since its header was read; download it again.")
    done += n


_scratch_buffers = threading.local()


def _scratch(nbytes: int) -> np.ndarray:
  """This thread's reusable uint8 buffer, at least `nbytes` (reused, so its pages are touched once;
  it grows as needed, at most to the largest run read)."""
  buffer = getattr(_scratch_buffers, "buffer", None)
  if buffer is None or buffer.size < nbytes:
    buffer = _scratch_buffers.buffer = aligned_empty((nbytes,), np.uint8)
  return buffer[:nbytes]


def _read_torch_pickle(path: str) -> Iterator[tuple[str, np.ndarray]]:
  try:
    import torch
  except ImportError as e:
    raise UserError(f"{path} is a pickled PyTorch checkpoint (.bin), which needs PyTorch to read: "
                    "`pip install torch` (the CPU build is enough), or convert it to safetensors "
                    "once where torch is installed (`safetensors.torch.save_file`).") from e
  try:  # memory-mapped, so only the tensor being converted is read in
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
  except RuntimeError:  # the legacy (pre-zip) format cannot be mapped
    state = torch.load(path, map_location="cpu", weights_only=True)
  for name in list(state):
    tensor = state.pop(name)
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the same bits
      yield name, tensor.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    else:
      yield name, tensor.numpy()


# ----------------------------------------------------------------------------- converting
def load_params(path: str, kind: str, shapes, dtype, on_read=None) -> dict:
  """`kind`'s parameters from `path`, as the Flax tree `shapes` describes (a tree of
  ShapeDtypeStructs from jax.eval_shape), floating leaves in `dtype`, on the default device.
  `on_read(nbytes)`, if given, is called in this thread as each tensor's bytes are placed."""
  target = traverse_util.flatten_dict(shapes)
  if path.endswith(".msgpack"):
    with open(path, "rb") as f:
      restored = serialization.msgpack_restore(f.read())
    tensors = ((key, value) for key, value in traverse_util.flatten_dict(restored).items())
  else:
    # diffusers names list entries `down_blocks_0` in Flax, `down_blocks.0` in PyTorch;
    # transformers keeps `layers/0`.
    indexed = kind != "text_encoder"
    tensors = (_flax_key(name, array, target, indexed) for name, array in read_tensors(path)
               if not name.endswith(_BUFFERS))
  flat, unexpected, wrong = {}, [], {}
  on_read = on_read or (lambda nbytes: None)
  # This thread reads headers and renames; the pool reads and copies (both release the GIL). At
  # most _IN_FLIGHT tensors wait, which bounds the memory held beyond the parameters.
  with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
    pending = collections.deque()
    for key, array in tensors:
      if key not in target:
        unexpected.append("/".join(key))
      elif tuple(array.shape) != tuple(target[key].shape):
        wrong[key] = (f"shape of {'/'.join(key)}: config says {tuple(target[key].shape)}, weights "
                      f"have {tuple(array.shape)}")
      else:
        pending.append((key, array.nbytes, pool.submit(_to_device, array, dtype)))
      del array
      while len(pending) > _IN_FLIGHT or pending and pending[0][2].done():
        done_key, nbytes, future = pending.popleft()
        flat[done_key] = future.result()
        on_read(nbytes)
    for done_key, nbytes, future in pending:
      flat[done_key] = future.result()
      on_read(nbytes)
  missing = sorted("/".join(k) for k in set(target) - set(flat) - set(wrong))
  if missing or unexpected or wrong:
    detail = "; ".join(filter(None, [f"missing {missing[:3]}" if missing else "",
                                     f"unexpected {sorted(unexpected)[:3]}" if unexpected else "",
                                     next(iter(wrong.values()), "")]))
    raise UserError(f"{kind} weights do not match {kind}/config.json ({detail}). The folder's weights "
                    "and configs come from different models; re-download or re-save the model.")
  return traverse_util.unflatten_dict(flat)


def _to_device(array, dtype) -> jax.Array:
  """`array` (a `StoredTensor`, or a numpy array, often a transposed view) copied into a C-ordered
  device array, floating leaves in `dtype`. The copy goes into a 64-byte-aligned host buffer,
  which the CPU backend takes without a second copy. A transposed array is copied in slabs of its
  last axis (the source's rows): numpy's plain `a.T` copy strides through memory and ran 5x slower
  on a [4096, 1024] kernel. Reads, copies and casts release the GIL, so several run at once on a
  pool."""
  floating = np.issubdtype(array.dtype, np.floating) or array.dtype == ml_dtypes.bfloat16
  target = np.dtype(dtype) if floating else array.dtype
  out = aligned_empty(array.shape, target)
  if isinstance(array, StoredTensor):
    _copy_stored(array, out)
  elif array.flags.c_contiguous or array.ndim < 2:
    out[...] = array
  else:
    for start in range(0, array.shape[-1], _SLAB):
      out[..., start:start + _SLAB] = array[..., start:start + _SLAB]
  return jax.device_put(out)


_ALIGN = 64  # bytes: the alignment at which XLA's CPU client aliases a numpy buffer
_SLAB = 16   # columns per copy when transposing (fastest of 8..64 on a 2-core CPU)
_CHUNK_BYTES = 4 << 20  # per read through the scratch buffer when nothing is transposed
_WORKERS, _IN_FLIGHT = 2, 4


def aligned_empty(shape, dtype) -> np.ndarray:
  dtype = np.dtype(dtype)
  nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  raw = np.empty(nbytes + _ALIGN, np.uint8)
  offset = -raw.ctypes.data % _ALIGN
  return raw[offset:offset + nbytes].view(dtype).reshape(shape)


_INDEXED = re.compile(r"(\w+)\.(\d+)(?=\.|$)")
_ATTENTION_RENAMES = {"to_out_0": "proj_attn", "to_k": "key", "to_v": "value", "to_q": "query"}


def _flax_key(name: str, array: np.ndarray, target: dict, indexed: bool):
  """(Flax key, array in Flax layout) for one PyTorch tensor, choosing among the renamings by
  which key the target tree has (the rules of diffusers' and transformers' converters)."""
  if indexed:
    name = _INDEXED.sub(r"\1_\2", name)
  key = tuple(name.split("."))
  parent, leaf = key[:-1], key[-1]
  # diffusers' VAE keeps the old attention names in Flax (query/key/value/proj_attn).
  if len(key) > 1 and parent[-1] in _ATTENTION_RENAMES:
    renamed = parent[:-1] + (_ATTENTION_RENAMES[parent[-1]], "kernel" if leaf == "weight" else leaf)
    if renamed in target:
      return renamed, array.T if leaf == "weight" else array
  if leaf in ("weight", "gamma") and parent + ("scale",) in target:  # layer / group norm
    return parent + ("scale",), array
  if leaf == "weight" and parent + ("embedding",) in target:
    return parent + ("embedding",), array
  if leaf == "weight" and array.ndim == 4:  # conv OIHW -> HWIO
    return parent + ("kernel",), array.transpose(2, 3, 1, 0)
  if leaf == "weight":  # linear [out, in] -> [in, out]
    return parent + ("kernel",), array.T
  if leaf == "beta":  # old PyTorch layer norm bias
    return parent + ("bias",), array
  return key, array
