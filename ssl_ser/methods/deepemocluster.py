"""DeepEmoCluster (Lin, Sridhar and Busso, ICASSP 2021): semi-supervised SER with k-means
pseudo-labels of the model's own embeddings, after DeepCluster (Caron et al., 2018).

The per-epoch cycle, as in DeepCluster's main loop (:meth:`DeepEmoCluster.on_epoch_start`):

1. embed the labelled and unlabelled training sets (``data.train`` + ``data.unlabelled``),
   each rank its share, every embedding with its sample key;
2. k-means them (:mod:`ssl_ser.kmeans`: FAISS, GPU when the worker has one), with a fresh seed
   per epoch derived from ``(train.seed, epoch)``, optionally after PCA-whitening + L2
   (``kmeans.pca_dim``: DeepCluster; off: DeepEmoCluster). ``clustering: gathered`` sends the
   embeddings to rank 0, which clusters them; ``distributed`` runs Lloyd's iterations on all
   ranks with all-reduced centroid sums, so no rank holds every embedding (same result);
3. the assignment becomes a pseudo-label table keyed by sample key, identical on every rank,
   so the order in which the training stream delivers samples never matters;
4. the cluster head is re-initialised (in place, from a seeded generator, with its optimiser
   state cleared: cheaper than rebuilding the optimiser and DDP wrapper every epoch, and the
   same on every rank);
5. train on labelled + unlabelled data (``data.unlabelled_weight`` of the stream is
   unlabelled): ``cluster_weight`` x cross-entropy on the pseudo-labels of every sample
   (class-balanced by inverse cluster size with ``balance: weight``; empty clusters get no
   weight) + ``attribute_weight`` x (1 - CCC) on arousal/valence/dominance of labelled
   samples + optionally ``emotion_weight`` x categorical cross-entropy on labelled samples
   (for corpora with categories only).

A training sample whose key has no pseudo-label (e.g. ``--debug`` capped the embedding pass)
is left out of the cluster loss and counted (``train_unclustered``), never an error. Logged
per epoch as ``pre_*``: k-means objective and time, embedding time, cluster sizes
(min/median/max, empty), NMI with the previous epoch's assignment and with the emotion labels
of the labelled samples, and, where unlabelled rows keep their hidden emotion for analysis
(``extra.hidden_emotion``: the demo corpus, label-hiding recipes), NMI and purity of the
unlabelled samples' clusters against it (``pre_nmi_hidden``, ``pre_purity_hidden``).
Checkpoints carry the centroids and the table: a resumed run
continues with the same pseudo-labels (and, as every seed is derived from the epoch,
re-clusters exactly as the uninterrupted run would have).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from ssl_ser import kmeans
from ssl_ser.config import ConfigError, config, from_dict
from ssl_ser.distributed import Collective, LocalCollective, default_collective
from ssl_ser.job import component
from ssl_ser.labels import IGNORE
from ssl_ser.methods.base import METHODS, Method
from ssl_ser.metrics import ccc_loss, nmi, purity

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext
    from ssl_ser.job import JobConfig
    from ssl_ser.targets import Targets


@config
class DeepEmoClusterOptions:
    num_clusters: Annotated[int, Field(ge=2)] = 10
    """K, the number of k-means clusters (= outputs of the cluster head)."""
    kmeans: kmeans.KMeansConfig = dataclasses.field(default_factory=kmeans.KMeansConfig)
    """Iterations, PCA-whitening/L2 preprocessing, device (auto/cpu/gpu), GPU scratch memory."""
    clustering: Literal["gathered", "distributed"] = "gathered"
    """gathered: embeddings to rank 0, FAISS k-means there, table broadcast. distributed: every
    rank keeps its embeddings; centroid sums and counts are all-reduced each iteration."""
    recluster_every: Annotated[int, Field(ge=1)] = 1
    """Re-cluster (and reset the cluster head) every this many epochs (DeepCluster: 1)."""
    balance: Literal["weight", "none"] = "weight"
    """weight: cross-entropy weighted by inverse cluster size (DeepCluster balances clusters by
    sampling; the streamed shards are not indexable, so we weight the loss instead)."""
    cluster_weight: Annotated[float, Field(ge=0)] = 1.0
    """Weight of the pseudo-label cross-entropy."""
    attribute_weight: Annotated[float, Field(ge=0)] = 1.0
    """Weight of the CCC loss on ``data.attributes`` (labelled samples)."""
    emotion_weight: Annotated[float, Field(ge=0)] = 0.0
    """Weight of the categorical emotion cross-entropy (labelled samples); > 0 for corpora
    with categories only."""


def epoch_seed(seed: int, epoch: int, purpose: str) -> int:
    """A seed for ``purpose`` in ``epoch``: fresh each epoch, reproducible from ``train.seed``."""
    digest = hashlib.sha256(f"{seed}/{epoch}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class PseudoLabels:
    """One epoch's clustering, identical on every rank."""

    keys: list[str]
    assignment: np.ndarray
    """[N] int64 cluster of ``keys[i]``."""
    centroids: np.ndarray
    sizes: np.ndarray
    """[K] int64 points per cluster (0: empty after the final assignment)."""
    labels: np.ndarray
    """[N] emotion class of labelled samples, IGNORE elsewhere (for the NMI)."""
    hidden: np.ndarray | None = None
    """[N] hidden emotion class of unlabelled samples that keep one for analysis
    (:data:`ssl_ser.labels.HIDDEN`), IGNORE elsewhere; None when restored from a checkpoint."""
    stats: dict[str, float] = dataclasses.field(default_factory=dict)
    device_reason: str = ""

    def table(self) -> dict[str, int]:
        return dict(zip(self.keys, self.assignment.tolist()))

    @property
    def empty(self) -> list[int]:
        return np.flatnonzero(self.sizes == 0).tolist()


