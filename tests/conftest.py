"""Test session setup: 4 fake CPU devices, so every test also exercises sharding.

Must run before jax is imported anywhere.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("USE_TF", "0")   # transformers must not import TensorFlow
os.environ.setdefault("USE_TORCH", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
