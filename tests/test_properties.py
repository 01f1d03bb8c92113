"""Property-based tests (hypothesis) of the code that parses and validates user input."""
import math

import pytest
from hypothesis import example, given, settings, strategies as st

from jaxsets import config_loading, distributed
from jaxsets.config_loading import ConfigError
from jaxsets.errors import UserError
from jaxsets.loop.checks import check_loop_config

SETTINGS = settings(max_examples=150, deadline=None)
DIGITS = config_loading.load_config_file("configs/digits.py")

values = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                   st.booleans(), st.text(st.characters(codec="ascii", exclude_characters="\\'\""),
                                          max_size=12),
                   st.tuples(st.integers(0, 9), st.integers(0, 9)))


@SETTINGS
@given(values)
def test_override_text_round_trips(value):
  """What `repr` writes on the command line comes back as the same value."""
  parsed = config_loading._parse_value(repr(value))
  assert parsed == value or (isinstance(value, float) and math.isclose(parsed, value))
  assert type(parsed) is type(value)


@SETTINGS
@given(st.text(max_size=30))
def test_any_override_text_parses_without_crashing(text):
  config_loading._parse_value(text)  # a value or the text itself, never an exception


KEYS = ["seed", "loop.budget", "loop.images_per_step", "classifier.learning_rate",
        "agent.autoregressive", "prompts.domains", "data.name", "loop", "loop.nope", "nope"]


@SETTINGS
@given(st.sampled_from(KEYS), st.text(max_size=12))
@example("seed", "None")  # found by hypothesis on 2026-12-01: ml_collections took None for an int
def test_an_override_is_applied_with_its_kind_or_refused_with_config_error(key, text):
  config = config_loading.load_config_file("configs/digits.py")
  try:
    config_loading.apply_overrides(config, [f"--config.{key}={text}"])
  except ConfigError as e:
    assert f"config.{key}" in str(e)  # the message names the key
    return
  leaf = config
  for part in key.split("."):
    leaf = leaf[part]
  old = DIGITS
  for part in key.split("."):
    old = old[part]
  assert type(leaf) is type(old)  # never a silent change of kind


@SETTINGS
@given(budget=st.integers(-50, 500), ips=st.integers(-3, 40), update_every=st.integers(-2, 50),
       checkpoint_every=st.integers(-1, 3))
def test_loop_checks_accept_exactly_the_runnable_settings(budget, ips, update_every,
                                                          checkpoint_every):
  config = config_loading.load_config_file("configs/digits.py")
  config_loading.apply_overrides(config, [
      f"--config.loop.budget={budget}", f"--config.loop.images_per_step={ips}",
      f"--config.agent.update_every={update_every}",
      f"--config.loop.checkpoint_every={checkpoint_every}"])
  steps = budget // ips if ips > 0 else 0
  runnable = (ips >= 1 and budget >= 1 and budget % ips == 0 and checkpoint_every >= 1
              and update_every >= 0 and (update_every == 0 or steps % update_every == 0))
  if runnable:
    check_loop_config(config)
  else:
    with pytest.raises(UserError):
      check_loop_config(config)


numbers = st.one_of(st.integers(-3, 6).map(str), st.text(max_size=4), st.none())
addresses = st.one_of(st.builds(lambda h, p: f"{h}:{p}", st.sampled_from(["10.0.0.2", "host",
                                                                          "[::1]", "", "[::1"]),
                                st.integers(-1, 70000)),
                      st.text(max_size=10), st.none())


@SETTINGS
@given(addresses, numbers, numbers)
def test_distributed_settings_are_valid_or_refused_by_name(address, n, i):
  flags = {"coordinator": address, "num_processes": n, "process_id": i}
  env = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:9"}  # flags win over the environment
  try:
    cfg = distributed.parse(flags, env if address is None else {}, tpu=False)
  except UserError as e:
    assert any(name in str(e) for name in ("--coordinator-address", "--num-processes",
                                           "--process-id", "JAX_COORDINATOR_ADDRESS"))
    return
  if cfg.mode == "single":
    assert address in (None, "") and n in (None, "") and i in (None, "")  # "" = not given
    return
  assert cfg.mode == "explicit" and 0 <= cfg.process_id < cfg.num_processes
  host, _, port = cfg.coordinator.rpartition(":")
  assert host and 0 < int(port) < 65536


def test_environment_variables_and_precedence():
  env = {"JAXSETS_COORDINATOR": "10.0.0.2:8476", "JAX_COORDINATOR_ADDRESS": "ignored:1",
         "JAX_NUM_PROCESSES": "4", "JAXSETS_PROCESS_ID": "3"}
  cfg = distributed.parse({}, env, tpu=False)
  assert (cfg.mode, cfg.coordinator, cfg.num_processes, cfg.process_id) == (
      "explicit", "10.0.0.2:8476", 4, 3)
  cfg = distributed.parse({"process_id": "1"}, env, tpu=False)  # a flag beats the variable
  assert cfg.process_id == 1
  assert distributed.parse({}, {}, tpu=True).mode == "auto"
  assert distributed.parse({}, {"JAXSETS_DISTRIBUTED": "off"}).mode == "single"
