"""Episode-level decisions (agent/episode_level.py) and the herding roll-out (ActorCritic.herd)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsets.agent import (ActorCritic, Plan, PlanHerd, PPOConfig, act_in_episode, greedy_plan,
                           herd_plan, start_plan_herd,
                           group_advantage, herding_action, init_agent, observation_size,
                           plan_update, sample_plan, step_plan)
from jaxsets.agent.acting import act_for_step
from jaxsets.agent.rollout import empty_memory, rollout_action
from jaxsets.agent import ObservationConfig
from jaxsets.agent.ppo import Minibatch, Transition, ppo_loss, ppo_update

NUM_DOMAINS, NUM_CLASSES = 4, 5
OBS = ObservationConfig()
OBS_DIM = observation_size(NUM_CLASSES, OBS)


def _agent(decisions=("domain", "blend"), seed=0, **kw):
  cfg = PPOConfig(hidden_sizes=(16,), autoregressive=True, class_head="shared",
                  episode_decisions=decisions, learning_rate=3e-3, ent_coef=0.0, **kw)
  return init_agent(jax.random.key(seed), OBS_DIM, NUM_DOMAINS, NUM_CLASSES, cfg), cfg


def _domain_log_probs(state, obs, head=0):
  logits = state.apply_fn({"params": state.params}, obs, method=ActorCritic.plan_logits)[head]
  return np.asarray(jax.nn.log_softmax(logits))


def test_group_advantage_by_hand():
  np.testing.assert_allclose(group_advantage(jnp.array([0.0, 1.0])), [-1.0, 1.0], atol=1e-6)
  # mean 2.5, population std sqrt(1.25)
  np.testing.assert_allclose(group_advantage(jnp.array([1.0, 2.0, 3.0, 4.0])),
                             np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(1.25), atol=1e-6)
  np.testing.assert_array_equal(group_advantage(jnp.full((4,), 0.3)), np.zeros(4))


def test_a_plan_is_kept_and_its_log_prob_is_its_heads():
  state, cfg = _agent()
  obs = jnp.full((64, OBS_DIM), 0.5)
  plan, plan_log_prob = sample_plan(state, obs, jax.random.key(2))
  assert len(np.unique(np.asarray(plan.domain))) == NUM_DOMAINS   # near-uniform initial policy
  assert 0 < int(np.sum(plan.pure)) < 64
  expected = (_domain_log_probs(state, obs)[np.arange(64), np.asarray(plan.domain)]
              + _domain_log_probs(state, obs, head=1)[np.arange(64), np.asarray(plan.pure, int)])
  np.testing.assert_allclose(plan_log_prob, expected, rtol=1e-5, atol=1e-6)
  action, head_lp, _ = act_in_episode(state.params, obs, jax.random.key(3), plan.domain, plan.pure,
                                      network=state.network)
  np.testing.assert_array_equal(action[:, 0], plan.domain)
  pure = np.asarray(plan.pure)
  np.testing.assert_array_equal(action[pure, 2], action[pure, 1])
  np.testing.assert_array_equal(action[pure, 3], action[pure, 1])
  assert np.any(np.asarray(action[~pure, 2]) != np.asarray(action[~pure, 1]))
  assert head_lp.shape == (64, 4)
  # Without episode-level decisions, -1 / False keep nothing: every domain is drawn per row.
  free, _, _ = act_in_episode(state.params, obs, jax.random.key(3), -jnp.ones((64,), jnp.int32),
                              jnp.zeros((64,), bool), network=state.network)
  assert len(np.unique(np.asarray(free[:, 0]))) == NUM_DOMAINS
  greedy = greedy_plan(state, obs[:1])
  assert int(greedy.domain[0]) == int(np.argmax(_domain_log_probs(state, obs[:1])[0]))


def test_plan_update_moves_probability_to_the_better_episodes():
  state, cfg = _agent(decisions=("domain",))
  obs = jnp.full((4, OBS_DIM), 0.5)
  plan = Plan(jnp.array([0, 1, 2, 3], jnp.int32), jnp.zeros((4,), bool))
  before = _domain_log_probs(state, obs)[0]
  old = jnp.asarray(before[np.asarray(plan.domain)])
  state, metrics = plan_update(state, obs, plan, old, jnp.array([0.0, 0.01, 0.03, 0.0]), cfg=cfg)
  after = _domain_log_probs(state, obs)[0]
  # Advantages (0.0, 0.01, 0.03, 0.0) - 0.01 = (-1, 0, 2, -1) / std: the best rises, the two
  # below the group's mean fall (domain 1 is at the mean and may move either way).
  assert after[2] > before[2]
  assert after[0] < before[0] and after[3] < before[3]
  assert np.isfinite(metrics["policy_loss"]) and float(metrics["return_spread"]) == pytest.approx(0.03)


def test_a_new_clip_or_entropy_weight_reuses_the_compiled_plan_update():
  state, cfg = _agent(decisions=("domain",))
  obs = jnp.full((4, OBS_DIM), 0.5)
  plan = Plan(jnp.array([0, 1, 2, 3], jnp.int32), jnp.zeros((4,), bool))
  old = jnp.asarray(_domain_log_probs(state, obs)[0][np.asarray(plan.domain)])
  returns = jnp.array([0.0, 0.01, 0.03, 0.0])
  first, _ = plan_update(state, obs, plan, old, returns, cfg=cfg)
  size = plan_update._cache_size()
  new, _ = plan_update(state, obs, plan, old, returns,
                       cfg=cfg.replace(clip_eps=0.05, ent_coef=0.5, learning_rate=1e-2))
  assert plan_update._cache_size() == size
  assert not np.array_equal(first.params["domain_head"]["kernel"],
                            new.params["domain_head"]["kernel"])


def test_the_per_step_loss_leaves_kept_heads_out():
  """A head kept from the plan (head_mask 0) gets no gradient from the per-step PPO loss."""
  state, cfg = _agent()
  obs = jnp.full((8, OBS_DIM), 0.5)
  plan, _ = sample_plan(state, obs, jax.random.key(2))
  action, head_lp, value = act_in_episode(state.params, obs, jax.random.key(0), plan.domain,
                                          plan.pure, network=state.network)
  mask = jnp.tile(jnp.array([0.0, 1.0, 1.0, 1.0]), (8, 1))
  batch = Minibatch(obs, action, jnp.sum(head_lp * mask, -1), value,
                    jnp.linspace(-1.0, 1.0, 8), value + 0.1, mask)
  grad = lambda b: jax.grad(lambda p: ppo_loss(p, state.apply_fn, b, cfg=cfg)[0])(state.params)
  assert not np.any(np.asarray(grad(batch)["domain_head"]["kernel"]))
  batch = batch._replace(log_prob=jnp.sum(head_lp, -1), head_mask=None)
  assert np.any(np.asarray(grad(batch)["domain_head"]["kernel"]))


def test_each_update_moves_only_its_own_heads_though_they_share_adam():
  """The per-step update and the plan update share one Adam state. Adam moves a parameter whose
  gradient is zero along its momentum, so per-step updates after a plan update used to carry
  the plan heads on (KL 0.08 against the plan update's own 0.025, in a run's shapes): each
  update now moves only what its loss trains."""
  state, cfg = _agent()
  T, E = 4, 4
  obs = jnp.full((E, OBS_DIM), 0.5)
  plan = Plan(jnp.array([0, 1, 2, 3], jnp.int32), jnp.array([True, True, False, False]))
  old = jnp.asarray(_domain_log_probs(state, obs)[0][np.asarray(plan.domain)]
                    + _domain_log_probs(state, obs, head=1)[0][np.asarray(plan.pure, int)])
  planned, _ = plan_update(state, obs, plan, old, jnp.array([0.0, 0.01, 0.03, 0.0]), cfg=cfg)
  moved = lambda a, b, name: any(not np.array_equal(x, y) for x, y in zip(
      jax.tree.leaves(a.params[name]), jax.tree.leaves(b.params[name])))
  assert moved(state, planned, "domain_head") and moved(state, planned, "blend_head")
  assert not moved(state, planned, "value_head") and not moved(state, planned, "slot_heads_0")

  step_obs = jax.random.uniform(jax.random.key(5), (T, E, OBS_DIM))
  action, head_lp, value = jax.vmap(lambda o, k: act_in_episode(
      planned.params, o, k, plan.domain, plan.pure, network=planned.network))(
          step_obs, jax.random.split(jax.random.key(6), T))
  mask = jnp.broadcast_to(jnp.array([0.0, 1.0, 0.0, 0.0]), (T, E, 4))  # domain, c2, c3 kept
  traj = Transition(step_obs, action, jax.random.normal(jax.random.key(7), (T, E)),
                    jnp.zeros((T, E), bool), value, jnp.sum(head_lp * mask, -1), head_mask=mask)
  stepped, _ = ppo_update(planned, traj, jnp.zeros((E,)), jax.random.key(8), cfg=cfg)
  assert moved(planned, stepped, "value_head") and moved(planned, stepped, "slot_heads_0")
  assert not moved(planned, stepped, "domain_head") and not moved(planned, stepped, "blend_head")
  # The next plan update, with the per-step heads' momentum now non-zero, leaves them still.
  replanned, _ = plan_update(stepped, obs, plan, old, jnp.array([0.02, 0.0, 0.0, 0.01]), cfg=cfg)
  assert not moved(stepped, replanned, "value_head") and not moved(stepped, replanned, "slot_heads_0")
  assert moved(stepped, replanned, "actor_layers_0")  # the torso the plan heads read is trained


@pytest.mark.parametrize("head, best, p_learned", [(0, 1, 0.5), (1, 1, 0.75)])
def test_an_episode_level_choice_is_learned_in_a_few_episodes(head, best, p_learned):
  """A bandit over the episode's plan: episodes whose domain is 1 (head 0, 4 domains), or that
  are pure (head 1), return 0.02 more, with noise of sd 0.006 (the embedded default's per-set
  validation noise). With 4 environments per episode the better choice passes p_learned
  (uniform: 0.25 and 0.5) within 12 episodes: measured for seeds 0-5 when this was written,
  after 6-12 episodes for the domain and 5-6 for the blend."""
  state, cfg = _agent(epochs=4)
  obs = jnp.full((4, OBS_DIM), 0.5)
  key = jax.random.key(7)
  p_best = []
  for episode in range(12):
    key, k_plan, k_noise = jax.random.split(key, 3)
    plan, log_prob = sample_plan(state, obs, k_plan)
    chosen = plan.domain if head == 0 else plan.pure.astype(jnp.int32)
    ret = 0.02 * (chosen == best) + 0.006 * jax.random.normal(k_noise, (4,))
    state, _ = plan_update(state, obs, plan, log_prob, ret, cfg=cfg)
    p_best.append(float(np.exp(_domain_log_probs(state, obs, head)[0][best])))
    if p_best[-1] > p_learned:
      break
  assert p_best[-1] > p_learned, np.round(p_best, 2)


def _herd(state, steps):
  obs = jnp.full((1, OBS_DIM), 0.5)
  mass = jnp.zeros((1, 3, NUM_CLASSES))
  counts = jnp.zeros((1, 3, NUM_CLASSES), jnp.int32)
  chosen = []
  for _ in range(steps):
    action, mass = herding_action(state.params, obs, mass, counts, network=state.network)
    counts = counts + jax.nn.one_hot(action[:, 1:], NUM_CLASSES, dtype=jnp.int32)
    chosen.append(np.asarray(action[0]))
  return np.stack(chosen), np.asarray(counts[0])


def test_herding_from_a_near_uniform_policy_is_balanced():
  """The untrained policy is nearly uniform: greedy takes one class every step, herding each
  class once per round of n steps."""
  state, _ = _agent()
  actions, counts = _herd(state, 4 * NUM_CLASSES)
  np.testing.assert_array_equal(counts[0], np.full(NUM_CLASSES, 4))
  for k in range(3):
    assert counts[k].max() - counts[k].min() <= 1
  assert len(set(actions[:, 0])) == 1   # the domain stays greedy


def test_herding_follows_a_skewed_policy():
  """A policy far from uniform over c1 (its scorer's output scaled up, one class's accuracy
  feature set apart): herding takes each class as often as the policy's summed probability
  says, within one step, instead of the favourite at every step."""
  state, _ = _agent()
  params = jax.tree.map(lambda x: x, state.params)
  scorer = params["slot_heads_0"]["score"]
  params["slot_heads_0"]["score"] = {**scorer, "kernel": scorer["kernel"] * 3000.0}
  obs = np.full((1, OBS_DIM), 0.5, np.float32)
  obs[0, 1 + 3] = 3.0
  obs = jnp.asarray(obs)
  mass = jnp.zeros((1, 3, NUM_CLASSES))
  counts = jnp.zeros((1, 3, NUM_CLASSES), jnp.int32)
  for _ in range(30):
    action, mass = herding_action(params, obs, mass, counts, network=state.network)
    counts = counts + jax.nn.one_hot(action[:, 1:], NUM_CLASSES, dtype=jnp.int32)
  share = np.asarray(mass[0, 0]) / 30
  assert share.max() > 1.4 * share.min(), share   # the policy is skewed
  assert len(np.unique(np.asarray(counts[0, 0]))) > 1
  np.testing.assert_array_less(np.abs(np.asarray(counts[0, 0]) - np.asarray(mass[0, 0])), 1.0 + 1e-5)


def test_herd_plan_by_hand():
  """Shares p(domain) = (0.5, 0.25, 0.25, 0) and p(pure) = 0.75 over 8 steps: the domains lead
  4, 2, 2 and 0 steps and 6 steps are pure, in the order argmax(deficit + p) gives (first index
  on ties), worked out by hand."""
  _, cfg = _agent()
  probs = jnp.array([[0.5, 0.25, 0.25, 0.0, 0.25, 0.75]])
  herd = PlanHerd(probs, jnp.zeros_like(probs))
  domains, pures = [], []
  for _ in range(8):
    plan, herd = herd_plan(herd, decisions=cfg.episode_decisions)
    domains.append(int(plan.domain[0]))
    pures.append(bool(plan.pure[0]))
  # deficits (domain): +.5 -> pick 0 (-.5); 0,.5,.5 -> 1; then 2; then 0; and again.
  assert domains == [0, 1, 2, 0, 0, 1, 2, 0]
  # blend deficits (mixed, pure): (.25,.75) pure; (.5,.5) mixed; (-.25,1.25)... pure, pure.
  assert pures == [True, False, True, True, True, False, True, True]
  np.testing.assert_allclose(herd.deficit, np.zeros((1, 6)), atol=1e-6)


def test_herd_plan_starts_greedy_and_keeps_only_the_episode_decisions():
  state, cfg = _agent()
  obs = jnp.full((1, OBS_DIM), 0.5)
  first, _ = herd_plan(start_plan_herd(state, obs), decisions=cfg.episode_decisions)
  greedy = greedy_plan(state, obs)
  assert int(first.domain[0]) == int(greedy.domain[0])
  assert bool(first.pure[0]) == bool(greedy.pure[0])
  plan, _ = herd_plan(start_plan_herd(state, obs), decisions=("domain",))
  assert int(plan.domain[0]) >= 0 and not bool(plan.pure[0])   # no blend decision: mixed


def _in_turn_agent(in_turn_logit: float):
  """An agent offering "every domain in turn", its domain head biased toward that plan."""
  state, cfg = _agent(domain_in_turn=True)
  params = jax.tree.map(lambda x: x, state.params)
  bias = params["domain_head"]["bias"]
  params["domain_head"] = {**params["domain_head"], "bias": bias.at[NUM_DOMAINS].set(in_turn_logit)}
  return state.replace(params=params), cfg


def test_every_domain_in_turn_is_a_plan_the_head_offers_and_each_step_resolves():
  state, cfg = _agent(domain_in_turn=True)
  assert state.params["domain_head"]["kernel"].shape[-1] == NUM_DOMAINS + 1
  obs = jnp.full((256, OBS_DIM), 0.5)
  plan, log_prob = sample_plan(state, obs, jax.random.key(2))
  assert set(np.unique(np.asarray(plan.domain))) == set(range(NUM_DOMAINS + 1))
  rows = np.arange(256)
  expected = (_domain_log_probs(state, obs)[rows, np.asarray(plan.domain)]
              + _domain_log_probs(state, obs, 1)[rows, np.asarray(plan.pure, int)])
  np.testing.assert_allclose(log_prob, expected, rtol=1e-5, atol=1e-6)
  in_turn = Plan(jnp.array([NUM_DOMAINS, 2, -1], jnp.int32), jnp.array([True, False, False]))
  for t in range(9):
    kept = step_plan(in_turn, t, NUM_DOMAINS)
    np.testing.assert_array_equal(kept.domain, [t % NUM_DOMAINS, 2, -1])
    np.testing.assert_array_equal(kept.pure, in_turn.pure)
  # A training step under the plan keeps the resolved domain and credits the step with no domain.
  keys = jax.random.split(jax.random.key(0), 3)
  step = act_for_step(state.params, jnp.full((3, OBS_DIM), 0.5), keys,
                      step_plan(in_turn, 5, NUM_DOMAINS), network=state.network)
  np.testing.assert_array_equal(step.action[:2, 0], [5 % NUM_DOMAINS, 2])
  np.testing.assert_array_equal(step.head_mask[:, 0], [0.0, 0.0, 1.0])


def test_the_in_turn_plan_is_learned_when_it_returns_more():
  """Episodes that spread their domains return 0.02 more (noise sd 0.006): the plan heads move
  p("in turn") from about 1/5 above 0.4 within 12 episodes of 4 environments."""
  state, cfg = _agent(domain_in_turn=True, epochs=4)
  obs = jnp.full((4, OBS_DIM), 0.5)
  key, p_in_turn = jax.random.key(7), []
  for _ in range(12):
    key, k_plan, k_noise = jax.random.split(key, 3)
    plan, log_prob = sample_plan(state, obs, k_plan)
    ret = 0.02 * (plan.domain == NUM_DOMAINS) + 0.006 * jax.random.normal(k_noise, (4,))
    state, _ = plan_update(state, obs, plan, log_prob, ret, cfg=cfg)
    p_in_turn.append(float(np.exp(_domain_log_probs(state, obs)[0][NUM_DOMAINS])))
    if p_in_turn[-1] > 0.4:
      break
  assert p_in_turn[-1] > 0.4, np.round(p_in_turn, 2)


@pytest.mark.parametrize("rollout", ["herding", "greedy"])
def test_a_sure_in_turn_plan_spreads_the_roll_out_evenly_over_the_domains(rollout):
  """p("in turn") near 1: both roll-outs give each domain T / D of the T steps, in turn; with
  the plan unlikely, the greedy roll-out keeps one domain (the herded one follows p(domain))."""
  T = 4 * NUM_DOMAINS
  for logit, spread in ((20.0, True), (-20.0, False)):
    state, _ = _in_turn_agent(logit)
    obs = jnp.full((1, OBS_DIM), 0.5)
    counts = jnp.zeros((1, 3, NUM_CLASSES), jnp.int32)
    memory, domains = empty_memory(NUM_DOMAINS, NUM_CLASSES), []
    for t in range(T):
      action, memory = rollout_action(state, obs, counts, t, memory, rollout=rollout)
      domains.append(int(action[0, 0]))
    assert max(domains) < NUM_DOMAINS
    per_domain = np.bincount(domains, minlength=NUM_DOMAINS)
    if spread:
      np.testing.assert_array_equal(per_domain, np.full(NUM_DOMAINS, T // NUM_DOMAINS))
    elif rollout == "greedy":
      assert per_domain.max() == T
