"""jaxsets: compact synthetic support sets with a PPO prompt agent and Stable Diffusion, in JAX."""
