"""The one training loop, its Ray Train runner, checkpoints and job submission."""
