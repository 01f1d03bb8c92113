"""The actor-critic of the prompt agent (Flax linen) and its pure entry points.

Observation: float32 [..., obs_dim] (any leading batch dims, e.g. [E, obs_dim] for E parallel
environments). Action: int32 [..., 4] = (domain, c1, c2, c3).

Separate actor and critic MLP torsos (tanh), orthogonal init as in common PPO practice (hidden
layers gain sqrt(2), policy heads 0.01 so the initial policy is near uniform, value head 1.0),
zero biases. Heads: domain (|D| logits) and one per class slot (n logits each). When
`autoregressive`, slot k sees the actor features plus learned embeddings of the domain and of
slots < k, through one tanh layer of its own: sampling then runs head by head, and log_prob of a
given action uses teacher forcing (the same conditionals), so both agree exactly.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state

from jaxsets.agent import distributions
from jaxsets.agent.class_scorer import SharedClassScorer
from jaxsets.agent.config import ObservationConfig, PPOConfig
from jaxsets.agent.observation import observation_size, split_observation

_orth = nn.initializers.orthogonal
_zeros = nn.initializers.zeros


class ActorCritic(nn.Module):
  num_domains: int
  num_classes: int
  hidden_sizes: Sequence[int] = (64, 64)
  autoregressive: bool = False
  class_head: str = "per_class"        # "per_class" | "shared" (see class_scorer.py)
  observation: ObservationConfig = ObservationConfig()  # the layout "shared" reads classes from
  # PPOConfig.episode_decisions: "blend" adds the pure/mixed head (episode_level.py); kept here
  # so that whoever rolls the agent out knows which choices it makes once per episode.
  episode_decisions: tuple[str, ...] = ()
  # PPOConfig.domain_in_turn: the domain head has D + 1 logits, the last "every domain in turn"
  # (episode_level.py). A plan's domain is then always kept: its caller resolves it per step.
  domain_in_turn: bool = False

  @property
  def domain_options(self) -> int:
    """The domain head's size: the D domains, and "every domain in turn" where offered."""
    return self.num_domains + int(self.domain_in_turn)

  def setup(self):
    dense = lambda size, gain: nn.Dense(size, kernel_init=_orth(gain), bias_init=_zeros)
    self.actor_layers = [dense(h, math.sqrt(2.0)) for h in self.hidden_sizes]
    self.critic_layers = [dense(h, math.sqrt(2.0)) for h in self.hidden_sizes]
    self.value_head = dense(1, 1.0)
    self.domain_head = dense(self.domain_options, 0.01)
    if "blend" in self.episode_decisions:
      self.blend_head = dense(2, 0.01)   # [mixed, pure]
    if self.class_head == "shared":
      self.slot_heads = [SharedClassScorer(self.num_classes) for _ in range(distributions.NUM_SLOTS)]
    else:
      self.slot_heads = [dense(self.num_classes, 0.01) for _ in range(distributions.NUM_SLOTS)]
    if self.autoregressive:
      width = self.hidden_sizes[-1]
      embed_init = nn.initializers.normal(stddev=1.0)
      self.domain_embed = nn.Embed(self.num_domains, width, embedding_init=embed_init)
      # c1 and c2 condition later slots; c3 conditions nothing.
      self.slot_embeds = [nn.Embed(self.num_classes, width, embedding_init=embed_init)
                          for _ in range(distributions.NUM_SLOTS - 1)]
      self.slot_mix = [dense(width, math.sqrt(2.0)) for _ in range(distributions.NUM_SLOTS)]

  @staticmethod
  def _mlp(layers, x):
    for layer in layers:
      x = nn.tanh(layer(x))
    return x

  def features(self, obs: jax.Array) -> jax.Array:
    """Actor torso: [..., obs_dim] -> [..., hidden_sizes[-1]]."""
    return self._mlp(self.actor_layers, obs)

  def value(self, obs: jax.Array) -> jax.Array:
    """Critic: [..., obs_dim] -> float32 [...]."""
    return self.value_head(self._mlp(self.critic_layers, obs))[..., 0]

  def class_features(self, obs: jax.Array) -> jax.Array | None:
    """For the shared head: each class's own observation values [..., n, k]; else None."""
    if self.class_head != "shared":
      return None
    return split_observation(obs, self.num_classes, self.observation)[1]

  def slot_logits(self, h: jax.Array, per_class: jax.Array | None, action: jax.Array,
                  k: int) -> jax.Array:
    """Logits of class slot k (0, 1, 2) given features h [..., H], the classes' own features
    per_class [..., n, k_obs] (shared head only) and the action's domain and slots < k
    (action int32 [..., 4]; later entries are ignored) -> [..., n]."""
    z = h
    if self.autoregressive:
      z = h + self.domain_embed(action[..., 0])
      for j in range(k):
        z = z + self.slot_embeds[j](action[..., 1 + j])
      z = nn.tanh(self.slot_mix[k](z))
    if self.class_head != "shared":
      return self.slot_heads[k](z)
    # Columns j = 0, 1: is this class the one chosen for slot j (< k)? Lets c2 and c3 learn
    # "the same class as c1" (a pure image) or "a different one" (a boundary image) at once.
    classes = jnp.arange(self.num_classes)
    chosen = [(classes == action[..., 1 + j, None]) if self.autoregressive and j < k
              else jnp.zeros(per_class.shape[:-1], bool) for j in range(distributions.NUM_SLOTS - 1)]
    feats = jnp.concatenate([per_class, jnp.stack(chosen, axis=-1).astype(per_class.dtype)], -1)
    return self.slot_heads[k](z, feats)

  def __call__(self, obs: jax.Array, action: jax.Array):
    """Teacher-forced distribution of `action` and the value: (FactorisedCategorical, [...])."""
    h, per_class = self.features(obs), self.class_features(obs)
    class_logits = jnp.stack(
        [self.slot_logits(h, per_class, action, k) for k in range(distributions.NUM_SLOTS)], axis=-2)
    dist = distributions.FactorisedCategorical(self.domain_head(h), class_logits)
    return dist, self.value(obs)

  def every_head(self, obs: jax.Array, action: jax.Array):
    """__call__ and the episode-level heads: what init must trace to create every parameter
    (Flax names parameters by module path, so the others' values do not depend on it)."""
    return self(obs, action), self.plan_logits(obs)

  def plan_logits(self, obs: jax.Array):
    """The episode-level heads: [..., obs_dim] -> (domain logits [..., domain_options], blend
    logits [..., 2] = (mixed, pure), or None without a blend head)."""
    h = self.features(obs)
    return self.domain_head(h), (self.blend_head(h) if "blend" in self.episode_decisions else None)

  def _decode(self, obs: jax.Array, pick: Callable[[jax.Array, int], jax.Array],
              domain: jax.Array | None = None, pure: jax.Array | None = None):
    """Chooses the action head by head with `pick(logits, head_index)`. Where `domain` (int32
    [...]) is >= 0 that domain is kept instead of picked (an episode-level domain); where `pure`
    (bool [...]) is set, c2 and c3 are c1 (an episode-level "pure" blend). Returns the
    distribution of the conditionals actually used, the action and the value."""
    h, per_class = self.features(obs), self.class_features(obs)
    domain_logits = self.domain_head(h)
    action = jnp.zeros(h.shape[:-1] + (distributions.ACTION_SIZE,), jnp.int32)
    chosen = pick(domain_logits, 0)
    action = action.at[..., 0].set(chosen if domain is None else jnp.where(domain >= 0, domain, chosen))
    slot_logits = []
    for k in range(distributions.NUM_SLOTS):
      logits = self.slot_logits(h, per_class, action, k)
      slot_logits.append(logits)
      chosen = pick(logits, 1 + k)
      if k > 0 and pure is not None:
        chosen = jnp.where(pure, action[..., 1], chosen)
      action = action.at[..., 1 + k].set(chosen)
    dist = distributions.FactorisedCategorical(domain_logits, jnp.stack(slot_logits, axis=-2))
    return dist, action, self.value(obs)

  def sample(self, obs: jax.Array, key: jax.Array, domain: jax.Array | None = None,
             pure: jax.Array | None = None):
    """-> (action int32 [..., 4], per-head log-probs [..., 4], value [...]); domain and pure
    as in _decode (the log-probs of kept heads are those of the kept values)."""
    keys = jax.random.split(key, distributions.ACTION_SIZE)
    dist, action, value = self._decode(
        obs, lambda logits, i: distributions.sample_head(logits, keys[i]), domain, pure)
    return action, dist.head_log_probs(action), value

  def greedy(self, obs: jax.Array, domain: jax.Array | None = None,
             pure: jax.Array | None = None) -> jax.Array:
    """Head-by-head argmax (for an autoregressive policy, the greedy decode, which need not be
    the joint mode) -> int32 [..., 4]."""
    return self._decode(obs, lambda logits, i: distributions.mode_head(logits), domain, pure)[1]

  def herd(self, obs: jax.Array, mass: jax.Array, counts: jax.Array,
           domain: jax.Array | None = None, pure: jax.Array | None = None):
    """Deterministic herding over the class slots: slot k takes the class furthest behind its
    share, argmax(mass_k + p_k - counts_k), where p_k are the slot's current probabilities,
    mass_k [..., n] their sum over earlier steps and counts_k [..., n] how often each class was
    taken. Over a roll-out each class is taken about as often as the policy would sample it,
    without the noise of sampling; argmax (greedy) instead takes a near-uniform policy's
    slightly favoured class at every step. The domain is greedy, or kept as in _decode (the
    herding roll-out passes the domain episode_level.herd_plan chose for the step).
    mass, counts: [..., 3, n] -> (action int32 [..., 4], new mass [..., 3, n])."""
    def pick(logits, i):
      if i == 0:
        return distributions.mode_head(logits)
      k = i - 1
      return distributions.mode_head(mass[..., k, :] + jax.nn.softmax(logits) - counts[..., k, :])
    dist, action, _ = self._decode(obs, pick, domain, pure)
    return action, mass + jax.nn.softmax(dist.class_logits, axis=-1)


