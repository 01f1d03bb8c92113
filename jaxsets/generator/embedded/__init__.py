"""The embedded generator: a tiny Stable-Diffusion-architecture model that jaxsets pretrains on a
pool of scikit-learn digits, saved in diffusers' format and loaded like real SD weights."""
