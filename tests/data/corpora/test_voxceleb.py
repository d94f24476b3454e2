from __future__ import annotations

from pathlib import Path

import pytest

from ssl_ser.data.corpora import CorpusError, prepare

VOX1_META = ("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
             "id10001\tA.J._Buckley\tm\tIreland\tdev\n"
             "id10270\tEminem\tm\tUSA\ttest\n"
             "id10300\tEmma_Stone\tf\tUSA\tdev\n")
VOX2_META = ("VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n"
             "id00012 ,n000012 ,m ,dev \n"
             "id00015 ,n000015 ,f ,test \n")


def test_voxceleb1_rows(tmp_path: Path, write_audio, expect, as_dicts, check_keys, logged) -> None:
    wav = tmp_path / "wav"
    a = write_audio(wav / "id10001" / "1zcIwhmdeo4" / "00001.wav", seconds=0.3)
    b = write_audio(wav / "id10270" / "5r0dWxy-17s" / "00002.flac", seconds=0.2, channels=2)
    c = write_audio(wav / "id10999" / "x_y.z" / "00001.wav", seconds=0.25, rate=8_000)
    write_audio(wav / "id10001" / "00003.wav", seconds=0.05)  # no video folder
    write_audio(wav / "speaker1" / "vid" / "00001.wav", seconds=0.05)
    (tmp_path / "vox1_meta.csv").write_text(VOX1_META)
    rows = prepare("voxceleb", tmp_path)
    check_keys(rows)
    assert as_dicts(rows) == [
        expect(a, key="voxceleb-id10001-1zcIwhmdeo4-00001", corpus="voxceleb", seconds=0.3,
               speaker="id10001", labelled=False, split="dev", video="1zcIwhmdeo4", gender="male",
               name="A.J._Buckley", nationality="Ireland"),
        expect(b, key="voxceleb-id10270-5r0dWxy-17s-00002", corpus="voxceleb", seconds=0.2,
               speaker="id10270", labelled=False, split="test", video="5r0dWxy-17s",
               gender="male", name="Eminem", nationality="USA"),
        expect(c, key="voxceleb-id10999-x_y_z-00001", corpus="voxceleb", seconds=0.25, rate=8_000,
               speaker="id10999", labelled=False, video="x_y.z", gender=None),
    ]
    assert "skipped 2 file(s)" in logged() and "wav/id10001/00003.wav" in logged()


def test_voxceleb2_meta_and_flat_layout(tmp_path: Path, write_audio) -> None:
    write_audio(tmp_path / "id00012" / "21Uxsk56VDQ" / "00001.wav", seconds=0.05)
    write_audio(tmp_path / "id00015" / "0fijmz4vTVU" / "00002.wav", seconds=0.05)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "vox2.csv").write_text(VOX2_META)
    rows = prepare("voxceleb", tmp_path, meta="meta/vox2.csv")
    assert [(r.speaker, r.split, r.extra) for r in rows] == [
        ("id00012", "dev", {"video": "21Uxsk56VDQ", "gender": "male"}),
        ("id00015", "test", {"video": "0fijmz4vTVU", "gender": "female"})]


def test_voxceleb2_aac_needs_converting(tmp_path: Path) -> None:
    (tmp_path / "aac" / "id00012" / "21Uxsk56VDQ").mkdir(parents=True)
    (tmp_path / "aac" / "id00012" / "21Uxsk56VDQ" / "00001.m4a").write_bytes(b"\0")
    with pytest.raises(CorpusError, match=r"\.m4a \(AAC\) files, which cannot be read"):
        prepare("voxceleb", tmp_path)