def cluster(keys: list[str], embeddings: np.ndarray, labels: np.ndarray, k: int, *, seed: int,
            cfg: kmeans.KMeansConfig, mode: str = "gathered",
            comm: Collective | None = None, hidden: np.ndarray | None = None) -> PseudoLabels:
    """Pseudo-labels of every rank's samples (each rank passes its own share), on every rank.

    gathered: rank 0 receives everything, clusters it, and broadcasts the table (an error
    there is broadcast too, so no rank is left waiting). distributed: distributed Lloyd, then
    only keys and cluster indices are exchanged.
    """
    comm = comm or default_collective()
    labels = np.asarray(labels, dtype=np.int64)
    hidden = np.full(len(labels), IGNORE, np.int64) if hidden is None else np.asarray(hidden, dtype=np.int64)
    if mode == "distributed":
        result = kmeans.fit_distributed(embeddings, k, seed=seed, cfg=cfg, comm=comm)
        parts = comm.all_gather((list(keys), result.assignment, labels, hidden))
        return PseudoLabels(keys=[key for p in parts for key in p[0]],
                            assignment=np.concatenate([p[1] for p in parts]).astype(np.int64),
                            centroids=result.centroids, sizes=result.sizes,
                            labels=np.concatenate([p[2] for p in parts]).astype(np.int64),
                            hidden=np.concatenate([p[3] for p in parts]).astype(np.int64),
                            stats=result.summary(), device_reason=result.device_reason)
    if mode != "gathered":
        raise ConfigError(f"method.clustering must be gathered or distributed, not {mode!r}")
    gathered = comm.gather((list(keys), np.asarray(embeddings, dtype=np.float32), labels, hidden))
    payload: Any = None
    failure: BaseException | None = None
    if gathered is not None:  # rank 0
        parts = gathered
        all_keys = [key for p in parts for key in p[0]]
        all_labels = np.concatenate([p[2] for p in parts]).astype(np.int64)
        all_hidden = np.concatenate([p[3] for p in parts]).astype(np.int64)
        try:
            x = np.concatenate([p[1] for p in parts if len(p[1])] or [np.zeros((0, 1), np.float32)])
            result = kmeans.fit(x, k, seed=seed, cfg=cfg)
            payload = PseudoLabels(keys=all_keys, assignment=result.assignment, centroids=result.centroids,
                                   sizes=result.sizes, labels=all_labels, hidden=all_hidden,
                                   stats=result.summary(),
                                   device_reason=result.device_reason)
        except Exception as err:  # any failure (bad input, FAISS out of memory...) must reach
            failure = err           # the other ranks, or they wait in broadcast until timeout
            payload = f"{type(err).__name__}: {err}"
    payload = comm.broadcast(payload)
    if isinstance(payload, str):
        raise kmeans.KMeansError(f"k-means on rank 0 failed: {payload}") from failure
    return payload


