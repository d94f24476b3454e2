"""DeepEmoCluster: the pseudo-label table over ranks (both clustering modes), the loss against
references, the head reset, config checks, debug runs (metrics, checkpointed pseudo-labels,
exact resume) and one 2-worker Ray run with a small labelled fraction."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ssl_ser import kmeans
from ssl_ser.config import ConfigError, from_dict
from ssl_ser.distributed import LocalCollective
from ssl_ser.kmeans import KMeansConfig, KMeansError
from ssl_ser.labels import IGNORE, LabelSpace
from ssl_ser.methods.classification import balance_weights
from ssl_ser.methods.deepemocluster import (
    DeepEmoCluster,
    DeepEmoClusterOptions,
    PseudoLabels,
    cluster,
    epoch_seed,
    hidden_agreement,
)
from ssl_ser.methods.pseudo_labels import nearest_centroid_head
from ssl_ser.methods.pseudo_table import PseudoLabelTable, key_hashes
from ssl_ser.metrics import ccc_loss, nmi, purity
from ssl_ser.models import build_model
from tests.fakes import FakeContext
from tests.test_kmeans import ThreadGroup, blobs


def on_ranks(world: int, fn) -> list:
    """``fn(rank, comm)`` on ``world`` thread-simulated ranks."""
    import threading

    group = ThreadGroup(world)
    out: list = [None] * world

    def work(rank: int) -> None:
        try:
            out[rank] = fn(rank, group.member(rank))
        except BaseException as err:  # noqa: BLE001 - returned to the caller (a rank that
            out[rank] = err              # fails alone leaves the others to the barrier's timeout)

    threads = [threading.Thread(target=work, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


# --- the pseudo-label table -------------------------------------------------------------------

def test_table_covers_every_key_once_identical_on_both_ranks_in_both_modes() -> None:
    x = blobs(n=300, centres=4)
    keys = [f"utt{i:04d}" for i in range(len(x))]
    labels = np.where(np.arange(len(x)) % 3 == 0, np.arange(len(x)) % 4, IGNORE)
    shares = [slice(0, 130), slice(130, len(x))]  # each rank embedded its own shards
    cfg = KMeansConfig(niter=6)
    tables = {}
    for mode in ("gathered", "distributed"):
        results = on_ranks(2, lambda r, comm, mode=mode: cluster(keys[shares[r]], x[shares[r]], labels[shares[r]], 5,
                                                                 seed=3, cfg=cfg, mode=mode, comm=comm))
        assert all(isinstance(p, PseudoLabels) for p in results), results
        a, b = results
        assert np.array_equal(a.hashes, b.hashes) and np.array_equal(a.hashes, key_hashes(keys))  # rank order
        assert np.array_equal(a.assignment, b.assignment) and np.array_equal(a.centroids, b.centroids)
        assert np.array_equal(a.labels, labels) and a.sizes.sum() == len(keys)
        tables[mode] = a.table().lookup(keys)
        assert len(a.table()) == len(keys) and (tables[mode] != IGNORE).all()
    assert np.array_equal(tables["gathered"], tables["distributed"])
    single = cluster(keys, x, labels, 5, seed=3, cfg=cfg, comm=LocalCollective())
    assert np.array_equal(single.table().lookup(keys), tables["gathered"])


def test_hidden_labels_travel_with_their_keys_and_score_the_clusters_in_both_modes() -> None:
    rng = np.random.default_rng(0)
    truth = np.arange(200) % 4
    x = (rng.standard_normal((4, 8)) * 8)[truth] + rng.standard_normal((200, 8))
    x = x.astype(np.float32)
    keys = [f"utt{i:04d}" for i in range(len(x))]
    hidden = np.where(np.arange(len(x)) % 2 == 0, truth, IGNORE)  # half keep a hidden label
    labels = np.full(len(x), IGNORE)
    shares = [slice(0, 90), slice(90, len(x))]
    for mode in ("gathered", "distributed"):
        a, b = on_ranks(2, lambda r, comm, mode=mode: cluster(keys[shares[r]], x[shares[r]], labels[shares[r]], 4,
                                                              seed=1, cfg=KMeansConfig(niter=10), mode=mode,
                                                              comm=comm, hidden=hidden[shares[r]]))
        assert np.array_equal(a.hidden, hidden) and np.array_equal(b.hidden, hidden)
        scores = hidden_agreement(a)
        assert scores == hidden_agreement(b)
        has = hidden != IGNORE
        assert scores["nmi_hidden"] == pytest.approx(nmi(a.assignment[has], truth[has]))
        assert scores["purity_hidden"] == pytest.approx(purity(a.assignment[has], truth[has]))
        assert scores["purity_hidden"] > 0.9  # well-separated blobs: the clusters are the labels
    none = cluster(keys, x, labels, 4, seed=1, cfg=KMeansConfig(niter=3), comm=LocalCollective())
    assert hidden_agreement(none) == {}  # nothing hidden: nothing claimed


def _out_of_memory(*args: object, **kwargs: object) -> None:
    raise RuntimeError("FAISS: out of GPU memory")


@pytest.mark.parametrize("k, broken_fit, message", [
    (10, None, "6 points, k=10"),  # a refused input (fewer points than clusters)
    (2, _out_of_memory, "RuntimeError: FAISS: out of GPU memory"),  # anything else that breaks
])
def test_a_failure_on_rank_0_reaches_every_rank(monkeypatch: pytest.MonkeyPatch, k: int, broken_fit,
                                                 message: str) -> None:
    if broken_fit is not None:
        monkeypatch.setattr(kmeans, "fit", broken_fit)
    x = blobs(n=6)
    results = on_ranks(2, lambda r, comm: cluster([f"k{r}{i}" for i in range(3)], x[3 * r:3 * r + 3],
                                                  np.full(3, IGNORE), k, seed=0, cfg=KMeansConfig(),
                                                  comm=comm))
    for err in results:
        assert isinstance(err, KMeansError) and message in str(err)


def test_nearest_centroid_head_reproduces_the_assignment_over_ranks_and_scales() -> None:
    import threading

    x = blobs(n=400, d=6, centres=4, dyadic=False) * 3
    hashes = key_hashes([f"k{i}" for i in range(len(x))])
    assignment = kmeans.fit(x, 4, seed=0, cfg=KMeansConfig(niter=20)).assignment  # K = 5 below: 4 is empty
    table = PseudoLabelTable.from_hashes(hashes, assignment)
    weight, bias = nearest_centroid_head(hashes, x, table, 5, LocalCollective())
    logits = x @ weight.T + bias
    assert np.array_equal(logits.argmax(1), assignment)
    assert np.all(weight[4] == 0) and bias[4] < bias[:4].min()
    # the logits are -|x - mu_k|^2 / (2 s) up to a per-row constant: scale-free
    w10, b10 = nearest_centroid_head(hashes, x * 10, table, 5, LocalCollective())
    np.testing.assert_allclose(((x * 10) @ w10.T + b10) - (x @ weight.T + bias),
                               np.repeat((((x * 10) @ w10.T + b10) - (x @ weight.T + bias))[:, :1], 5, 1), rtol=1e-3,
                               atol=1e-2)
    # two ranks holding halves (one with a key the table lacks): the same head as one process
    group, out = ThreadGroup(2), [None, None]
    extra = key_hashes(["unknown"])

    def work(rank: int) -> None:
        half = slice(0, 150) if rank == 0 else slice(150, None)
        h, v = hashes[half], x[half]
        if rank == 1:
            h, v = np.concatenate([h, extra]), np.concatenate([v, np.full((1, 6), 1e6, np.float32)])
        out[rank] = nearest_centroid_head(h, v, table, 5, group.member(rank))

    threads = [threading.Thread(target=work, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w, b in out:
        np.testing.assert_allclose(w, weight, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, bias, rtol=1e-4, atol=1e-4)


def test_centroid_head_init_replaces_the_random_head() -> None:
    torch.manual_seed(0)
    model = build_model("vgg16_cluster", in_features=32, num_classes=4, size="tiny", num_clusters=3)
    m = method({"num_clusters": 3, "head_init": "centroids"}, model=model)
    x = blobs(n=60, d=model.embedding_dim, centres=3, dyadic=False)
    keys = [f"k{i}" for i in range(len(x))]
    install(m, {k: int(a) for k, a in zip(keys, kmeans.fit(x, 3, seed=0, cfg=KMeansConfig(niter=10)).assignment)},
            3)
    m.reset_head(epoch=1, points=(key_hashes(keys), x))
    with torch.no_grad():
        predicted = model.cluster_head(torch.from_numpy(x)).argmax(1).numpy()
    assert np.array_equal(predicted, m.table.lookup_hashes(key_hashes(keys)))
    assert model.cluster_head.weight not in m.ctx.optimizer.state


def test_epoch_seeds_are_fresh_per_epoch_and_reproducible() -> None:
    seeds = [epoch_seed(0, e, "kmeans") for e in range(20)]
    assert len(set(seeds)) == 20 and seeds == [epoch_seed(0, e, "kmeans") for e in range(20)]
    assert epoch_seed(1, 0, "kmeans") != seeds[0] != epoch_seed(0, 0, "cluster-head")


# --- the loss ---------------------------------------------------------------------------------

def context(attributes=("arousal", "valence", "dominance"), model=None, **model_section) -> FakeContext:
    job = SimpleNamespace(model={"name": "vgg16_cluster", "size": "tiny", **model_section},
                          data=SimpleNamespace(attributes=list(attributes), train=["L"], unlabelled=["U"],
                                               unlabelled_weight=0.7),
                          train=SimpleNamespace(seed=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01) if model is not None else None
    return FakeContext(job=job, labels=LabelSpace("emotion", ["a", "b", "c", "d"], {}), bare_model=model,
                       optimizer=optimizer)


def method(options: dict | None = None, **context_kwargs) -> DeepEmoCluster:
    opts = from_dict(DeepEmoClusterOptions, options or {}, prefix="method")
    return DeepEmoCluster(opts, context(**context_kwargs))


def install(m: DeepEmoCluster, table: dict[str, int], k: int) -> None:
    sizes = np.bincount(list(table.values()), minlength=k)
    m._install(PseudoLabels(hashes=key_hashes(list(table)), assignment=np.array(list(table.values())),
                            centroids=np.zeros((k, 2), np.float32), sizes=sizes,
                            labels=np.full(len(table), IGNORE)), epoch=0)


def batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    outputs = {"cluster_logits": torch.randn(6, 3, generator=g, requires_grad=True),
               "attributes": torch.randn(6, 3, generator=g, requires_grad=True),
               "logits": torch.randn(6, 4, generator=g, requires_grad=True),
               "embedding": torch.randn(6, 5, generator=g)}
    gold = torch.rand(6, 3, generator=g) * 4 + 1
    gold[5] = float("nan")  # a labelled row without attributes
    targets = SimpleNamespace(keys=["a", "b", "c", "d", "e", "a"],
                              label=torch.tensor([0, 1, 2, 3, 1, IGNORE]),
                              attributes=gold, labelled=torch.tensor([True, True, False, True, False, True]))
    return outputs, targets


def test_loss_is_cluster_ce_plus_ccc_plus_emotion_ce_on_the_right_rows() -> None:
    m = method({"num_clusters": 3, "cluster_weight": 1.0, "attribute_weight": 0.5, "emotion_weight": 2.0})
    install(m, {"a": 0, "b": 2, "c": 2, "d": 1, "x": 1}, 3)  # "e" was never embedded
    outputs, targets = batch()
    total, logs = m.loss(outputs, targets)
    known = torch.tensor([True, True, True, True, False, True])
    pseudo = torch.tensor([0, 2, 2, 1, 0, 0])[known]
    weight = balance_weights(np.array([1, 2, 2]))
    ce = F.cross_entropy(outputs["cluster_logits"][known], pseudo, weight=weight)
    labelled = targets.labelled
    ccc = ccc_loss(outputs["attributes"], targets.attributes,
                   torch.isfinite(targets.attributes) & labelled[:, None])  # rows 0, 1, 3
    ccc_ref = ccc_loss(outputs["attributes"][[0, 1, 3]], targets.attributes[[0, 1, 3]])
    emo = F.cross_entropy(outputs["logits"][[0, 1, 3]], targets.label[[0, 1, 3]])
    assert ccc.item() == pytest.approx(ccc_ref.item())
    assert total.item() == pytest.approx((ce + 0.5 * ccc_ref + 2.0 * emo).item(), rel=1e-6)
    assert logs["cluster_ce"] == pytest.approx(ce.item()) and logs["unclustered"] == pytest.approx(1 / 6)
    assert m.unclustered == 1
    total.backward()
    assert outputs["cluster_logits"].grad[4].abs().sum() == 0  # the unembedded row: no cluster loss


def test_loss_without_pseudo_labels_or_labels_keeps_the_graph() -> None:
    m = method({"num_clusters": 3, "balance": "none"})
    outputs, targets = batch()
    targets.labelled[:] = False
    total, logs = m.loss(outputs, targets)  # nothing clustered yet, nothing labelled
    assert total.item() == 0.0 and logs == {"unclustered": 1.0}
    total.backward()  # every head is in the graph (DDP)
    assert all(outputs[k].grad is not None for k in ("cluster_logits", "attributes", "logits"))


def test_warmup_epochs_train_the_labelled_objective_alone_then_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    m = method({"num_clusters": 3, "warmup_epochs": 2, "emotion_weight": 1.0, "attribute_weight": 0.0})
    passes = []
    monkeypatch.setattr(m, "full_pass", lambda: passes.append(m.epoch) or pytest.fail("embedded in warm-up"))
    for epoch in (0, 1):
        assert m.on_epoch_start(epoch) == {"reclustered": 0.0, "warmup": 1.0}
        outputs, targets = batch()
        total, logs = m.loss(outputs, targets)
        emo = F.cross_entropy(outputs["logits"][[0, 1, 3]], targets.label[[0, 1, 3]])
        assert total.item() == pytest.approx(emo.item()) and set(logs) == {"emotion_ce"}
        assert m.unclustered == 0  # no pseudo-labels expected yet: nothing counted missing
        total.backward()
        assert outputs["cluster_logits"].grad.abs().sum() == 0
    with pytest.raises(pytest.fail.Exception, match="embedded in warm-up"):
        m.on_epoch_start(2)  # the first clustering embeds (here: the patched pass)
    assert passes == [2]


def test_training_sources_mix_labelled_and_unlabelled() -> None:
    m = method({"num_clusters": 3})
    assert m.training_sources() == [(["L"], pytest.approx(0.3)), (["U"], 0.7)]
    m.ctx.job.data.unlabelled = []
    assert m.training_sources() == [(["L"], 1.0)]
    m.ctx.job.data.unlabelled, m.ctx.job.data.unlabelled_weight = ["U"], 1.0
    assert m.training_sources() == [(["U"], 1.0)]


def test_reset_head_is_seeded_in_place_and_clears_its_optimiser_state() -> None:
    torch.manual_seed(0)
    model = build_model("vgg16_cluster", in_features=32, num_classes=4, size="tiny", num_clusters=3)
    m = method({"num_clusters": 3}, model=model)
    model(torch.randn(2, 32, 40), torch.tensor([40, 30]))["cluster_logits"].sum().backward()
    m.ctx.optimizer.step()
    head = model.cluster_head
    assert head.weight in m.ctx.optimizer.state
    rng = torch.get_rng_state()
    m.reset_head(epoch=1)
    assert torch.equal(torch.get_rng_state(), rng)  # the global RNG is untouched
    first = head.weight.detach().clone()
    assert model.cluster_head is head and head.weight not in m.ctx.optimizer.state
    assert model.fc[1].weight in m.ctx.optimizer.state  # the body keeps its Adam moments
    m.reset_head(epoch=1)
    assert torch.equal(head.weight, first)  # same (seed, epoch): the same head on every rank
    m.reset_head(epoch=2)
    assert not torch.equal(head.weight, first)


def test_config_is_checked_before_training(demo_shards, make_deepemocluster_job, tmp_path: Path) -> None:
    from ssl_ser.job_loader import job_from_dict

    def job(**sections):
        return job_from_dict(make_deepemocluster_job(demo_shards, tmp_path, **sections))

    with pytest.raises(ConfigError, match="needs a model with a cluster head.*'resnet34_xvector'"):
        job(model={"name": "resnet34_xvector", "size": "tiny"}, frontend={"name": "logmel"})
    with pytest.raises(ConfigError, match=r"model.num_clusters \(7\) differs from method.num_clusters \(4\)"):
        job(model={"name": "vgg16_cluster", "size": "tiny", "num_clusters": 7})
    with pytest.raises(ConfigError, match="no supervised objective"):
        job(data={"attributes": []}, method={"name": "deepemocluster", "emotion_weight": 0.0})
    with pytest.raises(ConfigError, match="method.kmeans.pca_dim"):
        job(method={"name": "deepemocluster", "kmeans": {"pca_dim": 0}})
    with pytest.raises(ConfigError, match="method.clustering"):
        job(method={"name": "deepemocluster", "clustering": "everywhere"})


# --- debug runs -------------------------------------------------------------------------------

def _history(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in rows]


@pytest.fixture(scope="module")
def runs(demo_shards, tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted 3-epoch debug run (re-clustering every 2nd epoch) and the same run
    interrupted after epoch 1 and resumed in a fresh process state."""
    from ssl_ser.job_loader import job_from_dict
    from ssl_ser.train.runner import run_local
    from tests.methods.conftest import deepemocluster_job

    storage = tmp_path_factory.mktemp("dec_runs")

    def job(name: str):
        return job_from_dict(deepemocluster_job(demo_shards, storage, name=name, train={"epochs": 3},
                                                method={"name": "deepemocluster", "num_clusters": 4,
                                                        "kmeans": {"niter": 5}, "emotion_weight": 0.5,
                                                        "recluster_every": 2}))

    whole = run_local(job("whole"), progress=False)
    run_interrupted_then_resumed(job("cut"), after_epoch=1)
    return SimpleNamespace(metrics=whole, whole=storage / "whole", cut=storage / "cut")


