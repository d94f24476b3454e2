"""ssl-ser: self-/semi-supervised training for speech emotion recognition."""

__version__ = "0.1.0"

#: Every waveform inside the system (shards, features, models) is at this rate.
SAMPLE_RATE = 16_000