def agreement(previous: dict[str, int], current: PseudoLabels) -> float | None:
    """NMI between the previous and the current assignment of the keys both clustered."""
    common = [(previous[key], c) for key, c in zip(current.keys, current.assignment.tolist()) if key in previous]
    if len(common) < 2:
        return None
    a, b = zip(*common)
    return nmi(np.asarray(a), np.asarray(b))


def hidden_agreement(pseudo: PseudoLabels) -> dict[str, float]:
    """How the clusters of the unlabelled samples agree with their hidden labels (NMI, purity),
    where the data keeps them for analysis; empty otherwise."""
    if pseudo.hidden is None:
        return {}
    has = pseudo.hidden != IGNORE
    if has.sum() < 2:
        return {}
    return {"nmi_hidden": nmi(pseudo.assignment[has], pseudo.hidden[has]),
            "purity_hidden": purity(pseudo.assignment[has], pseudo.hidden[has])}


def balance_weights(sizes: np.ndarray) -> torch.Tensor:
    """Inverse-size class weights (mean 1 over non-empty clusters); 0 for empty clusters."""
    sizes = np.asarray(sizes, dtype=np.float64)
    nonempty = sizes > 0
    weights = np.zeros_like(sizes)
    if nonempty.any():
        weights[nonempty] = sizes[nonempty].sum() / (nonempty.sum() * sizes[nonempty])
    return torch.tensor(weights, dtype=torch.float32)


def _check_job(job: JobConfig, options: DeepEmoClusterOptions) -> None:
    from ssl_ser.models import (  # deferred: the registry imports every plug-in module; only when looked up
        MODELS,  # the registry imports every model module: only when checking
    )

    model_name, model_options = component(job.model, "model")
    if not hasattr(MODELS.get(model_name), "reset_cluster_head"):
        raise ConfigError(f"method 'deepemocluster' needs a model with a cluster head "
                          f"(e.g. vgg16_cluster); model {model_name!r} has none")
    given = model_options.get("num_clusters")
    if given is not None and given != options.num_clusters:
        raise ConfigError(f"model.num_clusters ({given}) differs from method.num_clusters "
                          f"({options.num_clusters}); set K once, in method.num_clusters")
    supervised = (job.data.attributes and options.attribute_weight > 0) or options.emotion_weight > 0
    if not supervised:
        raise ConfigError("method 'deepemocluster' has no supervised objective: set data.attributes "
                          "(CCC on arousal/valence/dominance) with method.attribute_weight > 0, or "
                          "method.emotion_weight > 0 (categorical emotions)")


