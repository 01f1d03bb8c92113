"""The `jaxsets` command: parses arguments and calls one command module. No logic lives here."""
from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand -> (module in jaxsets.commands with `add_arguments(parser)` and `run(args, config)`,
# one-line help). Modules are imported only for the command that runs: `jaxsets --help` stays fast.
COMMANDS = {
    "pretrain-generator": ("pretrain_generator", "pretrain the embedded generator (cached)"),
    "generate": ("generate", "generate images for a prompt and write PNGs + a grid"),
    "baseline": ("baseline", "train the classifier on real data only; write baseline.json"),
    "run": ("run", "the whole method on one seed (resumable): support set, results, report"),
    "compare": ("compare", "baseline / random / balanced / rl over several seeds with 95% intervals"),
}


def build_parser(argv=None) -> argparse.ArgumentParser:
  from jaxsets import distributed
  parser = argparse.ArgumentParser(
      prog="jaxsets",
      description="Compact synthetic support sets: a PPO agent prompts Stable Diffusion (JAX).",
      epilog="Config values are overridden with --config.KEY.SUBKEY=VALUE, e.g. --config.seed=3.")
  sub = parser.add_subparsers(dest="command", metavar="COMMAND")
  chosen = next((a for a in (argv or []) if a in COMMANDS), None)
  for name, (module_name, help_text) in COMMANDS.items():
    # argparse %-formats help but not description: "95%" must be "95%%" in help only.
    p = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
    p.add_argument("--config", required=True, metavar="FILE[:ARG]",
                   help="ml_collections config file, e.g. configs/digits.py or configs/digits.py:smoke")
    distributed.add_arguments(p)
    if name == chosen:
      module = importlib.import_module(f"jaxsets.commands.{module_name}")
      module.add_arguments(p)
      p.set_defaults(module=module)
  return parser


def main(argv=None) -> int:
  from jaxsets import config_loading, distributed
  from jaxsets.errors import UserError

  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser(argv)
  # `--config.a.b=v` overrides are not argparse options: take them out first.
  overrides = _pair_overrides(argv)
  args = parser.parse_args([a for a in argv if a not in overrides])
  if args.command is None:
    parser.print_help()
    return 2
  try:
    # Before the config: joining the other hosts must precede anything that touches a device.
    distributed.initialize(distributed.parse(vars(args)))
    config = config_loading.load_config_file(args.config)
    config_loading.apply_overrides(config, overrides)
    return int(args.module.run(args, config) or 0)
  except (config_loading.ConfigError, UserError) as e:
    print(f"jaxsets {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(f"jaxsets {args.command}: interrupted.", file=sys.stderr)
    return 130


def _pair_overrides(argv):
  """Keeps `--config.k=v` and `--config.k v` overrides, in order."""
  out = []
  for i, a in enumerate(argv):
    if a.startswith("--config."):
      out.append(a)
      if "=" not in a and i + 1 < len(argv):
        out.append(argv[i + 1])
  return out


if __name__ == "__main__":
  sys.exit(main())
