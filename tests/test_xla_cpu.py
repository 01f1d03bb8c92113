"""jaxsets turns off XLA:CPU's YNNPACK fusions at import, unless the user set the flag."""
import os
import subprocess
import sys

from jaxsets import xla_cpu

# A dot followed by elementwise work: XLA:CPU's defaults compile the dot as a YNNPACK fusion.
COMPILED_TEXT = """
import jax, jax.numpy as jnp
x = jnp.ones((64, 64))
text = jax.jit(lambda x, w: jax.nn.relu(x @ w) * 2).lower(x, x).compile().as_text()
print("YNN" if '"__ynn_fusion"' in text else "XLA")
"""


def test_the_flag_is_added_beside_the_users_other_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  assert xla_cpu.prefer_xla_kernels(env)
  assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=4 "
                              "--xla_cpu_experimental_ynn_fusion_type=")
  assert not xla_cpu.prefer_xla_kernels(env)          # once only
  assert env["XLA_FLAGS"].count("ynn") == 1


def test_no_xla_flags_at_all():
  env = {}
  assert xla_cpu.prefer_xla_kernels(env)
  assert env == {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}


def test_a_users_own_value_is_kept():
  env = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=-reduce"}
  assert not xla_cpu.prefer_xla_kernels(env)
  assert env["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=-reduce"


def _compiled_with(prelude: str, xla_flags: str | None) -> str:
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  if xla_flags is not None:
    env["XLA_FLAGS"] = xla_flags
  out = subprocess.run([sys.executable, "-c", prelude + COMPILED_TEXT], env=env, check=True,
                       capture_output=True, text=True)
  return out.stdout.strip()


def test_importing_jaxsets_reaches_the_compiler():
  # Without jaxsets the check sees YNNPACK, so it can tell the two apart.
  assert _compiled_with("", None) == "YNN"
  assert _compiled_with("import jaxsets\n", None) == "XLA"
  assert _compiled_with("import jaxsets\n", "--xla_cpu_experimental_ynn_fusion_type=+dot") == "YNN"


def _warnings_of(prelude: str) -> str:
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  out = subprocess.run([sys.executable, "-W", "always", "-c", prelude], env=env, check=True,
                       capture_output=True, text=True)
  return out.stderr


def test_importing_jaxsets_after_jax_started_warns_that_the_flag_is_lost():
  late = _warnings_of("import jax; jax.numpy.ones(1).block_until_ready()\nimport jaxsets\n")
  assert "jaxsets was imported after JAX had started" in late
  # jax imported (not started) before jaxsets, or jaxsets first: the flag applies, no warning.
  assert "imported after JAX" not in _warnings_of("import jax\nimport jaxsets\njax.numpy.ones(1)\n")
  assert "imported after JAX" not in _warnings_of("import jaxsets, jax\njax.numpy.ones(1)\n")
