"""A small, deterministic synthetic emotional-speech corpus: the pipeline's built-in demo data.

Each utterance is made by a source-filter model: a sawtooth glottal pulse train (with jitter
and an emotion-dependent spectral tilt) plus aspiration noise, through a cascade of formant
resonators that change vowel every syllable, shaped by syllable-like amplitude envelopes.
Speakers differ in pitch, vocal-tract length (formant scale), breathiness and loudness.
Emotions differ the way acted speech does: pitch level and range, tempo (syllables per
second), energy and spectral tilt. A hidden per-utterance intensity moves pitch, energy and
tempo together and also the arousal/valence/dominance values, so attribute regression has
within-class signal to learn.

Layout written under ``ROOT`` (parsed by the ``synthetic`` corpus recipe)::

    README.txt
    speakers.csv                  speaker,gender,f0,formant_scale,split
    labels.csv                    file,speaker,emotion,arousal,valence,dominance
    labelled/<spk>/<spk>_<emotion>_<nnn>.flac
    unlabelled/<spk>/<spk>_<nnnn>.flac
    unlabelled_truth.csv          the hidden emotion of each unlabelled file (analysis only)
    noise/<kind>_<nn>.flac        white, pink, brown, hum

Attributes are on a 1..5 scale (as IEMOCAP). Every file is seeded from ``(seed, its own
identity)``, never from generation order, so the bytes do not depend on the worker count.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from ssl_ser import SAMPLE_RATE
from ssl_ser.audio import encode_flac
from ssl_ser.config import config
from ssl_ser.errors import SslSerError

EMOTIONS = ("neutral", "happy", "angry", "sad")
NOISE_KINDS = ("white", "pink", "brown", "hum")


@dataclass(frozen=True)
class Prosody:
    pitch: float
    """f0 relative to the speaker's own level."""
    pitch_range: float
    """Spread of syllable pitch accents, semitones."""
    rate: float
    """Syllables per second."""
    gain_db: float
    """Level relative to neutral speech."""
    tilt: float
    """Spectral tilt change above 500 Hz, dB per octave: positive brightens (tense, effortful
    voice), negative darkens (lax voice)."""
    avd: tuple[float, float, float]
    """Arousal, valence, dominance of the class centre (1..5)."""


PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(pitch=1.00, pitch_range=1.5, rate=4.0, gain_db=0.0, tilt=0.0,
                       avd=(3.0, 3.0, 3.0)),
    "happy": Prosody(pitch=1.30, pitch_range=5.0, rate=5.0, gain_db=3.0, tilt=1.0,
                     avd=(3.8, 4.2, 3.4)),
    "angry": Prosody(pitch=1.18, pitch_range=3.5, rate=5.6, gain_db=7.0, tilt=3.0,
                     avd=(4.4, 1.7, 4.3)),
    "sad": Prosody(pitch=0.85, pitch_range=0.8, rate=2.8, gain_db=-6.0, tilt=-3.5,
                   avd=(1.9, 1.8, 2.1)),
}

# (F1, F2, F3) of five cardinal vowels for an adult male vocal tract, Hz (Peterson & Barney).
VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                   [570, 840, 2410], [300, 870, 2240]], dtype=np.float64)
BANDWIDTHS = np.array([80.0, 100.0, 140.0])
_REFERENCE_RMS_DB = -27.0  # neutral speech level, dBFS


class SyntheticError(SslSerError):
    """The synthetic corpus cannot be written where asked."""


@config
class SyntheticConfig:
    """Size and seed of the generated corpus (defaults: ~370 files, ~12 minutes of audio)."""

    speakers: int = 8
    """Speakers of the labelled part."""
    valid_speakers: int = 1
    """How many labelled speakers form the validation split (speaker independent)."""
    test_speakers: int = 2
    """How many labelled speakers form the test split."""
    utterances_per_class: int = 6
    """Labelled utterances per speaker and emotion."""
    unlabelled_speakers: int = 4
    """Further speakers whose audio is unlabelled (emotions drawn at random, kept hidden)."""
    unlabelled_per_speaker: int = 40
    noise_clips: int = 8
    """Noise clips, cycling through white, pink, brown and mains hum."""
    min_seconds: float = 1.0
    max_seconds: float = 3.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.speakers < 1 or self.valid_speakers < 0 or self.test_speakers < 0:
            raise ValueError("speakers must be >= 1 and valid/test speakers >= 0")
        if self.valid_speakers + self.test_speakers >= self.speakers:
            raise ValueError(f"valid_speakers + test_speakers must leave training speakers "
                             f"(got {self.valid_speakers} + {self.test_speakers} of {self.speakers})")
        if not 0.2 <= self.min_seconds <= self.max_seconds:
            raise ValueError("need 0.2 <= min_seconds <= max_seconds")
        for name in ("utterances_per_class", "unlabelled_speakers", "unlabelled_per_speaker",
                     "noise_clips"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True)
