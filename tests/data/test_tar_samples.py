from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
from webdataset.handlers import reraise_exception
from webdataset.tariterators import group_by_keys, tar_file_expander

from ssl_ser.data.tar_samples import TarFormatError, read_samples


def make_tar(members: list[tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ours(blob: bytes) -> list[dict]:
    return list(read_samples(io.BytesIO(blob), "u"))


def webdatasets(blob: bytes) -> list[dict]:
    files = tar_file_expander([{"url": "u", "stream": io.BytesIO(blob)}], handler=reraise_exception)
    return list(group_by_keys(files, handler=reraise_exception))


class Trickle(io.RawIOBase):
    """A pipe-like stream that returns at most 100 bytes per read."""

    def __init__(self, blob: bytes) -> None:
        self.source = io.BytesIO(blob)

    def read(self, size: int = -1) -> bytes:
        return self.source.read(100 if size < 0 else min(size, 100))


def test_shards_of_the_builder_read_as_webdataset_reads_them(shard_sets: dict[str, Path]) -> None:
    for shard in sorted(shard_sets["many"].glob("shard-*.tar")):
        blob = shard.read_bytes()
        assert ours(blob) == webdatasets(blob) and len(ours(blob)) == 8
        assert list(read_samples(Trickle(blob), "u")) == webdatasets(blob)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_meta_members_and_case_are_handled_like_webdataset(fmt: int) -> None:
    folder = "d" * 120 if fmt != tarfile.USTAR_FORMAT else "d" * 90  # ustar: prefix field
    members = [(f"{folder}/a.FLAC", b"1" * 700), (f"{folder}/a.json", b"{}"), ("__meta__", b"x"),
               ("b.x.json", b"2"), ("b.x.flac", b""), ("noext", b"3"), ("c.json", b"4")]
    blob = make_tar(members, fmt)
    assert ours(blob) == webdatasets(blob)
    assert [s["__key__"] for s in ours(blob)] == [f"{folder}/a", "b", "c"]
    assert ours(blob)[0]["flac"] == b"1" * 700


def test_non_ascii_names_use_pax_headers() -> None:
    blob = make_tar([("émotion-ü.json", b"{}"), ("émotion-ü.flac", b"f")])
    assert ours(blob) == webdatasets(blob) and ours(blob)[0]["__key__"] == "émotion-ü"


def test_a_compressed_shard_is_read_through_tarfile() -> None:
    blob = gzip.compress(make_tar([("a.json", b"{}"), ("a.flac", b"f"), ("b.json", b"[]")]))
    assert ours(blob) == webdatasets(blob) and len(ours(blob)) == 2


def test_damage_raises_after_the_samples_before_it() -> None:
    blob = make_tar([(f"k{i}.json", b"x" * 600) for i in range(4)])
    bad_sum = bytearray(blob)
    bad_sum[2 * 1536] ^= 0xFF  # the third member's header
    for damaged in (blob[:1536 * 2 + 700], bytes(bad_sum), blob[:1536 * 2 + 100]):
        got = []
        with pytest.raises(TarFormatError):
            for sample in read_samples(io.BytesIO(damaged), "u"):
                got.append(sample["__key__"])
        assert got[:1] == ["k0"] and len(got) <= 2
    assert [s["__key__"] for s in ours(blob[:1536 * 2])] == ["k0", "k1"]  # clean end at a header


def test_a_repeated_member_is_an_error() -> None:
    with pytest.raises(TarFormatError, match="duplicate"):
        ours(make_tar([("a.json", b"1"), ("a.json", b"2")]))


def test_garbage_and_empty_streams() -> None:
    for blob in (b"this is not a tar file" * 50, b""):  # as tarfile: an empty file is damage
        with pytest.raises(TarFormatError):
            ours(blob)
