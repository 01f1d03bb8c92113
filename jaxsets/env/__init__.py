"""The support-set environment and the roll-out that plays it.

  environment.py  E batched environments as pure jitted functions: reset, observe, step
                  (join the images, fine-tune, score on validation, reward), slot_counts
  rollout.py      one step of an agent in the environment (act, generate, step), the same
                  function for `jaxsets run`'s roll-out and `jaxsets.build_support_set`
"""
