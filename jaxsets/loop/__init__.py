"""The RL environment and the driver: prompts, support sets, retraining, reward, checkpoints."""
