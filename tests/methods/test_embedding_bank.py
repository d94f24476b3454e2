"""The embedding bank (DeepEmoCluster ``embeddings: bank``): keys (lookup, update, overwrite),
ages, ranks (overlapping keys held once, the freshest record wins), and the method around it:
training records, the warm-up, re-clustering from the bank, the full-pass check, and a
state_dict round trip that gives the identical next clustering."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ssl_ser.config import ConfigError, from_dict
from ssl_ser.labels import IGNORE, LabelSpace
from ssl_ser.methods.deepemocluster import DeepEmoCluster, DeepEmoClusterOptions
from ssl_ser.methods.embedding_bank import EmbeddingBank, Records, owners
from ssl_ser.methods.pseudo_table import PseudoLabelTable, key_hashes
from ssl_ser.models import build_model
from tests.fakes import FakeContext
from tests.methods.test_deepemocluster import on_ranks


def merged(bank: EmbeddingBank) -> EmbeddingBank:
    bank.merge(bank.take_pending())
    return bank


def vector_of(bank: EmbeddingBank, key: str) -> np.ndarray:
    assert bank.entries is not None
    pos = bank.positions(key_hashes([key]))[0]
    assert pos >= 0, key
    return bank.entries.vectors[pos]


# --- one shard ----------------------------------------------------------------------------------

def test_records_are_found_by_key_and_a_fresher_record_overwrites() -> None:
    bank = EmbeddingBank("float32")
    bank.record(key_hashes(["a", "b", "c"]), np.array([[1, 1], [2, 2], [3, 3]], np.float32), stamp=5, epoch=0,
                known=np.array([0, IGNORE, 2]))
    merged(bank)
    assert len(bank) == 3 and bank.positions(key_hashes(["zz"])).tolist() == [-1]
    assert vector_of(bank, "b").tolist() == [2, 2]
    bank.record(key_hashes(["b"]), torch.tensor([[7.0, 7.0]], requires_grad=True), stamp=9, epoch=1)  # fresher
    bank.record(key_hashes(["c"]), np.array([[0, 0]], np.float32), stamp=4, epoch=1)  # older: ignored
    bank.record(key_hashes(["d", "d"]), np.array([[4, 4], [5, 5]], np.float32), stamp=9, epoch=1)  # same step
    merged(bank)
    assert len(bank) == 4 and not bank.pending
    assert vector_of(bank, "b").tolist() == [7, 7] and vector_of(bank, "c").tolist() == [3, 3]
    assert vector_of(bank, "d").tolist() == [5, 5]  # the later row of the same step
    assert bank.entries is not None and (bank.entries.hashes[1:] > bank.entries.hashes[:-1]).all()  # the index
    pos = bank.positions(key_hashes(["a", "c", "b"]))
    assert bank.entries.known[pos].tolist() == [0, 2, IGNORE]  # labels stay with their key across records


def test_float16_storage_is_half_the_float32_bank() -> None:
    x = np.random.default_rng(0).standard_normal((100, 64)).astype(np.float32)
    small, large = EmbeddingBank("float16"), EmbeddingBank("float32")
    for bank in (small, large):
        bank.record(key_hashes([f"k{i}" for i in range(100)]), x, stamp=1, epoch=0)
        merged(bank)
    assert small.entries is not None and small.entries.vectors.dtype == np.float16
    assert small.nbytes - 100 * (8 + 8 + 4 + 4 + 4) == (large.nbytes - 100 * (8 + 8 + 4 + 4 + 4)) // 2
    np.testing.assert_allclose(vector_of(small, "k7"), x[7], rtol=1e-3, atol=1e-3)


def test_ages_grow_per_epoch_and_reset_when_recorded_and_max_age_leaves_stale_keys_out() -> None:
    bank = EmbeddingBank("float32")
    bank.record(key_hashes(["a", "b"]), np.zeros((2, 2), np.float32), stamp=1, epoch=0)
    merged(bank)
    pos = bank.positions(key_hashes(["a", "b"]))
    assert bank.ages(1)[pos].tolist() == [1, 1] and bank.ages(3)[pos].tolist() == [3, 3]
    bank.record(key_hashes(["b"]), np.ones((1, 2), np.float32), stamp=30, epoch=3)
    merged(bank)
    assert bank.ages(3)[pos].tolist() == [3, 0] and bank.ages(4)[pos].tolist() == [4, 1]
    assert PseudoLabelTable(bank.usable(4, max_age=2).hashes, np.zeros(1)).lookup(["a", "b"]).tolist() == [IGNORE, 0]
    assert len(bank.usable(4, max_age=None)) == 2


# --- ranks ----------------------------------------------------------------------------------

def test_two_ranks_with_overlapping_keys_hold_each_key_once_with_its_freshest_record() -> None:
    keys = [f"utt{i}" for i in range(12)]
    # rank 0 saw utt0-7, rank 1 utt4-11; of the shared ones, utt4-5 are fresher on rank 1, utt6
    # on rank 0, utt7 was recorded in the same step on both (the higher rank's record wins)
    seen = {0: (keys[:8], [10] * 4 + [10, 10, 20, 15]), 1: (keys[4:], [12, 12, 8, 15] + [12] * 4)}

    def rank_work(rank: int, comm) -> tuple[Records, Records | None]:
        bank = EmbeddingBank("float32")
        names, stamps = seen[rank]
        for name, stamp in zip(names, stamps):
            bank.record(key_hashes([name]), np.full((1, 3), 100 * rank + int(name[3:]), np.float32),
                        stamp=stamp, epoch=stamp // 10)
        bank.sync(comm)
        return bank.entries, bank.gather(comm)

    (mine0, whole), (mine1, nothing) = on_ranks(2, rank_work)
    assert nothing is None
    assert set(mine0.hashes.tolist()).isdisjoint(mine1.hashes.tolist())  # each key held once
    assert (owners(mine0.hashes, 2) == 0).all() and (owners(mine1.hashes, 2) == 1).all()
    assert sorted(mine0.hashes.tolist() + mine1.hashes.tolist()) == sorted(key_hashes(keys).tolist())
    bank = EmbeddingBank("float32")
    bank.entries = whole
    source = {k: int(vector_of(bank, k)[0]) // 100 for k in keys}  # which rank's record survived
    assert source == {**{k: 0 for k in keys[:4]}, "utt4": 1, "utt5": 1, "utt6": 0, "utt7": 1,
                      **{k: 1 for k in keys[8:]}}
    # a resume with 3 ranks: each loads the whole bank and keeps its own keys
    state = EmbeddingBank.state(whole)
    shards = []
    for rank in range(3):
        shard = EmbeddingBank("float32")
        shard.load_state(state, rank, 3)
        assert shard.entries is not None and (owners(shard.entries.hashes, 3) == rank).all()
        shards.append(shard.entries.hashes)
    assert np.array_equal(np.sort(np.concatenate(shards)), whole.hashes)


# --- the method -------------------------------------------------------------------------------

KEYS = [f"ravdess-{i:03d}" for i in range(40)]


def full_pass_data(seed: int = 0) -> tuple[list[str], np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 32)).astype(np.float32) * 4
    x = centres[np.arange(40) % 4] + rng.standard_normal((40, 32)).astype(np.float32)
    rows = [{"labelled": i % 5 == 0, "emotion": "abcd"[i % 4], "corpus": "ravdess",
             "extra": {} if i % 5 == 0 else {"hidden_emotion": "abcd"[i % 4]}} for i in range(40)]
    return KEYS, x, rows


def bank_method(rank: int = 0, world: int = 1, *, mixup: float = 0.0,
                **bank: object) -> tuple[DeepEmoCluster, FakeContext]:
    """The method on one rank of ``world``, whose full pass yields every ``world``-th key."""
    torch.manual_seed(0)
    model = build_model("vgg16_cluster", in_features=32, num_classes=4, size="tiny", num_clusters=4)
    job = SimpleNamespace(model={"name": "vgg16_cluster", "size": "tiny"},
                          data=SimpleNamespace(attributes=[], train=["L"], unlabelled=["U"], unlabelled_weight=0.5,
                                               valid=[], segment=None),
                          train=SimpleNamespace(seed=0, mixup=mixup))
    labels = LabelSpace("emotion", ["a", "b", "c", "d"], {})
    ctx = FakeContext(job=job, labels=labels, bare_model=model, rank=rank, world_size=world,
                      distributed=world > 1, optimizer=torch.optim.Adam(model.parameters(), lr=0.01))
    calls: list[int] = []

    def embed(specs: list[str], *, gather: bool = True, max_batches: int | None = None):
        calls.append(1)
        keys, x, rows = full_pass_data()
        return keys[rank::world], x[rank::world], rows[rank::world]

    ctx.embed = embed  # type: ignore[method-assign]
    ctx.calls = calls  # type: ignore[attr-defined]
    opts = from_dict(DeepEmoClusterOptions, {"num_clusters": 4, "kmeans": {"niter": 5}, "emotion_weight": 1.0,
                                             "embeddings": "bank", "bank": bank}, prefix="method")
    return DeepEmoCluster(opts, ctx), ctx


def train_batches(m: DeepEmoCluster, ctx: FakeContext, epoch: int, batches: int = 3) -> None:
    """Training steps that draw 8 keys each, with embeddings that moved since the full pass."""
    g = torch.Generator().manual_seed(epoch)
    for _ in range(batches):
        pick = torch.randperm(40, generator=g)[:8].tolist()
        x = torch.from_numpy(full_pass_data()[1][pick]) + torch.randn(8, 32, generator=g)
        outputs = {"cluster_logits": torch.randn(8, 4, requires_grad=True), "logits": torch.randn(8, 4),
                   "embedding": x.requires_grad_()}
        targets = SimpleNamespace(keys=[KEYS[i] for i in pick], label=torch.tensor([i % 4 for i in pick]),
                                  labelled=torch.tensor([i % 5 == 0 for i in pick]), attributes=torch.zeros(8, 0))
        m.loss(outputs, targets)
        ctx.step += 1


def test_the_bank_warms_up_with_a_full_pass_then_reclusters_its_training_records() -> None:
    m, ctx = bank_method()
    first = m.on_epoch_start(0)
    assert ctx.calls == [1] and first["bank_warmup"] == 1 and "embed_time_s" in first  # warm-up: full pass
    assert len(m.bank) == 40 and m.table.lookup(KEYS).min() >= 0
    train_batches(m, ctx, epoch=0)
    pending = m.bank.take_pending()
    assert len(pending) == 24 and set(pending.stamps.tolist()) == {1, 2, 3} and set(pending.epochs.tolist()) == {0}
    m.bank.pending = [pending]
    m.validate(0)  # merges the epoch's records
    assert not m.bank.pending and len(m.bank) == 40
    second = m.on_epoch_start(1)
    assert ctx.calls == [1]  # no full pass: the bank
    assert second["bank_entries"] == 40 and second["bank_used"] == 40 and "embed_time_s" not in second
    assert 0 < second["bank_age_mean"] < 2 and second["bank_age_max"] == 2  # warm-up entries: epoch -1
    assert 0 <= second["purity_hidden"] <= 1 and second["kmeans_points"] == 40


def test_training_records_carry_the_known_labels_and_the_step_after_the_current_one() -> None:
    m, ctx = bank_method()
    m.on_epoch_start(0)
    ctx.step = 7
    train_batches(m, ctx, epoch=0, batches=1)
    rec = m.bank.take_pending()
    assert rec.stamps.tolist() == [8] * 8  # fresher than the warm-up (stamp 7) of the same step
    index = [KEYS[i] for i in range(40)]
    expected = []
    for h in rec.hashes:
        i = [j for j, k in enumerate(index) if key_hashes([k])[0] == h][0]
        expected.append(i % 4 if i % 5 == 0 else IGNORE)
    assert rec.known.tolist() == expected and (rec.hidden == IGNORE).all()


def test_the_full_pass_check_agrees_exactly_when_the_bank_holds_the_full_pass() -> None:
    m, ctx = bank_method(check_full=True)
    m.on_epoch_start(0)
    stats = m.on_epoch_start(1)  # nothing recorded: the bank is the warm-up's full pass
    assert ctx.calls == [1, 1] and stats["nmi_full"] == pytest.approx(1.0) and stats["check_time_s"] >= 0
    assert stats["full_purity_hidden"] == pytest.approx(stats["purity_hidden"])
    assert "nmi_full_fresh" not in stats  # every entry is the warm-up's: none recorded in the last epoch
    m.validate(1)
    train_batches(m, ctx, epoch=1, batches=4)
    m.validate(1)
    stats = m.on_epoch_start(2)  # 32 draws (some twice) were recorded in epoch 1
    assert 0 <= stats["nmi_full_fresh"] <= 1 and 0.3 < stats["bank_fresh"] < 0.8


def test_warmup_epochs_embed_everything_until_the_bank_takes_over() -> None:
    m, ctx = bank_method(warmup_epochs=2)
    assert "bank_warmup" in m.on_epoch_start(0) and "bank_warmup" in m.on_epoch_start(1)
    assert "bank_entries" in m.on_epoch_start(2) and ctx.calls == [1, 1]


def test_a_state_dict_round_trip_gives_the_identical_next_clustering(tmp_path) -> None:
    m, ctx = bank_method()
    m.on_epoch_start(0)
    train_batches(m, ctx, epoch=0)
    m.validate(0)
    torch.save(m.state_dict(), tmp_path / "method.pt")
    state = torch.load(tmp_path / "method.pt", weights_only=True)
    assert state["bank"]["vectors"].dtype == torch.float16 and len(state["bank"]["hashes"]) == 40
    resumed, ctx2 = bank_method()
    ctx2.step = ctx.step
    resumed.load_state_dict(state)
    assert resumed.bank_ready and np.array_equal(resumed.table.hashes, m.table.hashes)
    for method, context in ((m, ctx), (resumed, ctx2)):
        train_batches(method, context, epoch=1)
        method.validate(1)
    a, b = m.on_epoch_start(2), resumed.on_epoch_start(2)
    assert ctx2.calls == []  # the resumed run never embedded everything
    assert np.array_equal(m.table.hashes, resumed.table.hashes) and np.array_equal(m.table.values, resumed.table.values)
    assert np.array_equal(m.pseudo.centroids, resumed.pseudo.centroids)
    assert a["kmeans_objective"] == b["kmeans_objective"]


def test_a_checkpoint_without_a_bank_is_followed_by_a_warm_up() -> None:
    m, ctx = bank_method()
    m.on_epoch_start(0)
    state = m.state_dict()
    del state["bank"]  # e.g. a checkpoint of embeddings: full
    resumed, ctx2 = bank_method()
    resumed.load_state_dict(state)
    assert not resumed.bank_ready
    assert "bank_warmup" in resumed.on_epoch_start(1) and ctx2.calls == [1]


def test_an_old_checkpoint_with_a_key_list_is_hashed_on_load() -> None:
    m, _ = bank_method()
    assignment = torch.arange(40) % 4
    m.load_state_dict({"keys": KEYS, "assignment": assignment, "centroids": torch.zeros(4, 32),
                       "sizes": torch.full((4,), 10), "labels": torch.full((40,), IGNORE),
                       "clustered_epoch": 3, "num_clusters": 4})
    assert m.table.lookup(KEYS).tolist() == assignment.tolist() and m.clustered_epoch == 3
    assert m.table.lookup(["never-seen"]).tolist() == [IGNORE]


def test_two_ranks_checkpoint_the_whole_bank_and_a_resume_reclusters_identically() -> None:
    """Two thread-simulated ranks draw overlapping keys; rank 0's checkpoint holds every key
    once, and two fresh ranks resumed from it re-cluster exactly as the ranks that went on."""

    def go_on(m: DeepEmoCluster, ctx: FakeContext, rank: int) -> tuple:
        train_batches(m, ctx, epoch=20 + rank)
        m.validate(1)
        stats = m.on_epoch_start(2)
        return m.table, m.pseudo.centroids, stats

    def first(rank: int, comm) -> tuple:
        m, ctx = bank_method(rank, 2)
        m.comm = lambda: comm  # type: ignore[method-assign]
        m.on_epoch_start(0)
        train_batches(m, ctx, epoch=10 + rank)
        m.validate(0)
        state = m.state_dict() if rank == 0 else None
        return (state, *go_on(m, ctx, rank))

    ran = on_ranks(2, first)
    assert all(isinstance(r, tuple) for r in ran), ran
    state = ran[0][0]
    assert len(state["bank"]["hashes"]) == 40  # every key once, from both ranks' shards
    assert np.array_equal(np.sort(state["bank"]["hashes"].numpy().view(np.uint64)), np.sort(key_hashes(KEYS)))

    def resumed(rank: int, comm) -> tuple:
        m, ctx = bank_method(rank, 2)
        m.comm = lambda: comm  # type: ignore[method-assign]
        m.load_state_dict(state)
        ctx.step = 3
        assert m.bank.entries is not None and (owners(m.bank.entries.hashes, 2) == rank).all()
        return go_on(m, ctx, rank)

    again = on_ranks(2, resumed)
    assert all(isinstance(r, tuple) for r in again), again
    for rank in range(2):
        table, centroids, stats = ran[rank][1:]
        table2, centroids2, stats2 = again[rank]
        assert len(table) == 40 and np.array_equal(table.hashes, ran[0][1].hashes)  # the same on both ranks
        assert np.array_equal(table.values, ran[0][1].values)
        assert np.array_equal(table.hashes, table2.hashes) and np.array_equal(table.values, table2.values)
        assert np.array_equal(centroids, centroids2) and stats["bank_entries"] == stats2["bank_entries"] == 40


def test_bank_refuses_mixup() -> None:
    # mixup feeds the training forward pass mixed inputs: their embeddings belong to no key
    with pytest.raises(ConfigError, match="train.mixup"):
        bank_method(mixup=0.4)
