from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ssl_ser.data.corpora import CORPORA, prepare
from ssl_ser.data.synthetic import EMOTIONS, SyntheticConfig, SyntheticError, generate

SMALL = dict(speakers=4, valid_speakers=1, test_speakers=1, utterances_per_class=3,
             unlabelled_speakers=1, unlabelled_per_speaker=4, noise_clips=4)


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic") / "corpus", SyntheticConfig(**SMALL))


def test_generation_is_deterministic_and_seeded(corpus, tmp_path):
    again = generate(tmp_path / "again", SyntheticConfig(**SMALL), workers=2)
    assert digest(again) == digest(corpus)  # same bytes, whatever the worker count
    other = generate(tmp_path / "other", SyntheticConfig(**SMALL, seed=1))
    changed = [name for name, sha in digest(other).items() if name.endswith(".flac")
               and digest(corpus).get(name) != sha]
    assert len(changed) == len([n for n in digest(corpus) if n.endswith(".flac")])


def test_layout_and_sizes(corpus):
    labelled = sorted(p.relative_to(corpus).as_posix() for p in (corpus / "labelled").rglob("*.flac"))
    assert len(labelled) == 4 * len(EMOTIONS) * 3
    assert "labelled/spk01/spk01_angry_002.flac" in labelled
    assert len(list((corpus / "unlabelled" / "spk05").glob("spk05_*.flac"))) == 4
    assert sorted(p.name for p in (corpus / "noise").glob("*.flac")) == \
        ["brown_00.flac", "hum_00.flac", "pink_00.flac", "white_00.flac"]
    for path in [corpus / labelled[0], corpus / "noise" / "hum_00.flac"]:
        info = sf.info(str(path))
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        assert 1.0 <= info.duration <= 3.0 or path.parent.name == "noise"


def _features(path: Path) -> tuple[float, float, float]:
    """RMS level (dB), median pitch (semitones, autocorrelation), high/low band energy ratio (dB)."""
    wave, rate = sf.read(str(path))
    level = 20 * np.log10(np.sqrt(np.mean(wave**2)))
    pitches = []
    for start in range(0, len(wave) - 640, 320):
        frame = wave[start:start + 640] * np.hanning(640)
        if np.sqrt(np.mean(frame**2)) < 10 ** (level / 20) / 2:
            continue
        ac = np.correlate(frame, frame, "full")[639:]
        lag = 32 + int(np.argmax(ac[32:230]))
        pitches.append(rate / lag)
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / rate)
    tilt = 10 * np.log10(spectrum[(freqs > 1000) & (freqs < 4000)].sum() / spectrum[freqs < 1000].sum())
    return level, 12 * float(np.log2(np.median(pitches))), tilt  # pitch in semitones


def test_simple_features_separate_the_emotions(corpus):
    features: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((corpus / "labelled").rglob("*.flac")):
        speaker, emotion, _ = path.stem.split("_")
        features[speaker][emotion].append(_features(path))
    mean = {s: {e: np.mean(v, axis=0) for e, v in by_emotion.items()} for s, by_emotion in features.items()}
    for speaker, m in mean.items():
        # energy: angry > happy > neutral > sad; pitch: happy and angry above neutral above sad
        assert m["angry"][0] > m["happy"][0] > m["neutral"][0] > m["sad"][0], speaker
        assert min(m["happy"][1], m["angry"][1]) > m["neutral"][1] > m["sad"][1], speaker
        assert m["angry"][2] > m["sad"][2], speaker  # tense voice is brighter than lax voice
    # nearest class centre on speaker-normalised features, leaving each speaker out
    correct = total = 0
    for held_out in features:
        centres = {e: np.mean([x - np.mean([x for v in features[s].values() for x in v], axis=0)
                               for s in features if s != held_out for x in features[s][e]], axis=0)
                   for e in EMOTIONS}
        own = np.mean([x for v in features[held_out].values() for x in v], axis=0)
        scale = np.array([1.5, 1.0, 3.0])  # about the within-class spread of each feature
        for emotion, rows in features[held_out].items():
            for x in rows:
                guess = min(EMOTIONS, key=lambda e: np.sum(((x - own - centres[e]) / scale) ** 2))
                correct += guess == emotion
                total += 1
    assert correct / total >= 0.9, f"accuracy {correct}/{total}"


