from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare


def _tree(root: Path, write_audio) -> dict[str, Path]:
    return {
        "angry": write_audio(root / "Angry" / "clip 1.wav", seconds=0.3),
        "sad": write_audio(root / "sad" / "deep" / "x.y.flac", seconds=0.2, channels=2),
        "top": write_audio(root / "loose.wav", seconds=0.25, rate=22_050),
    }


def test_folder_plain(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    root = tmp_path / "my noise"
    f = _tree(root, write_audio)
    (root / "Angry" / "notes.txt").write_text("not audio")
    (root / ".cache").mkdir()
    write_audio(root / ".cache" / "hidden.wav", seconds=0.05)
    rows = prepare("folder", root)
    check_keys(rows)
    assert as_dicts(rows) == [
        expect(f["angry"], key="my_noise-Angry_clip_1", corpus="my_noise", seconds=0.3, labelled=False),
        expect(f["top"], key="my_noise-loose", corpus="my_noise", seconds=0.25, rate=22_050,
               labelled=False),
        expect(f["sad"], key="my_noise-sad_deep_x_y", corpus="my_noise", seconds=0.2, labelled=False),
    ]
    assert logged() == f"my noise: skipped 1 file(s) that are hidden or in a hidden folder: {root}/.cache/hidden.wav"


def test_every_file_that_looks_like_audio_is_a_row_or_a_counted_skip(tmp_path: Path, write_audio,
                                                                      logged) -> None:
    import numpy as np
    import soundfile as sf

    from ssl_ser.audio import AUDIO_SUFFIXES
    from ssl_ser.predict import find_audio

    root = tmp_path / "corpus"
    write_audio(root / "a.wav", seconds=0.2)
    sf.write(str(root / "b.aiff"), np.zeros(1600, np.float32) + 0.1, 16_000)  # predict took these, prepare did not
    sf.write(str(root / "c.AU"), np.zeros(1600, np.float32) + 0.1, 16_000, format="AU", subtype="PCM_16")
    (root / "gone.wav").symlink_to(root / "deleted.wav")  # a dangling link
    (root / "émotion_日本語.wav").symlink_to(root / "a.wav")  # a good link with a non-ASCII name
    rows = prepare("folder", root)
    assert sorted(Path(r.audio).name for r in rows) == ["a.wav", "a.wav", "b.aiff", "c.AU"]
    assert "skipped 1 file(s) that are broken links (their target does not exist): " \
           f"{root}/gone.wav" in logged()
    # predict sees the same files, and the broken link as a file it reports as missing
    assert sorted(p.name for p in find_audio([root])) == ["a.wav", "b.aiff", "c.AU", "gone.wav", "émotion_日本語.wav"]
    assert {".aiff", ".au", ".wav", ".flac"} <= AUDIO_SUFFIXES
    from urllib.parse import unquote

    assert "corpus-émotion_日本語" in {unquote(r.key) for r in rows}  # nothing lost from the name


@pytest.mark.parametrize("field", ["emotion", "speaker", "label"])
def test_folder_label_fields(tmp_path: Path, write_audio, field: str, logged) -> None:
    _tree(tmp_path / "mine", write_audio)
    rows = prepare("folder", tmp_path / "mine", label_field=field, corpus="own")
    assert [r.key for r in rows] == ["own-Angry_clip_1", "own-loose", "own-sad_deep_x_y"]
    got = {"emotion": [r.emotion for r in rows], "speaker": [r.speaker for r in rows],
           "label": [r.extra.get("label") for r in rows]}[field]
    assert got == ({"emotion": ["angry", None, "deep"]}.get(field) or ["Angry", None, "deep"])
    assert [r.labelled for r in rows] == ([True, False, True] if field == "emotion" else [False] * 3)
    assert f"1 file(s) directly in {tmp_path / 'mine'} have no parent folder to give a {field}" in logged()


def test_folder_refuses_bad_label_field_and_collisions(tmp_path: Path, write_audio) -> None:
    _tree(tmp_path, write_audio)
    with pytest.raises(CorpusError,
                       match=r"option label_field='mood': Input should be 'none', 'label', 'emotion' or 'speaker'"):
        prepare("folder", tmp_path, label_field="mood")
    write_audio(tmp_path / "Angry_clip 1.wav", seconds=0.05)
    with pytest.raises(CorpusError, match=r"both map to key '.*-Angry_clip_1'"):
        prepare("folder", tmp_path)
