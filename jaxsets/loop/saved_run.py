"""A run's saved state read back from its workdir, which is left as it is (a run may still be
saving there): the agent alone, from config.json and the checkpoint's `agent.*` leaves, with no
data or generator loaded (for `jaxsets.load_agent`); or the whole RunState (for studies/)."""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsets.agent import AgentState, ObservationConfig, PPOConfig, init_agent, observation_size
from jaxsets.checkpoint.manager import read_latest, saved_shapes
from jaxsets.checkpoint.workdir_config import read_workdir_config
from jaxsets.errors import UserError

# RunState.agent is stored under this name; the actor's first layer takes the observation:
# its kernel is float32 [obs_dim, hidden_sizes[0]], and obs_dim gives the number of classes.
AGENT = "agent"
FIRST_LAYER = "agent.params.actor_layers_0.kernel"


def read_agent(workdir: str) -> tuple[int, AgentState, PPOConfig, dict]:
  """-> (checkpoint step, AgentState, its PPOConfig, config.json's dict) of the newest good
  checkpoint in `workdir`. The arrays are plain (uncommitted) jax arrays on the default device."""
  if not os.path.isdir(workdir):
    raise UserError(f"no folder {workdir!r}: give a run's workdir (`jaxsets run --workdir`).")
  config = read_workdir_config(workdir)
  ppo, domains = _agent_settings(workdir, config)
  shapes = saved_shapes(workdir)
  if shapes is None:
    raise _no_checkpoint(workdir)
  if FIRST_LAYER not in shapes:
    raise UserError(f"the checkpoints in {workdir!r} hold no agent this version of jaxsets "
                    f"can read (no {FIRST_LAYER}): they were written by another version.")
  obs_dim = int(shapes[FIRST_LAYER].shape[0])
  num_classes = _classes_of(obs_dim, ppo, workdir)
  agent_shapes = jax.eval_shape(
      lambda k: init_agent(k, obs_dim, len(domains), num_classes, ppo), jax.random.key(0))
  # numpy leaves: Orbax restores them to the host, and jnp.asarray leaves them uncommitted, so
  # they go wherever the caller's other arrays are (one device, or replicated over a mesh).
  template = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), agent_shapes)
  step, part, _ = read_latest(workdir, {AGENT: template})
  return step, jax.tree.map(jnp.asarray, part[AGENT]), ppo, config


def read_state(workdir: str, s, key):
  """-> (step, RunState, history) of the newest good checkpoint, for the run `s` (a RunSetup
  made from that run's config) and root key."""
  from jaxsets.loop import state as st

  template = jax.eval_shape(lambda k: st.initial_state(s, st.untrained_baseline(s, k), k), key)
  found = read_latest(workdir, template)
  if found is None:
    raise _no_checkpoint(workdir)
  return found


def _no_checkpoint(workdir: str) -> UserError:
  return UserError(f"{workdir!r} holds a run's config.json but no checkpoint yet: a run saves "
                   "its first one after its first step. Wait for it, or run `jaxsets run "
                   f"--workdir {workdir}` again to resume that run.")


def _agent_settings(workdir: str, config: dict) -> tuple[PPOConfig, tuple[str, ...]]:
  """The agent's typed config and the prompt domains from config.json's dict, or a UserError
  that says the file comes from another version of jaxsets."""
  path = os.path.join(workdir, "config.json")
  agent = config.get("agent") if isinstance(config.get("agent"), dict) else {}
  # A run saved before agent.domain_in_turn existed had no such plan: the same as False.
  agent = {"domain_in_turn": False, **agent}
  missing = [f"agent.{f.name}" for f in dataclasses.fields(PPOConfig) if f.name not in agent]
  missing += [f"agent.observation.{f.name}" for f in dataclasses.fields(ObservationConfig)
              if f.name not in (agent.get("observation") or {})]
  missing += [f"prompts.{k}" for k in ("domains", "template") if k not in config.get("prompts", {})]
  if missing:
    raise UserError(f"{path} lacks {', '.join(missing)}: it was written by another version of "
                    "jaxsets, whose agent this version cannot rebuild. Load it with that version.")
  try:
    ppo = PPOConfig.from_config(ml_collections.ConfigDict(agent))
    domains = tuple(str(d) for d in config["prompts"]["domains"])
  except (KeyError, AttributeError, TypeError, ValueError) as e:
    raise UserError(f"{path} does not describe an agent this version of jaxsets can build "
                    f"({type(e).__name__}: {e}): it was written by another version. Load it "
                    "with that version.") from e
  return ppo, domains


def _classes_of(obs_dim: int, ppo: PPOConfig, workdir: str) -> int:
  """n with observation_size(n) == obs_dim (the size grows linearly with n)."""
  one, two = (observation_size(n, ppo.observation) for n in (1, 2))
  n, rest = divmod(obs_dim - one, two - one)
  if rest or n < 0 or observation_size(n + 1, ppo.observation) != obs_dim:
    raise UserError(f"the agent in {workdir!r} sees {obs_dim} numbers, which no class count "
                    "gives with config.json's agent.observation: the checkpoints and "
                    "config.json do not belong together.")
  return n + 1