def plan_head_params(network: ActorCritic) -> frozenset[str]:
  """The top-level parameters that only the episode-level plan update trains: the domain head
  where the domain is an episode decision, and the blend head (ppo_update leaves them still)."""
  heads = {"domain": "domain_head", "blend": "blend_head"}
  # ppo_update takes any network with apply(params, obs, action) -> (dist, value) (a benchmark's
  # flat policy, say): one without episode decisions has no plan heads.
  decisions = getattr(network, "episode_decisions", ())
  return frozenset(heads[d] for d in decisions if d in heads)


def plan_update_params(network: ActorCritic, params) -> frozenset[str]:
  """What the plan update trains: the plan heads and the actor torso they read (features)."""
  return plan_head_params(network) | {name for name in params if name.startswith("actor_layers")}


class AgentState(train_state.TrainState):
  """params + Adam state + step; `network` (static) rebuilds nothing on restore: make it with
  `make_network` from the same config and pass `network=` to `AgentState.create`."""
  network: ActorCritic = struct.field(pytree_node=False, default=None)


def make_network(num_domains: int, num_classes: int, cfg: PPOConfig) -> ActorCritic:
  if num_domains < 1 or num_classes < 1:
    raise ValueError(f"the agent needs >= 1 domain and >= 1 class, got {num_domains} domains "
                     f"and {num_classes} classes.")
  return ActorCritic(num_domains=num_domains, num_classes=num_classes,
                     hidden_sizes=tuple(cfg.hidden_sizes), autoregressive=cfg.autoregressive,
                     class_head=cfg.class_head, observation=cfg.observation,
                     episode_decisions=tuple(cfg.episode_decisions),
                     domain_in_turn=bool(cfg.domain_in_turn))


