"""The stages of a run on whatever mesh this process sees, for tests/test_multihost.py.

Run as a script by each of 2 processes (2 fake CPU devices each, joined by
jaxsets.distributed); called in-process by the test (4 fake devices, 1 process) for the
reference. Same seed, same config, so the values must agree bit for bit.

  python tests/multihost_stages.py WORKDIR COORDINATOR NUM_PROCESSES PROCESS_ID [--run DIR] -- OVERRIDES...

With --run DIR the same processes then run the whole `jaxsets run` command in DIR (the smoke
config with OVERRIDES): one start-up and one join of the processes for both.
"""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

CONFIG = "configs/digits.py:smoke"


def ppo_trajectory(obs_dim: int, T: int, E: int):
  """A fixed trajectory (Transition of numpy [T, E, ...]): test data, not a learner's randomness."""
  from jaxsets.agent import Transition
  rng = np.random.default_rng(0)
  return Transition(obs=rng.normal(size=(T, E, obs_dim)).astype(np.float32),
                    action=rng.integers(0, 3, (T, E, 4)).astype(np.int32),
                    reward=rng.normal(size=(T, E)).astype(np.float32),
                    done=np.zeros((T, E), bool), value=np.zeros((T, E), np.float32),
                    log_prob=np.full((T, E), -8.0, np.float32))


def run_stages(config, workdir: str):
  """({name: numpy array}, the checkpointed state) from data placement, generation, a
  fine-tune, an evaluation, PPO updates, environments split over the devices and a checkpoint
  save (all processes take part)."""
  from jaxsets import outputs, sharding
  from jaxsets.checkpoint.manager import Checkpointer
  from jaxsets.agent import init_agent, observation_size, ppo_update
  from jaxsets.classifier import SupportBatch, evaluate, finetune, init_state
  from jaxsets.loop.state import generate_images
  from jaxsets.loop.setup import make_setup

  s = make_setup(config, quiet=True)
  assert s.mesh.size == 4 and s.real.images.sharding.spec[0] == sharding.DATA_AXIS
  out = {"real_images": sharding.to_host(s.real.images), "real_mask": sharding.to_host(s.real.mask)}
  key = jax.random.key(0)

  # Generation: 2 prompts x ips images, the batch split over the 4 devices of both hosts.
  actions = jnp.asarray([[0, 3, 1, 2], [1, 7, 0, 9]], jnp.int32)
  images = generate_images(s, actions, jax.random.fold_in(key, 1))             # [2, ips, H, W, C]
  out["generated"] = sharding.to_host(images)

  # One fine-tune on real data + those images, the batch split over the devices of both hosts
  # (per-device gradients added in device order across hosts).
  clf = init_state(jax.random.fold_in(key, 2), s.clf_cfg, s.splits.image_shape,
                   s.spec.num_classes, s.mesh)
  flat = images.reshape((-1,) + images.shape[2:])
  support = SupportBatch(flat, jnp.repeat(actions[:, 1], images.shape[1]),
                         jnp.ones((flat.shape[0],), bool))
  clf, losses = finetune(clf, s.real, support, jax.random.fold_in(key, 3), cfg=s.clf_cfg,
                         mesh=s.mesh)
  out["finetune_losses"] = sharding.to_host(losses)
  out.update({f"clf/{i}": sharding.to_host(x) for i, x in enumerate(jax.tree.leaves(clf.params))})

  # Its metrics on the validation split, which lies split over the devices of both hosts.
  metrics = evaluate(clf, s.val.images, s.val.labels, s.val.mask, chunk=s.clf_cfg.eval_chunk)
  out.update({f"eval/{k}": sharding.to_host(v) for k, v in metrics._asdict().items()})

  # PPO updates on a fixed trajectory of 4 environments: replicated, as `jaxsets run` holds it,
  # and split over the devices along the environments.
  obs_dim, T, E = observation_size(10, s.ppo.observation), 2, 4
  agent0 = sharding.replicate(init_agent(jax.random.fold_in(key, 4), obs_dim, 3, 10, s.ppo), s.mesh)
  traj = ppo_trajectory(obs_dim, T, E)
  env_axis = jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec(None, sharding.DATA_AXIS))
  placements = {"ppo_replicated": (sharding.replicate(traj, s.mesh),
                                   sharding.replicate(np.zeros(E, np.float32), s.mesh)),
                "ppo": (jax.tree.map(lambda x: jax.device_put(x, env_axis), traj),
                        sharding.shard_batch(np.zeros(E, np.float32), s.mesh))}
  for name, (traj_on_mesh, last_value) in placements.items():
    agent, ppo_metrics = ppo_update(agent0, traj_on_mesh, last_value, jax.random.fold_in(key, 5),
                                    cfg=s.ppo)
    out.update({f"{name}/{i}": sharding.to_host(x)
                for i, x in enumerate(jax.tree.leaves(agent.params))})
    out[f"{name}/loss"] = sharding.to_host(ppo_metrics["loss"])

  # 4 environments reset on the 4 devices of both hosts, one whole environment per device (as a
  # run with agent.num_envs=4 holds them): each host fine-tunes and scores its own two.
  from jaxsets.env import environment as env_ops
  from jaxsets.data.device import whole_on_every_device
  real, val = (whole_on_every_device(x, s.mesh) for x in (s.splits.train, s.splits.validation))
  env = env_ops.reset(clf, real, val, sharding.replicate(jax.random.fold_in(key, 6), s.mesh),
                      s.clf_cfg, spec=s.spec, num_envs=4, mesh=s.mesh)
  split = jax.sharding.PartitionSpec(sharding.DATA_AXIS)
  assert all(x.sharding.spec == split for x in jax.tree.leaves(env._replace(t=None)))
  env_data = env._replace(finetune_key=jax.random.key_data(env.finetune_key))
  out.update({f"env/{i}": sharding.to_host(x) for i, x in enumerate(jax.tree.leaves(env_data))})

  # A checkpoint written the multi-host way (every process saves its shards; Orbax's primary
  # host writes the metadata), to be restored by the test in a single process.
  state = {"clf": clf.params, "agent": agent.params, "key": key, "generated": images, "env": env}
  with Checkpointer(workdir, config.to_dict()) as ckpt:
    ckpt.save(1, state, {"note": "multihost"})
  outputs.write_results(workdir, {"ppo_loss": float(ppo_metrics["loss"]),
                                  "process_count": jax.process_count()})
  return out, state


def main(argv) -> int:
  from jaxsets import cli, config_loading, distributed

  workdir, coordinator, n, i = argv[:4]
  overrides = argv[argv.index("--") + 1:] if "--" in argv else []
  options = argv[4:argv.index("--")] if "--" in argv else argv[4:]
  distributed.initialize(distributed.parse({"coordinator": coordinator, "num_processes": n,
                                            "process_id": i}, {}))
  assert jax.process_count() == int(n) and jax.local_device_count() == 2
  config = config_loading.load_config_file(CONFIG)
  config_loading.apply_overrides(config, overrides)
  out, _ = run_stages(config, workdir)
  if jax.process_index() == 0:
    np.savez(os.path.join(workdir, "stages.npz"), **out)
  if "--run" in options:
    # The `jaxsets run` command as a user starts it; this process has already joined the
    # others (without coordinator flags the command finds nothing more to join).
    run_dir = options[options.index("--run") + 1]
    return cli.main(["run", "--config", CONFIG, "--workdir", run_dir, "--no-progress", *overrides])
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