def test_recipe_rows(corpus):
    assert "synthetic" in CORPORA
    rows = prepare("synthetic", corpus)
    assert [r.key for r in rows] == sorted(r.key for r in rows) and len({r.key for r in rows}) == len(rows)
    by_key = {r.key: r for r in rows}
    assert len(rows) == 48 + 4 + 4

    row = by_key["synthetic-spk03_sad_001"]
    labels = {line.split(",")[0]: line.split(",") for line in (corpus / "labels.csv").read_text().splitlines()}
    expected = labels["labelled/spk03/spk03_sad_001.flac"]
    assert row.audio == str((corpus / "labelled/spk03/spk03_sad_001.flac").resolve())
    assert (row.corpus, row.speaker, row.emotion, row.labelled) == ("synthetic", "spk03", "sad", True)
    assert (row.arousal, row.valence, row.dominance) == tuple(float(v) for v in expected[3:6])
    assert row.split == "valid" and row.sample_rate == 16000  # speakers: 2 train, spk03 valid, spk04 test
    assert row.duration == pytest.approx(sf.info(row.audio).duration)
    assert row.extra == {"part": "labelled", "gender": "male"}
    assert {r.split for r in rows if r.speaker == "spk04"} == {"test"}
    assert {r.split for r in rows if r.speaker in ("spk01", "spk02") and r.labelled} == {"train"}

    unlabelled = by_key["synthetic-spk05_0003"]
    assert (unlabelled.emotion, unlabelled.labelled, unlabelled.split, unlabelled.arousal) == \
        (None, False, "train", None)
    truth = {r["file"]: r["emotion"] for r in csv.DictReader((corpus / "unlabelled_truth.csv").open())}
    # the hidden emotion rides along for analysis (cluster purity), never as a label
    assert unlabelled.extra == {"part": "unlabelled", "gender": "male",
                                "hidden_emotion": truth["unlabelled/spk05/spk05_0003.flac"]}
    assert all(r.extra["hidden_emotion"] in EMOTIONS for r in rows if r.extra.get("part") == "unlabelled")
    noise = by_key["synthetic-noise-hum_00"]
    assert (noise.speaker, noise.emotion, noise.labelled, noise.split) == (None, None, False, "noise")
    assert noise.extra == {"part": "noise", "noise": "hum"}

    # class-level attributes: angry is more aroused and less pleasant than sad/happy
    def mean(emotion: str, attribute: str) -> float:
        return float(np.mean([getattr(r, attribute) for r in rows if r.emotion == emotion]))

    assert mean("angry", "arousal") > mean("neutral", "arousal") > mean("sad", "arousal")
    assert mean("happy", "valence") > mean("neutral", "valence") > mean("angry", "valence")


def test_recipe_options_and_errors(corpus, tmp_path):
    rows = prepare("synthetic", corpus, include_unlabelled=False, include_noise=False,
                   valid_speakers=["spk01"], test_speakers=["spk02"])
    assert all(r.labelled for r in rows) and len(rows) == 48
    assert {r.speaker: r.split for r in rows} == {"spk01": "valid", "spk02": "test",
                                                   "spk03": "train", "spk04": "train"}
    with pytest.raises(SyntheticError, match="unknown speaker"):
        prepare("synthetic", corpus, test_speakers=["nobody"])
    with pytest.raises(SyntheticError, match="not a synthetic corpus"):
        prepare("synthetic", tmp_path / "missing")

    copy = generate(tmp_path / "copy", SyntheticConfig(**{**SMALL, "noise_clips": 0}))
    (copy / "labelled" / "spk01" / "spk01_angry_000.flac").rename(copy / "labelled" / "spk01" / "oops.flac")
    with pytest.warns(UserWarning, match="1 file.*do not follow.*oops.flac"):
        rows = prepare("synthetic", copy)
    assert len(rows) == 48 - 1 + 4


def test_generate_refuses_to_overwrite_and_validates_config(corpus, tmp_path):
    with pytest.raises(SyntheticError, match="exists and is not empty"):
        generate(corpus, SyntheticConfig(**SMALL))
    with pytest.raises(ValueError, match="leave training speakers"):
        SyntheticConfig(speakers=3, valid_speakers=1, test_speakers=2)