def make_optimizer(cfg: PPOConfig) -> optax.GradientTransformation:
  return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm),
                     optax.adam(cfg.learning_rate, eps=1e-5))


def _no_update(updates, state, params=None):
  raise TypeError("an AgentState's tx holds only the optimiser's state layout: update the agent "
                  "with jaxsets.ppo_update (or jaxsets.agent.ppo.apply_gradients(state, grads, "
                  "cfg)), which makes the optimiser from cfg's possibly traced numbers.")


# AgentState's static fields (tx, apply_fn, network) are part of ppo_update's cache key. A tx
# made per agent, and the bound `apply` of each new network (bound methods compare by identity),
# made every new agent (another seed, a sweep point's learning rate) recompile it. So every agent
# shares one tx, the optimiser's state layout (its init does not depend on the numbers), and
# equal networks share one bound `apply`.
OPTIMIZER_LAYOUT = optax.GradientTransformation(make_optimizer(PPOConfig()).init, _no_update)


@functools.lru_cache(maxsize=None)
def _shared_apply(network: ActorCritic) -> Callable:
  return network.apply


def init_agent(key: jax.Array, obs_dim: int, num_domains: int, num_classes: int,
               cfg: PPOConfig) -> AgentState:
  """Fresh agent: params from `key`, the state of optimiser chain(clip_by_global_norm, adam)."""
  network = make_network(num_domains, num_classes, cfg)
  if cfg.class_head == "shared" and obs_dim != observation_size(num_classes, cfg.observation):
    raise ValueError(f"class_head='shared' reads each class's values from the observation, so "
                     f"obs_dim must be observation_size({num_classes}, cfg.observation) = "
                     f"{observation_size(num_classes, cfg.observation)}, got {obs_dim}.")
  params = network.init(key, jnp.zeros((obs_dim,), jnp.float32),
                        jnp.zeros((distributions.ACTION_SIZE,), jnp.int32),
                        method=ActorCritic.every_head)["params"]
  state = AgentState.create(apply_fn=_shared_apply(network), params=params, tx=OPTIMIZER_LAYOUT,
                            network=network)
  # TrainState.create leaves step a Python int, which jit sees as a weak-typed scalar: the
  # updated state (a strong int32 array) would then compile ppo_update a second time.
  return state.replace(step=jnp.zeros((), jnp.int32))