def run_interrupted_then_resumed(job, after_epoch: int) -> None:
    """``job`` run locally, interrupted once epoch ``after_epoch`` is logged, then rerun (it
    resumes from its checkpoint) in a fresh random state."""
    from ssl_ser.train.loop import Loop
    from ssl_ser.train.runner import run_local

    original = Loop._log_epoch

    def interrupt(self: Loop, metrics: dict) -> None:
        original(self, metrics)
        if metrics["epoch"] == after_epoch:
            raise KeyboardInterrupt

    Loop._log_epoch = interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            run_local(job, progress=False)
    finally:
        Loop._log_epoch = original
    torch.manual_seed(12345)
    run_local(job, progress=False)


def test_debug_run_logs_clustering_and_checkpoints_the_pseudo_labels(runs) -> None:
    from ssl_ser import checkpoint as ckpt

    history = [json.loads(x) for x in (runs.whole / "metrics.jsonl").read_text().splitlines()]
    first, second, third = history
    for key in ("pre_kmeans_objective", "pre_kmeans_time_s", "pre_embed_time_s", "pre_cluster_min",
                "pre_cluster_median", "pre_cluster_max", "pre_cluster_empty", "pre_nmi_labels",
                "train_cluster_ce", "train_ccc_loss", "train_emotion_ce", "train_unclustered",
                "valid_ccc_mean", "valid_ua"):
        assert key in first, key
    assert first["pre_reclustered"] == 1 and second["pre_reclustered"] == 0 and third["pre_reclustered"] == 1
    assert "pre_nmi_previous" not in first and 0 <= third["pre_nmi_previous"] <= 1
    # debug caps the embedding pass at 2 batches of 8: the other training rows are counted, not fatal
    assert first["pre_kmeans_points"] == 16 and first["train_unclustered"] > 0
    state = ckpt.load_state(ckpt.find_checkpoint(runs.whole, "latest"))["method"]
    table = PseudoLabelTable.from_state(state["table"])  # sorted unique hashes: every key once
    assert len(table) == 16 and state["clustered_epoch"] == 2
    assert state["centroids"].shape[0] == 4 and int(state["sizes"].sum()) == 16
    assert table.values.tolist() == np.clip(table.values, 0, 3).tolist()
    events = [json.loads(x) for x in (runs.whole / "events.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "recluster"] == [1, 3]
    assert all(e["device"].startswith("faiss on the CPU") for e in events if e["event"] == "recluster")


def test_resumed_run_continues_with_the_same_pseudo_labels(runs) -> None:
    """Epoch 2 of the resumed run trains on the table restored from the epoch-1 checkpoint,
    epoch 3 re-clusters with the epoch's seed: everything equals the uninterrupted run."""
    from ssl_ser import checkpoint as ckpt

    a = ckpt.load_state(ckpt.find_checkpoint(runs.whole, "latest"))
    b = ckpt.load_state(ckpt.find_checkpoint(runs.cut, "latest"))
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert torch.equal(a["method"]["table"]["hashes"], b["method"]["table"]["hashes"])
    assert torch.equal(a["method"]["table"]["values"], b["method"]["table"]["values"])
    assert torch.equal(a["method"]["centroids"], b["method"]["centroids"])
    assert _history(runs.whole) == _history(runs.cut)
    events = [json.loads(x) for x in (runs.cut / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == ["started", "recluster", "resumed", "recluster"]


@pytest.fixture(scope="module")
def bank_runs(demo_shards, tmp_path_factory: pytest.TempPathFactory):
    """``embeddings: bank`` through the real loop: 3 debug epochs, and the same interrupted
    after epoch 2 and resumed (the bank comes back from the checkpoint)."""
    from ssl_ser.job_loader import job_from_dict
    from ssl_ser.train.runner import run_local
    from tests.methods.conftest import deepemocluster_job

    storage = tmp_path_factory.mktemp("dec_bank_runs")

    def job(name: str):
        return job_from_dict(deepemocluster_job(demo_shards, storage, name=name, train={"epochs": 3},
                                                method={"name": "deepemocluster", "num_clusters": 4,
                                                        "kmeans": {"niter": 5}, "emotion_weight": 0.5,
                                                        "embeddings": "bank", "bank": {"check_full": True}}))

    run_local(job("whole"), progress=False)
    run_interrupted_then_resumed(job("cut"), after_epoch=2)
    return SimpleNamespace(whole=storage / "whole", cut=storage / "cut")


def test_bank_runs_recluster_from_training_records_and_resume_exactly(bank_runs) -> None:
    from ssl_ser import checkpoint as ckpt

    history = [json.loads(x) for x in (bank_runs.whole / "metrics.jsonl").read_text().splitlines()]
    first, second, third = history
    assert first["pre_bank_warmup"] == 1 and first["pre_kmeans_points"] == 16  # debug: 2 batches of 8
    for row in (second, third):  # the bank: the warm-up's 16 keys + the ones trained on since
        assert "pre_embed_time_s" not in row and row["pre_bank_entries"] > 16
        assert row["pre_kmeans_points"] == row["pre_bank_entries"] and 0 <= row["pre_nmi_full"] <= 1
        assert 0 <= row["pre_nmi_full_fresh"] <= 1 and 0 < row["pre_bank_fresh"] < 1
        assert row["train_unclustered"] < first["train_unclustered"]  # drawn keys got pseudo-labels
    a = ckpt.load_state(ckpt.find_checkpoint(bank_runs.whole, "latest"))
    b = ckpt.load_state(ckpt.find_checkpoint(bank_runs.cut, "latest"))
    for key in a["method"]["bank"]:
        assert torch.equal(a["method"]["bank"][key], b["method"]["bank"][key]), key
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert _history(bank_runs.whole) == _history(bank_runs.cut)


# --- Ray: 2 workers, distributed k-means, a small labelled fraction -----------------------------

@pytest.mark.ray
def test_two_ray_workers_cluster_every_key_once(mostly_unlabelled_shards, demo_shards, tmp_path: Path) -> None:
    import ray

    from ssl_ser import checkpoint as ckpt
    from ssl_ser.job_loader import job_from_dict
    from ssl_ser.train.runner import run_training
    from tests.methods.conftest import deepemocluster_job

    data = mostly_unlabelled_shards
    assert data.labelled * 3 < data.total  # a small labelled fraction
    job = deepemocluster_job(
        demo_shards, tmp_path, name="ray_dec",
        method={"name": "deepemocluster", "num_clusters": 4, "kmeans": {"niter": 5},
                "clustering": "distributed", "emotion_weight": 0.5},
        data={"train": [str(data.train)], "unlabelled": [str(data.unlabelled)], "valid": [str(data.valid)]},
        train={"epochs": 2, "max_steps_per_epoch": 2},
        scaling={"num_workers": 2, "resources_per_worker": {"CPU": 1}})
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        metrics = run_training(job_from_dict(job))
    finally:
        ray.shutdown()
    assert metrics["epoch"] == 2 and "valid_ccc_mean" in metrics
    assert metrics["pre_kmeans_points"] == data.total and metrics["train_unclustered"] == 0
    state = ckpt.load_state(ckpt.find_checkpoint(tmp_path / "ray_dec", "latest"))["method"]
    table = PseudoLabelTable.from_state(state["table"])
    assert np.array_equal(table.hashes, np.sort(key_hashes(data.keys)))  # every training key, once, over both ranks
    assert int(state["sizes"].sum()) == data.total


def test_emotion_cross_entropy_takes_the_class_weight_and_logit_adjustment() -> None:
    counts = torch.tensor([1.0, 1.0, 2.0, 4.0])
    ctx = context()
    ctx.counts = counts
    m = DeepEmoCluster(from_dict(DeepEmoClusterOptions, {"num_clusters": 3, "emotion_weight": 1.0,
                                                         "class_weight": "balanced", "logit_adjustment": 1.0},
                                 prefix="method"), ctx)
    install(m, {"a": 0, "b": 2, "c": 2, "d": 1, "x": 1}, 3)
    outputs, targets = batch()
    _, logs = m.loss(outputs, targets)
    prior = counts / counts.sum()
    rows = [0, 1, 3]  # labelled, with a class
    expected = F.cross_entropy(outputs["logits"][rows] + prior.log(), targets.label[rows],
                               weight=prior.reciprocal() / 4)
    assert logs["emotion_ce"] == pytest.approx(expected.item(), rel=1e-5)
