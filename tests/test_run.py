"""`jaxsets run` end to end on a tiny config: outputs, exact resume after SIGTERM and SIGKILL,
refusal of a workdir that holds another config. Each run is a real subprocess."""
import os
import re
import signal
import time

import pytest

from smoke_runs import CONFIG, TOTAL_STEPS, outputs_of, saved_steps, wait_for


def wait_for_step(proc, workdir, step):
  wait_for(proc, lambda: (saved_steps(workdir) or [0])[-1] >= step, f"a checkpoint of step {step}")


@pytest.fixture(scope="module")
def uninterrupted(smoke_uninterrupted):
  return smoke_uninterrupted


def test_run_writes_results_support_set_and_report(uninterrupted):
  results, manifest, pngs = outputs_of(uninterrupted)
  assert set(results["test_accuracy"]) == {"baseline", "random", "balanced", "rl"}
  assert all(0.0 <= v <= 1.0 for v in results["test_accuracy"].values())
  # The same fine-tunes scored on the validation split, what designs are chosen on.
  assert set(results["val_accuracy"]) == set(results["test_accuracy"])
  assert all(0.0 < v <= 1.0 for v in results["val_accuracy"].values())
  assert results["val_accuracy"] != results["test_accuracy"]
  # The balanced arm's 2 steps: classes 0 and 1, pure, in the first two domains.
  assert results["balanced_prompts"] == ["A photo of a zero, zero, and zero",
                                         "A drawing of a one, one, and one"]
  assert results["num_synthetic"] == 20 and len(manifest) == 20 and len(pngs) == 20
  assert all(len(results["per_class_accuracy"][arm]) == 10 for arm in results["per_class_accuracy"])
  assert results["seed"] == 0 and results["config"]["loop"]["budget"] == 20
  # The smoke config keeps 5 real training images of each digit (the rarest-class summary reads these).
  assert results["train_class_counts"] == [5] * 10 and results["num_real_train"] == 50
  for row in manifest:  # the label is c1 of the prompt that made the image
    assert row["prompt"].split(" of a ")[1].split(",")[0] == row["class_name"]
  # results.json says what the set is made of, step by step, as the manifest shows it (10
  # images a step; the herding roll-out takes a domain and a blend each step).
  comp = results["rl_composition"]
  steps = manifest[::10]
  assert comp["steps"] == 2 and sum(comp["domain_steps"].values()) == 2
  for domain, n in comp["domain_steps"].items():
    assert n == sum(row["prompt"].startswith(f"A {domain} of") for row in steps), (domain, comp)
  pure = sum(len(set(row["prompt"].split(" of a ")[1].replace(", and", ",").split(", "))) == 1
             for row in steps)
  assert comp["pure_steps"] == pure
  assert sum(comp["first_class_steps"].values()) == 2
  assert os.path.isfile(os.path.join(uninterrupted, "report.md"))


def test_build_support_set_rebuilds_the_run_set_bit_for_bit(uninterrupted, smoke, monkeypatch):
  """The public roll-out, given the run's trained agent (as jaxsets.load_agent reads it),
  baseline, data and root key (and the step its roll-out started at), builds the set the run
  delivered: both take one roll-out step (env/rollout.py), so the images, prompts and rewards
  agree to the bit."""
  import jax
  import jaxsets
  from jaxsets.checkpoint.manager import read_latest
  from jaxsets.loop import state as st
  from jaxsets.loop.setup import make_setup

  monkeypatch.setenv("JAXSETS_CACHE", smoke.env["JAXSETS_CACHE"])  # the pretrained generator
  config = jaxsets.load_config(CONFIG, smoke.args)
  s = make_setup(config, quiet=True)
  key = jax.random.key(int(config.seed))
  template = st.placed_shapes(s, jax.eval_shape(
      lambda k: st.initial_state(s, st.untrained_baseline(s, k), k), key))
  step, state, _ = read_latest(str(uninterrupted), template)
  assert step == TOTAL_STEPS
  trained = jaxsets.load_agent(str(uninterrupted))
  built = jaxsets.build_support_set(
      trained.agent, s.generator, s.book, state.baseline, s.real, s.val, state.key,
      budget=s.spec.budget, images_per_step=s.spec.images_per_step, cfg=s.clf_cfg,
      reward_cfg=s.spec.reward, observation_cfg=trained.observation_cfg, rollout=config.loop.rollout,
      first_step=s.loop.episodes * s.steps_per_episode)
  saved = jaxsets.load_support_set(str(uninterrupted))
  assert len(built) == len(saved) == 20
  assert built.images.tobytes() == saved.images.tobytes()
  assert built.labels.tolist() == saved.labels.tolist()
  assert built.prompts == saved.prompts and built.steps.tolist() == saved.steps.tolist()
  assert built.rewards.tobytes() == saved.rewards.tobytes()


def test_sigterm_then_sigkill_then_resume_gives_the_same_run(tmp_path, smoke, uninterrupted):
  workdir = tmp_path / "interrupted"
  proc = smoke.start_run(workdir, tmp_path / "logs")
  wait_for_step(proc, workdir, 1)
  proc.send_signal(signal.SIGTERM)
  t0 = time.time()
  proc.wait(timeout=60)
  assert proc.returncode == 143, proc.stderr()[-3000:]
  assert time.time() - t0 < 30
  stopped_at = max(saved_steps(workdir))
  assert stopped_at < TOTAL_STEPS

  proc = smoke.start_run(workdir, tmp_path / "logs")  # resumes, then is killed without warning
  wait_for_step(proc, workdir, stopped_at + 2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert not os.path.exists(os.path.join(workdir, "results.json"))

  out = smoke.cli("run", "--workdir", str(workdir), "--no-progress", *smoke.args)
  assert out.returncode == 0, out.stderr
  assert outputs_of(workdir) == outputs_of(uninterrupted)
  summary = next(line for line in out.stdout.splitlines() if line.startswith("test accuracy"))
  assert all(re.search(rf" {arm} [01]\.\d{{4}} ", summary)
             for arm in ("baseline", "random", "balanced", "rl")), summary


def test_workdir_of_another_config_is_refused(smoke, uninterrupted):
  before = sorted(os.listdir(uninterrupted))
  out = smoke.cli("run", "--workdir", str(uninterrupted), *smoke.args, "--config.loop.budget=40")
  assert out.returncode == 2
  assert "loop.budget" in out.stderr and "20" in out.stderr and "40" in out.stderr
  assert sorted(os.listdir(uninterrupted)) == before


def test_generate_writes_pngs_and_a_grid(tmp_path, smoke):
  out = smoke.cli("generate", *smoke.args, "--prompt", "A sketch of a seven, one, and four",
                  "--num-images", "3", "--out", str(tmp_path / "imgs"))
  assert out.returncode == 0, out.stderr
  assert sorted(os.listdir(tmp_path / "imgs")) == ["0000.png", "0001.png", "0002.png", "grid.png"]