@functools.partial(jax.jit, static_argnames=("network",))
def act(params, obs: jax.Array, key: jax.Array, *, network: ActorCritic):
  """Samples an action: obs [..., obs_dim] -> (action int32 [..., 4], log_prob [...],
  value [...]). One key serves a whole batch (rows get independent draws)."""
  action, head_log_probs, value_ = network.apply({"params": params}, obs, key,
                                                 method=ActorCritic.sample)
  return action, jnp.sum(head_log_probs, axis=-1), value_


@functools.partial(jax.jit, static_argnames=("network",))
def act_in_episode(params, obs: jax.Array, key: jax.Array, domain: jax.Array, pure: jax.Array, *,
                   network: ActorCritic):
  """`act` under an episode's plan (episode_level.py): where domain int32 [...] is >= 0 it is
  kept (-1: sampled this step); where pure bool [...] is set, c2 = c3 = c1.
  -> (action int32 [..., 4], per-head log-probs [..., 4] (domain, c1, c2, c3), value [...])."""
  return network.apply({"params": params}, obs, key, domain, pure, method=ActorCritic.sample)


@functools.partial(jax.jit, static_argnames=("network",))
def greedy_action(params, obs: jax.Array, domain: jax.Array | None = None,
                  pure: jax.Array | None = None, *, network: ActorCritic) -> jax.Array:
  """The greedy roll-out's action: obs [..., obs_dim] -> int32 [..., 4] (domain and pure as
  in act_in_episode when given)."""
  return network.apply({"params": params}, obs, domain, pure, method=ActorCritic.greedy)


@functools.partial(jax.jit, static_argnames=("network",))
def herding_action(params, obs: jax.Array, mass: jax.Array, counts: jax.Array,
                   domain: jax.Array | None = None, pure: jax.Array | None = None, *,
                   network: ActorCritic):
  """The herding roll-out's action (ActorCritic.herd): obs [..., obs_dim], mass float32
  [..., 3, n], counts [..., 3, n] -> (action int32 [..., 4], new mass [..., 3, n])."""
  return network.apply({"params": params}, obs, mass, counts, domain, pure,
                       method=ActorCritic.herd)


@functools.partial(jax.jit, static_argnames=("network",))
def value(params, obs: jax.Array, *, network: ActorCritic) -> jax.Array:
  """V(obs): [..., obs_dim] -> float32 [...] (e.g. the `last_value` that ppo_update bootstraps
  from when the trajectory stops mid-episode)."""
  return network.apply({"params": params}, obs, method=ActorCritic.value)


@functools.partial(jax.jit, static_argnames=("network",))
def evaluate_actions(params, obs: jax.Array, action: jax.Array, *, network: ActorCritic):
  """(log_prob [...], entropy [...], value [...]) of given actions under the current policy."""
  dist, value = network.apply({"params": params}, obs, action)
  return dist.log_prob(action), dist.entropy(), value