@METHODS.register("deepemocluster")
class DeepEmoCluster(Method):
    Options = DeepEmoClusterOptions

    def __init__(self, options: DeepEmoClusterOptions, ctx: TrainingContext) -> None:
        super().__init__(options, ctx)
        _check_job(ctx.job, options)
        self.pseudo: PseudoLabels | None = None
        self.table: dict[str, int] = {}
        self.clustered_epoch = -1
        self.class_weight: torch.Tensor | None = None
        self.unclustered = 0

    # --- construction -----------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_classes": self.ctx.labels.num_classes, "num_clusters": self.options.num_clusters}

    @classmethod
    def metric_names(cls, job: JobConfig) -> set[str]:
        options = from_dict(DeepEmoClusterOptions, {k: v for k, v in job.method.items() if k != "name"},
                            source="job", prefix="method")
        _check_job(job, options)
        return super().metric_names(job)

    def training_sources(self) -> list[tuple[list[str], float]]:
        data = self.ctx.job.data
        if not data.unlabelled:
            return [(data.train, 1.0)]
        sources = [(data.train, 1.0 - data.unlabelled_weight), (data.unlabelled, data.unlabelled_weight)]
        return [(specs, weight) for specs, weight in sources if weight > 0]

    # --- per epoch: embed, cluster, reset the head --------------------------------------
    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        """DeepCluster's epoch, before the loop trains on the new pseudo-labels."""
        if self.pseudo is not None and 0 <= epoch - self.clustered_epoch < self.options.recluster_every:
            self.ctx.log(f"epoch {epoch + 1}: keeping the pseudo-labels of epoch {self.clustered_epoch + 1}")
            return {"reclustered": 0.0}
        start = time.perf_counter()
        keys, embeddings, rows = self.ctx.embed([*self.ctx.job.data.train, *self.ctx.job.data.unlabelled],
                                                gather=False)                     # 1. embed
        embed_time = time.perf_counter() - start
        previous, seed = self.table, epoch_seed(self.ctx.job.train.seed, epoch, "kmeans")
        self._install(self.pseudo_labels(keys, embeddings, rows, seed), epoch)    # 2. k-means
        self.reset_head(epoch)                                                    # 3. new head
        return self.report(epoch, seed, previous, embed_time)  # then the loop trains (4.)

    def pseudo_labels(self, keys: list[str], embeddings: np.ndarray, rows: list[dict[str, Any]],
                      seed: int) -> PseudoLabels:
        """Pseudo-labels of this rank's embeddings (every rank gets the whole table), with the
        known and the hidden emotion of each row alongside for the agreement scores."""
        labels = self.ctx.labels
        known = np.array([labels.encode(r) if r.get("labelled") else IGNORE for r in rows], np.int64)
        hidden = np.array([IGNORE if r.get("labelled") else labels.encode_hidden(r) for r in rows], np.int64)
        return cluster(keys, embeddings, known, self.options.num_clusters,
                       seed=seed, cfg=self.options.kmeans,
                       mode=self.options.clustering, hidden=hidden,
                       comm=default_collective() if self.ctx.distributed else LocalCollective())

    def report(self, epoch: int, seed: int, previous: dict[str, int], embed_time: float) -> dict[str, float]:
        """The epoch's clustering in the metrics, the log and ``events.jsonl``."""
        ctx, pseudo = self.ctx, self.pseudo
        assert pseudo is not None
        stats = {"reclustered": 1.0, "embed_time_s": embed_time, **pseudo.stats}
        if (value := agreement(previous, pseudo)) is not None:
            stats["nmi_previous"] = value
        has = pseudo.labels != IGNORE
        if has.sum() >= 2:
            stats["nmi_labels"] = nmi(pseudo.assignment[has], pseudo.labels[has])
        stats.update(hidden_agreement(pseudo))
        if pseudo.stats.get("kmeans_spread", 1.0) < 1e-6:
            ctx.log(f"warning: the {len(pseudo.keys)} embeddings are nearly identical (relative spread "
                    f"{pseudo.stats['kmeans_spread']:.1e}): the pseudo-labels carry no information yet. "
                    f"A model whose eval-mode output ignores its input (e.g. BatchNorm running "
                    f"statistics still near their initial values) does this.")
        duplicates = len(pseudo.keys) - len(self.table)
        ctx.log(f"epoch {epoch + 1}: {len(pseudo.keys)} embeddings -> {self.options.num_clusters} clusters "
                f"({pseudo.device_reason}; {stats['kmeans_time_s']:.1f}s k-means, {embed_time:.1f}s "
                f"embedding): sizes {stats['cluster_min']:.0f}/{stats['cluster_median']:.0f}/"
                f"{stats['cluster_max']:.0f} min/median/max"
                + (f", empty clusters {pseudo.empty} (no weight, no pseudo-labels)" if pseudo.empty else "")
                + (f", {duplicates} duplicate keys" if duplicates else "")
                + (f"; hidden labels: NMI {stats['nmi_hidden']:.3f}, purity {stats['purity_hidden']:.3f}"
                   if "nmi_hidden" in stats else ""))
        ctx.event("recluster", epoch=epoch + 1, seed=seed,
                  points=len(pseudo.keys), clusters=self.options.num_clusters, device=pseudo.device_reason,
                  objective=stats["kmeans_objective"], empty=pseudo.empty,
                  sizes=pseudo.sizes.tolist(), time_s=stats["kmeans_time_s"],
                  **{k: stats[k] for k in ("nmi_labels", "nmi_hidden", "purity_hidden") if k in stats})
        return stats

    def _install(self, pseudo: PseudoLabels, epoch: int) -> None:
        self.pseudo = pseudo
        self.table = pseudo.table()
        self.clustered_epoch = epoch
        self.class_weight = (balance_weights(pseudo.sizes).to(self.ctx.device)
                             if self.options.balance == "weight" else None)

    def reset_head(self, epoch: int) -> None:
        """A fresh cluster head (seeded, so every rank draws the same) without optimiser state."""
        model = self.ctx.bare_model
        k = self.options.num_clusters
        if model.num_clusters != k:  # a model restored with another K: new parameters
            model.reset_cluster_head(k)
            self.ctx.refresh_parameters()
            model = self.ctx.bare_model
        head = model.cluster_head
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(epoch_seed(self.ctx.job.train.seed, epoch, "cluster-head"))
            fresh = torch.nn.Linear(head.in_features, head.out_features, bias=head.bias is not None)
        with torch.no_grad():
            head.weight.copy_(fresh.weight)
            if head.bias is not None:
                head.bias.copy_(fresh.bias)
        self.ctx.reset_optimizer_state(head.parameters())

    # --- per batch ----------------------------------------------------------------------
    def loss(self, outputs: dict[str, torch.Tensor], targets: Targets) -> tuple[torch.Tensor, dict[str, float]]:
        opts = self.options
        cluster_logits = outputs["cluster_logits"].float()
        # every head in the graph on every rank (DDP), whatever this batch holds
        total = sum(outputs[name].float().sum() * 0.0 for name in ("cluster_logits", "attributes", "logits")
                    if name in outputs)
        logs: dict[str, float] = {}
        pseudo = torch.tensor([self.table.get(key, IGNORE) for key in targets.keys], dtype=torch.long,
                              device=cluster_logits.device)
        known = pseudo != IGNORE
        missing = int((~known).sum())
        self.unclustered += missing
        logs["unclustered"] = missing / max(len(targets.keys), 1)
        if opts.cluster_weight > 0 and known.any():
            ce = F.cross_entropy(cluster_logits[known], pseudo[known], weight=self.class_weight)
            total = total + opts.cluster_weight * ce
            logs["cluster_ce"] = float(ce.detach())
            logs["cluster_acc"] = float((cluster_logits[known].argmax(1) == pseudo[known]).float().mean())
        labelled = targets.labelled.bool()
        if self.ctx.job.data.attributes and opts.attribute_weight > 0:
            gold = targets.attributes
            mask = torch.isfinite(gold) & labelled[:, None]
            if int(mask.sum(0).max()) >= 2:
                ccc = ccc_loss(outputs["attributes"].float(), gold, mask)
                total = total + opts.attribute_weight * ccc
                logs["ccc_loss"] = float(ccc.detach())
        if opts.emotion_weight > 0:
            has = (targets.label != IGNORE) & labelled
            if has.any():
                ce = F.cross_entropy(outputs["logits"][has].float(), targets.label[has])
                total = total + opts.emotion_weight * ce
                logs["emotion_ce"] = float(ce.detach())
        return torch.as_tensor(total), logs

    def validate(self, epoch: int) -> dict[str, float]:
        if self.unclustered:
            self.ctx.log(f"epoch {epoch + 1}: {self.unclustered} training rows had no pseudo-label (their "
                          f"keys were not embedded, e.g. debug.max_eval_batches) and were left out of "
                          f"the cluster loss")
            self.unclustered = 0
        return super().validate(epoch)

    # --- checkpointed state -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.pseudo is None:
            return {}
        p = self.pseudo
        return {"keys": list(p.keys), "assignment": torch.from_numpy(p.assignment.astype(np.int64)),
                "centroids": torch.from_numpy(np.asarray(p.centroids, dtype=np.float32)),
                "sizes": torch.from_numpy(p.sizes.astype(np.int64)),
                "labels": torch.from_numpy(p.labels.astype(np.int64)),
                "clustered_epoch": self.clustered_epoch, "num_clusters": self.options.num_clusters}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if int(state["num_clusters"]) != self.options.num_clusters:
            raise ConfigError(f"the checkpoint's pseudo-labels have {state['num_clusters']} clusters, "
                              f"method.num_clusters is {self.options.num_clusters}")
        pseudo = PseudoLabels(keys=list(state["keys"]), assignment=state["assignment"].cpu().numpy(),
                              centroids=state["centroids"].cpu().numpy(), sizes=state["sizes"].cpu().numpy(),
                              labels=state["labels"].cpu().numpy(), device_reason="restored")
        self._install(pseudo, int(state["clustered_epoch"]))
