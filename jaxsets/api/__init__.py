"""Facades behind the public API (`jaxsets.__all__`): stable signatures over internal modules.

Import from `jaxsets`, not from here: `from jaxsets import load_generator, finetune, ppo_update`.
Each facade pins one public signature and docstring (shapes, dtypes, an example) and forwards to
the internal code, so the internals may change without breaking user code.
"""
