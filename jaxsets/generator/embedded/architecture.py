"""Sizes of the embedded generator: Stable Diffusion's three parts, shrunk for 16x16 digits on CPU.

Why these sizes (2-core CPU, see STACK.md): attention at full resolution dominates a step, so the
UNet cross-attends only at its 4x4 level; the VAE halves 16x16 digits to 8x8x4 latents, so the
UNet works at the 8x8 size that trains in ~0.2 s per batch of 64 while the VAE and the resize to
the classifier's resolution stay on the real code path.
"""
from __future__ import annotations

IMAGE_SIZE = 16        # pixels the generator draws (digits are 8x8, upsampled)
LATENT_CHANNELS = 4    # as real SD
TEXT_WIDTH = 32        # CLIP hidden size = the UNet's cross-attention width
MAX_PROMPT_TOKENS = 16  # "A painting of a seven, one, and four" is 12 with BOS/EOS


def text_config(vocab_size: int, bos_id: int, eos_id: int) -> dict:
  return dict(vocab_size=vocab_size, hidden_size=TEXT_WIDTH, intermediate_size=2 * TEXT_WIDTH,
              num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=MAX_PROMPT_TOKENS,
              projection_dim=TEXT_WIDTH, bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=eos_id)


def unet_config() -> dict:
  return dict(
      sample_size=IMAGE_SIZE // 2, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
      down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
      up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
      block_out_channels=(32, 64),  # Flax UNet GroupNorm uses 32 groups: channels multiples of 32
      layers_per_block=1, attention_head_dim=4, cross_attention_dim=TEXT_WIDTH)


def vae_config(channels: int = 1, scaling_factor: float = 1.0) -> dict:
  return dict(
      in_channels=channels, out_channels=channels, latent_channels=LATENT_CHANNELS,
      down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
      block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
      sample_size=IMAGE_SIZE, scaling_factor=scaling_factor)


def scheduler_config(beta_schedule: str = "scaled_linear", prediction_type: str = "epsilon") -> dict:
  """SD's own training schedule (1,000 steps, scaled-linear betas 0.00085..0.012) unless overridden."""
  return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
              beta_schedule=beta_schedule, prediction_type=prediction_type, clip_sample=False,
              set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading")
