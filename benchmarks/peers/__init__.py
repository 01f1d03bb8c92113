"""The implementations users would pick instead of jaxsets, driven at jaxsets' sizes and settings.
Benchmark-only: PyTorch, stable-baselines3 and diffusers' pipelines are imported here, never by
the jaxsets package."""