class Speaker:
    name: str
    gender: str
    f0: float
    """Mean pitch of neutral speech, Hz."""
    formant_scale: float
    """Vocal-tract length factor (shorter tract -> higher formants)."""
    breath: float
    """Aspiration noise relative to the voiced source."""
    level_db: float
    split: str
    """train, valid or test for labelled speakers; unlabelled for the others."""


@dataclass(frozen=True)
class _Job:
    """One file to synthesise: everything needed, so workers share nothing."""

    path: str
    kind: str  # "speech" or "noise"
    speaker: Speaker | None
    emotion: str
    index: int
    seed: int


def rng_for(seed: int, *identity: object) -> np.random.Generator:
    """A generator seeded by the corpus seed and a file's identity (stable across processes)."""
    digest = hashlib.sha256(repr((seed,) + identity).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_speakers(cfg: SyntheticConfig) -> list[Speaker]:
    """Labelled speakers first (train, then valid, then test), then the unlabelled ones."""
    total = cfg.speakers + cfg.unlabelled_speakers
    n_train = cfg.speakers - cfg.valid_speakers - cfg.test_speakers
    speakers = []
    for i in range(total):
        rng = rng_for(cfg.seed, "speaker", i)
        gender = "female" if i % 2 else "male"
        if gender == "female":
            f0, scale = rng.uniform(185, 245), rng.uniform(1.10, 1.22)
        else:
            f0, scale = rng.uniform(95, 140), rng.uniform(0.92, 1.02)
        if i >= cfg.speakers:
            split = "unlabelled"
        else:
            split = "train" if i < n_train else "valid" if i < n_train + cfg.valid_speakers else "test"
        speakers.append(Speaker(name=f"spk{i + 1:02d}", gender=gender, f0=round(float(f0), 2),
                                formant_scale=round(float(scale), 4),
                                breath=round(float(rng.uniform(0.02, 0.10)), 4),
                                level_db=round(float(rng.uniform(-2.0, 2.0)), 2), split=split))
    return speakers


def attributes(emotion: str, intensity: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """Arousal/valence/dominance: the class centre moved by the intensity, plus rater-like jitter."""
    arousal, valence, dominance = PROSODY[emotion].avd
    sign = 1.0 if valence >= 3.0 else -1.0  # stronger happiness is more positive, stronger anger more negative
    values = (arousal + 0.45 * intensity, valence + sign * 0.25 * abs(intensity),
              dominance + 0.30 * intensity)
    jitter = rng.normal(0.0, 0.15, size=3)
    return tuple(round(float(np.clip(v + j, 1.0, 5.0)), 3) for v, j in zip(values, jitter))  # type: ignore[return-value]


# --- synthesis ------------------------------------------------------------------------------

def _resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """Second-order resonator with unit gain at DC (a formant, Klatt-style)."""
    freq = min(freq, 0.45 * SAMPLE_RATE)
    r = math.exp(-math.pi * bandwidth / SAMPLE_RATE)
    c = 2.0 * r * math.cos(2.0 * math.pi * freq / SAMPLE_RATE)
    return lfilter([1.0 - c + r * r], [1.0, -c, r * r], x)


def _tilt(x: np.ndarray, db_per_octave: float) -> np.ndarray:
    """Raise (or lower) the spectrum above 500 Hz by ``db_per_octave`` per octave."""
    if db_per_octave == 0.0:
        return x
    spectrum = np.fft.rfft(x)
    octaves = np.log2(np.maximum(np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE), 500.0) / 500.0)
    return np.fft.irfft(spectrum * 10.0 ** (db_per_octave * octaves / 20.0), x.size)


def _pitch_contour(n: int, syllables: list[tuple[int, int]], base: float, prosody: Prosody,
                   rng: np.random.Generator) -> np.ndarray:
    """f0 per sample: declination + one accent per syllable (smoothly joined) + slow jitter."""
    t = np.arange(n) / n
    centres = np.array([(a + b) / 2 for a, b in syllables] or [n / 2])
    accents = rng.uniform(-0.5, 0.5, size=centres.size) * prosody.pitch_range
    semitones = np.interp(np.arange(n), centres, accents)
    semitones += 1.0 - 2.5 * t  # declination: phrases fall
    drift = np.cumsum(rng.normal(0.0, 1.0, size=n // 160 + 2))
    drift = np.interp(np.arange(n) / 160, np.arange(drift.size), drift) * 0.03
    return base * 2.0 ** ((semitones + drift) / 12.0)


def synthesize(speaker: Speaker, emotion: str, intensity: float, seconds: float,
               rng: np.random.Generator) -> np.ndarray:
    """One utterance, float32 mono at 16 kHz."""
    prosody = PROSODY[emotion]
    n = int(seconds * SAMPLE_RATE)
    rate = prosody.rate * (1.0 + 0.08 * intensity)
    lead, tail = (int(rng.uniform(0.08, 0.18) * SAMPLE_RATE) for _ in range(2))
    voiced = max(n - lead - tail, SAMPLE_RATE // 10)
    count = max(1, round(voiced / SAMPLE_RATE * rate))
    weights = rng.gamma(8.0, 1.0, size=count)
    bounds = lead + np.concatenate([[0], np.cumsum(weights) / weights.sum() * voiced]).astype(int)
    syllables = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    base = speaker.f0 * prosody.pitch * 2.0 ** (0.8 * intensity / 12.0)
    f0 = _pitch_contour(n, syllables, base, prosody, rng)
    f0 *= 1.0 + rng.normal(0.0, 0.004, size=n)  # jitter
    phase = np.cumsum(f0 / SAMPLE_RATE)
    source = 2.0 * (phase % 1.0) - 1.0
    source = lfilter([0.7], [1.0, -0.3], source)  # a slightly rounded glottal pulse
    source /= np.sqrt(np.mean(source**2)) + 1e-9
    source += speaker.breath * 1.5 * rng.standard_normal(n)

    out = np.zeros(n)
    for a, b in syllables:
        length = b - a
        vowel = VOWELS[rng.integers(len(VOWELS))] * speaker.formant_scale
        vowel = vowel * rng.uniform(0.95, 1.05, size=3)
        segment = source[a:b]
        for freq, bw in zip(vowel, BANDWIDTHS):
            segment = _resonator(segment, float(freq), float(bw))
        # syllable nucleus: rise, hold, fall, with a short gap before the next syllable
        shape = np.sin(np.pi * np.linspace(0.0, 1.0, length)) ** 0.7
        shape[int(0.85 * length):] *= np.linspace(1.0, 0.0, length - int(0.85 * length))
        nucleus = segment * shape
        out[a:b] += nucleus
        # a fricative/plosive onset: a brief high-passed noise burst, relative to the vowel
        burst = min(length // 4, int(rng.uniform(0.015, 0.04) * SAMPLE_RATE))
        if burst > 8 and rng.random() < 0.6:
            noise = np.diff(rng.standard_normal(burst + 1)) * np.hanning(burst)
            out[a:a + burst] += 0.3 * np.sqrt(np.mean(nucleus**2)) * noise

    out = _tilt(out, prosody.tilt)
    level_db = _REFERENCE_RMS_DB + prosody.gain_db + 1.5 * intensity + speaker.level_db
    out *= 10.0 ** (level_db / 20.0) / (np.sqrt(np.mean(out[lead:n - tail] ** 2)) + 1e-9)
    out += 10.0 ** (-62.0 / 20.0) * rng.standard_normal(n)  # recording noise floor
    peak = np.max(np.abs(out))
    if peak > 0.97:  # a limiter, not clipping: keeps loud classes loud but undistorted
        out *= 0.97 / peak
    return out.astype(np.float32)


def noise_clip(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary noise clip at about -30 dBFS RMS."""
    n = int(seconds * SAMPLE_RATE)
    white = rng.standard_normal(n)
    if kind == "white":
        x = white
    elif kind == "pink":  # 1/f via a shaped spectrum
        spectrum = np.fft.rfft(white)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        x = np.fft.irfft(spectrum, n)
    elif kind == "brown":
        x = lfilter([1.0], [1.0, -0.995], white)
    elif kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        mains = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3, 5))
        x = x + 0.05 * white
    else:
        raise SyntheticError(f"unknown noise kind {kind!r}; known: {', '.join(NOISE_KINDS)}")
    x = x - np.mean(x)
    x *= 10.0 ** (-30.0 / 20.0) / (np.sqrt(np.mean(x**2)) + 1e-12)
    return np.clip(x, -0.97, 0.97).astype(np.float32)


def _encode(wave: np.ndarray) -> bytes:

    return encode_flac(wave, SAMPLE_RATE)


def _render(job: _Job, cfg_min: float, cfg_max: float) -> tuple[str, bytes, dict[str, object]]:
    """Synthesise one file: (path, FLAC bytes, its labels)."""
    rng = rng_for(job.seed, job.kind, job.speaker.name if job.speaker else "", job.emotion, job.index)
    seconds = float(rng.uniform(cfg_min, cfg_max))
    if job.kind == "noise":
        return job.path, _encode(noise_clip(job.emotion, max(seconds, 2.0), rng)), {}
    assert job.speaker is not None
    intensity = float(np.clip(rng.normal(0.0, 1.0), -2.0, 2.0))
    wave = synthesize(job.speaker, job.emotion, intensity, seconds, rng)
    arousal, valence, dominance = attributes(job.emotion, intensity, rng)
    labels = dict(speaker=job.speaker.name, emotion=job.emotion, arousal=arousal,
                  valence=valence, dominance=dominance)
    return job.path, _encode(wave), labels


def _render_star(args: tuple[_Job, float, float]) -> tuple[str, bytes, dict[str, object]]:
    return _render(*args)


def _jobs(cfg: SyntheticConfig, speakers: list[Speaker]) -> Iterator[_Job]:
    for spk in speakers[: cfg.speakers]:
        for emotion in EMOTIONS:
            for i in range(cfg.utterances_per_class):
                yield _Job(f"labelled/{spk.name}/{spk.name}_{emotion}_{i:03d}.flac", "speech",
                           spk, emotion, i, cfg.seed)
    for spk in speakers[cfg.speakers:]:
        for i in range(cfg.unlabelled_per_speaker):
            # the hidden emotion is a function of the file's identity, not of the order
            emotion = EMOTIONS[int(rng_for(cfg.seed, "hidden", spk.name, i).integers(len(EMOTIONS)))]
            yield _Job(f"unlabelled/{spk.name}/{spk.name}_{i:04d}.flac", "speech", spk, emotion, i,
                       cfg.seed)
    for i in range(cfg.noise_clips):
        kind = NOISE_KINDS[i % len(NOISE_KINDS)]
        yield _Job(f"noise/{kind}_{i // len(NOISE_KINDS):02d}.flac", "noise", None, kind, i, cfg.seed)


_README = """\
Synthetic emotional speech generated by ssl-ser (ssl_ser/data/synthetic.py); seed {seed}.

speakers.csv          speaker,gender,f0,formant_scale,split (speaker-independent splits)
labels.csv            file,speaker,emotion,arousal,valence,dominance (attributes on 1..5)
labelled/<spk>/<spk>_<emotion>_<nnn>.flac
unlabelled/<spk>/<spk>_<nnnn>.flac
unlabelled_truth.csv  hidden emotion of each unlabelled file (for analysing pseudo-labels only)
noise/<kind>_<nn>.flac

Prepare a manifest with:  ssl-ser prepare synthetic ROOT --out synthetic.jsonl
"""


def generate(root: str | Path, cfg: SyntheticConfig | None = None, *, workers: int = 1,
             overwrite: bool = False) -> Path:
    """Write the corpus under ``root`` and return it. Same config -> identical bytes.

    An existing non-empty ``root`` is refused unless ``overwrite`` (it is then replaced).
    Files are written under a temporary folder that is renamed into place at the end, so an
    interrupted run leaves no half corpus under ``root``.
    """
    cfg = cfg or SyntheticConfig()
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise SyntheticError(f"{root} exists and is not empty; pass overwrite=True (--overwrite) "
                                 f"to replace it")
    speakers = make_speakers(cfg)
    jobs = list(_jobs(cfg, speakers))
    staging = root.with_name(f".{root.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)

    args = [(job, cfg.min_seconds, cfg.max_seconds) for job in jobs]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_render_star, args, chunksize=8))
    else:
        results = [_render_star(a) for a in args]

    labels: list[dict[str, object]] = []
    truth: list[dict[str, object]] = []
    for job, (rel, data, lab) in zip(jobs, results):
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if job.kind == "speech":
            (labels if rel.startswith("labelled/") else truth).append({"file": rel, **lab})

    fields = ["file", "speaker", "emotion", "arousal", "valence", "dominance"]
    _write_csv(staging / "labels.csv", fields, labels)
    _write_csv(staging / "unlabelled_truth.csv", fields, truth)
    _write_csv(staging / "speakers.csv", ["speaker", "gender", "f0", "formant_scale", "split"],
               [dict(speaker=s.name, gender=s.gender, f0=s.f0, formant_scale=s.formant_scale,
                     split=s.split) for s in speakers])
    (staging / "README.txt").write_text(_README.format(seed=cfg.seed))

    if root.exists():
        shutil.rmtree(root)
    staging.rename(root)
    return root


def _write_csv(path: Path, fields: list[str], rows: list[dict[str, object]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue())
