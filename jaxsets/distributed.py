"""Several hosts: one jaxsets process per host, every device in one global mesh.

JAX's multi-controller runtime: each host runs the same program on the same config; a
coordinator (process 0's address) joins them, after which `jax.devices()` lists every device
of every host and a jitted stage over a mesh of them runs on all hosts at once. Each host feeds
and computes only its own devices' part of a batch; process 0 alone writes outputs.

How a process learns its place, first match wins:
  flags      --coordinator-address HOST:PORT --num-processes N --process-id I
  env vars   JAXSETS_COORDINATOR / JAX_COORDINATOR_ADDRESS, JAXSETS_NUM_PROCESSES /
             JAX_NUM_PROCESSES, JAXSETS_PROCESS_ID / JAX_PROCESS_ID
  TPU VM     (libtpu installed) jax.distributed.initialize() finds the pod slice's workers itself
Without any of these, jaxsets runs as one process. JAXSETS_DISTRIBUTED=off turns auto-detection off.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Mapping

from jaxsets.errors import UserError

ENV_VARS = {  # field -> environment variables, in order of precedence
    "coordinator": ("JAXSETS_COORDINATOR", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("JAXSETS_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("JAXSETS_PROCESS_ID", "JAX_PROCESS_ID"),
}
FLAGS = {"coordinator": "--coordinator-address", "num_processes": "--num-processes",
         "process_id": "--process-id"}


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """mode: "single" (one process, nothing to initialize), "explicit" (all three values given)
  or "auto" (a TPU VM: JAX reads the slice's workers from the TPU metadata)."""
  mode: str
  coordinator: str | None = None
  num_processes: int = 1
  process_id: int = 0


def add_arguments(parser) -> None:
  group = parser.add_argument_group("several hosts (one process per host; see docs/multihost.md)")
  group.add_argument(FLAGS["coordinator"], dest="coordinator", metavar="HOST:PORT", default=None,
                     help="address of process 0, reachable from every host")
  group.add_argument(FLAGS["num_processes"], metavar="N", default=None,
                     help="number of processes (hosts) in the run")
  group.add_argument(FLAGS["process_id"], metavar="I", default=None,
                     help="this process's index, 0 .. N-1 (0 writes the outputs)")


def _lookup(field: str, flags: Mapping, environ: Mapping) -> tuple[str | None, str]:
  """(raw value, where it came from) for one field: the flag, else the first env var set."""
  value = flags.get(field)
  if value not in (None, ""):
    return str(value), FLAGS[field]
  for name in ENV_VARS[field]:
    if environ.get(name, "") != "":
      return environ[name], name
  return None, ""


def _int(text: str, source: str) -> int:
  try:
    return int(text.strip())
  except ValueError:
    raise UserError(f"{source}={text!r} is not a whole number.") from None


def check_address(text: str, source: str) -> str:
  """HOST:PORT with a port in 1..65535 (IPv6 hosts in brackets: [::1]:1234)."""
  host, sep, port = text.strip().rpartition(":")
  if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise UserError(f"{source}={text!r} is not HOST:PORT (for example 10.0.0.2:8476): give "
                    "process 0's address and a free port that every host can reach.")
  if host.startswith("[") != host.endswith("]"):
    raise UserError(f"{source}={text!r}: an IPv6 host goes in brackets, e.g. [::1]:8476.")
  return text.strip()


def parse(flags: Mapping, environ: Mapping | None = None, *, tpu: bool | None = None
          ) -> DistributedConfig:
  """Where this process stands, from flags (argparse values) and environment variables.

  Pure apart from the default `environ` and the TPU probe; raises UserError naming the input.
  """
  environ = os.environ if environ is None else environ
  found = {f: _lookup(f, flags, environ) for f in FLAGS}
  given = [f for f, (v, _) in found.items() if v is not None]
  if not given:
    if tpu is None:
      tpu = environ.get("JAXSETS_DISTRIBUTED", "").lower() != "off" and _on_tpu_vm()
    return DistributedConfig("auto" if tpu else "single")
  missing = [f for f in FLAGS if f not in given]
  if missing:
    have = ", ".join(f"{found[f][1]}={found[f][0]}" for f in given)
    need = ", ".join(f"{FLAGS[f]} (or {ENV_VARS[f][0]})" for f in missing)
    raise UserError(f"several hosts need all three of coordinator, process count and process "
                    f"id; got {have} but not {need}.")
  n = _int(*found["num_processes"])
  i = _int(*found["process_id"])
  if n < 1:
    raise UserError(f"{found['num_processes'][1]}={n}: the process count must be at least 1.")
  if not 0 <= i < n:
    raise UserError(f"{found['process_id'][1]}={i}: the process id must lie in 0..{n - 1} "
                    f"for {n} process(es).")
  address = check_address(*found["coordinator"])
  return DistributedConfig("explicit", address, n, i)


def _on_tpu_vm() -> bool:
  # libtpu is what makes a machine a TPU VM for JAX; without it there is no pod to join.
  return importlib.util.find_spec("libtpu") is not None


def initialize(cfg: DistributedConfig) -> None:
  """Joins the other processes. Must run before anything touches a JAX device."""
  if cfg.mode == "single" or (cfg.mode == "explicit" and cfg.num_processes == 1):
    return
  import jax
  if cfg.mode == "auto":
    jax.distributed.initialize()  # the TPU metadata names the workers and this one's index
    return
  # CPU hosts (and this machine's tests) need a collectives library for cross-process
  # all-reduces; gloo ships with jaxlib. Accelerators bring their own and ignore this.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(coordinator_address=cfg.coordinator,
                               num_processes=cfg.num_processes, process_id=cfg.process_id)
  except Exception as e:  # the runtime's own errors are long and start deep in C++
    first = (str(e).strip().splitlines() or [""])[0][:300]
    raise UserError(f"process {cfg.process_id} of {cfg.num_processes} could not join the "
                    f"coordinator at {cfg.coordinator} ({type(e).__name__}: {first}). Start every "
                    "process with the same address and count, each with its own id.") from e


def is_writer() -> bool:
  """Whether this process writes outputs (process 0; the only one without several hosts)."""
  import jax
  return jax.process_index() == 0
