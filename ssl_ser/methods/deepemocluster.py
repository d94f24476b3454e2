"""DeepEmoCluster (Lin, Sridhar and Busso, ICASSP 2021): semi-supervised SER with k-means
pseudo-labels of the model's own embeddings, after DeepCluster (Caron et al., 2018).

The per-epoch cycle, as in DeepCluster's main loop (:meth:`DeepEmoCluster.on_epoch_start`),
after ``warmup_epochs`` epochs of the labelled objective alone (an untrained model's eval-mode
embeddings are nearly identical, so clustering them first would carry no information):

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
   same on every rank; ``head_init: centroids`` starts it as the nearest-centroid classifier
   of the new clusters instead);
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
Checkpoints carry the centroids and the table (:mod:`ssl_ser.methods.pseudo_table`; an old
one's ``keys`` list is hashed on load): a resumed run continues with the same pseudo-labels
(and, as every seed is derived from the epoch, re-clusters as the uninterrupted run would).

``embeddings: full`` (the paper, default) is step 1 above (eval mode, whole utterances).
``bank`` does step 1 once (the warm-up: k-means needs every key), then re-clusters the
embedding bank (:mod:`ssl_ser.methods.embedding_bank`; ODC, Zhan et al. 2020): each training
step records its batch's ``embedding`` output, the layer the full pass clusters but as
trained (train-mode dropout and BatchNorm, random crops, SpecAugment if configured: free
from the training forward, where an eval-mode copy would cost a second one); samples not
drawn keep their last embedding and its age. The bank is sharded over ranks by key hash,
freshest record first, and checkpointed whole (a checkpoint without one is followed by a
warm-up full pass).

Why one module of ~460 lines: the per-epoch cycle reads in order in one place, as DeepCluster's
main.py; the clustering, the table and the bank are modules of their own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
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
from ssl_ser.methods.classification import ClassificationLoss, ClassificationLossOptions, balance_weights
from ssl_ser.methods.embedding_bank import BankConfig, EmbeddingBank, Records, freshest
from ssl_ser.methods.pseudo_labels import (
    PseudoLabels,
    agreement,
    cluster,
    hidden_agreement,
    nearest_centroid_head,
)
from ssl_ser.methods.pseudo_table import PseudoLabelTable, key_hashes
from ssl_ser.metrics import ccc_loss, nmi

if TYPE_CHECKING:
    from ssl_ser.context import TrainingContext
    from ssl_ser.job import JobConfig
    from ssl_ser.targets import Targets


@config
class DeepEmoClusterOptions(ClassificationLossOptions):
    num_clusters: Annotated[int, Field(ge=2)] = 10
    """K, the number of k-means clusters (= outputs of the cluster head)."""
    kmeans: kmeans.KMeansConfig = dataclasses.field(default_factory=kmeans.KMeansConfig)
    """Iterations, PCA-whitening/L2 preprocessing, device (auto/cpu/gpu), GPU scratch memory."""
    clustering: Literal["gathered", "distributed"] = "gathered"
    """gathered: embeddings to rank 0, FAISS k-means there, table broadcast. distributed: every
    rank keeps its embeddings; centroid sums and counts are all-reduced each iteration."""
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    """Epochs trained on the labelled objective alone before the first clustering. At
    initialisation the eval-mode embeddings are nearly identical (BatchNorm's running statistics
    are still at their initial values: relative spread ~4e-11 on RAVDESS), so the first
    pseudo-labels would carry no information; a few supervised epochs give k-means an embedding
    that already separates something."""
    recluster_every: Annotated[int, Field(ge=1)] = 1
    """Re-cluster (and reset the cluster head) every this many epochs (DeepCluster: 1)."""
    head_init: Literal["random", "centroids"] = "random"
    """How each re-clustering's fresh cluster head starts. random: DeepCluster's re-initialised
    layer. centroids: the nearest-centroid classifier of the new clusters
    (:func:`~ssl_ser.methods.pseudo_labels.nearest_centroid_head`), whose argmax already
    reproduces the assignment, so the cluster loss pulls each embedding towards its centroid
    from the first step instead of training a random projection (with a decayed learning rate
    a random head stayed at chance, cross-entropy ~ln K, for whole epochs: ravdess_semi)."""
    balance: Literal["weight", "none"] = "weight"
    """weight: cross-entropy weighted by inverse cluster size (DeepCluster balances clusters by
    sampling; the streamed shards are not indexable, so we weight the loss instead)."""
    cluster_weight: Annotated[float, Field(ge=0)] = 1.0
    """Weight of the pseudo-label cross-entropy."""
    attribute_weight: Annotated[float, Field(ge=0)] = 1.0
    """Weight of the CCC loss on ``data.attributes`` (labelled samples)."""
    emotion_weight: Annotated[float, Field(ge=0)] = 0.0
    """Weight of the categorical emotion cross-entropy (labelled samples); > 0 for corpora
    with categories only. ``class_weight``, ``label_smoothing`` and ``logit_adjustment`` shape
    this term; ``balance`` shapes the cluster term."""
    embeddings: Literal["full", "bank"] = "full"
    """full: embed every training utterance at each re-clustering (the paper). bank: embed
    everything once, then re-cluster the embeddings recorded by the training passes."""
    bank: BankConfig = dataclasses.field(default_factory=BankConfig)
    """With ``embeddings: bank``: storage dtype, maximum age, the full-pass diagnostic."""


def epoch_seed(seed: int, epoch: int, purpose: str) -> int:
    """A seed for ``purpose`` in ``epoch``: fresh each epoch, reproducible from ``train.seed``."""
    digest = hashlib.sha256(f"{seed}/{epoch}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


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
    if options.embeddings == "bank" and job.data.segment is not None:
        raise ConfigError("method.embeddings: bank records one embedding per utterance, but data.segment "
                          "trains on segments; use embeddings: full")
    if options.embeddings == "bank" and job.train.mixup > 0:
        raise ConfigError("method.embeddings: bank records the embeddings of the training forward pass, "
                          "which train.mixup feeds with mixed inputs; use embeddings: full or train.mixup: 0")
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
        self.table = PseudoLabelTable()
        self.clustered_epoch = -1
        self.cluster_balance: torch.Tensor | None = None
        self.emotion_loss = ClassificationLoss(options, ctx)
        self.unclustered = 0
        self.epoch = 0
        self.bank = EmbeddingBank(options.bank.dtype) if options.embeddings == "bank" else None
        self.bank_ready = False
        """Every rank's bank holds the warm-up full pass (so re-clustering from it is possible)."""
        self.bank_snapshot: Records | None = None  # the whole bank on rank 0, for the checkpoint

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

    def comm(self) -> Collective:
        return default_collective() if self.ctx.distributed else LocalCollective()

    # --- per epoch: embed, cluster, reset the head --------------------------------------
    def on_epoch_start(self, epoch: int) -> dict[str, float]:
        """DeepCluster's epoch, before the loop trains on the new pseudo-labels."""
        self.epoch = epoch
        if epoch < self.options.warmup_epochs:
            self.ctx.log(f"epoch {epoch + 1}: supervised warm-up (method.warmup_epochs "
                         f"{self.options.warmup_epochs}), no clustering yet")
            return {"reclustered": 0.0, "warmup": 1.0}
        if self.pseudo is not None and 0 <= epoch - self.clustered_epoch < self.options.recluster_every:
            self.ctx.log(f"epoch {epoch + 1}: keeping the pseudo-labels of epoch {self.clustered_epoch + 1}")
            return {"reclustered": 0.0}
        previous, seed = self.table, epoch_seed(self.ctx.job.train.seed, epoch, "kmeans")
        if self.bank is not None and self.bank_ready and epoch >= self.options.bank.warmup_epochs:
            pseudo, stats, points = self.from_bank(epoch, seed)                   # 1.-2. the bank
        else:
            hashes, embeddings, known, hidden, embed_time = self.full_pass()      # 1. embed
            if self.bank is not None:  # warm-up: everything from the last epoch's model, fresher than any record
                self.bank.record(hashes, embeddings, stamp=self.ctx.step, epoch=epoch - 1, known=known,
                                 hidden=hidden)
                self.bank.sync(self.comm())
                self.bank_ready = True
            pseudo = self.cluster(hashes, embeddings, known, hidden, seed)        # 2. k-means
            stats = {"embed_time_s": embed_time, **({"bank_warmup": 1.0} if self.bank is not None else {})}
            points = (hashes, embeddings)
        self._install(pseudo, epoch)
        self.reset_head(epoch, points)                                            # 3. new head
        stats = self.report(epoch, seed, previous, stats)
        # reported: keep the table (12 bytes per key), not the per-point arrays (~32 per point)
        self.pseudo = dataclasses.replace(pseudo, hashes=self.table.hashes, assignment=self.table.values,
                                          labels=np.zeros(0, np.int64), hidden=None)
        return stats  # then the loop trains (4.)

    def full_pass(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        """This rank's share of every training utterance: key hashes, eval-mode embeddings,
        known and hidden emotion classes, and the pass's time."""
        start = time.perf_counter()
        keys, embeddings, rows = self.ctx.embed([*self.ctx.job.data.train, *self.ctx.job.data.unlabelled],
                                                gather=False)
        labels = self.ctx.labels
        known = np.array([labels.encode(r) if r.get("labelled") else IGNORE for r in rows], np.int32)
        hidden = np.array([IGNORE if r.get("labelled") else labels.encode_hidden(r) for r in rows], np.int32)
        return key_hashes(keys), embeddings, known, hidden, time.perf_counter() - start

    def cluster(self, hashes: np.ndarray, embeddings: np.ndarray, known: np.ndarray, hidden: np.ndarray,
                seed: int) -> PseudoLabels:
        """Pseudo-labels of this rank's embeddings (every rank gets the whole table), with the
        known and the hidden emotion of each point alongside for the agreement scores."""
        return cluster(hashes, embeddings, known, self.options.num_clusters, seed=seed, cfg=self.options.kmeans,
                       mode=self.options.clustering, hidden=hidden, comm=self.comm())

    def from_bank(self, epoch: int,
                  seed: int) -> tuple[PseudoLabels, dict[str, float], tuple[np.ndarray, np.ndarray]]:
        """Cluster the bank's entries (each rank its own keys), with its age statistics and,
        with ``bank.check_full``, the agreement with a full pass timed apart; also this rank's
        clustered points (key hashes, vectors) for the head."""
        assert self.bank is not None
        comm, opts = self.comm(), self.options.bank
        start = time.perf_counter()
        self.bank.sync(comm)  # records made since the last validation (none in the loop)
        entries = self.bank.usable(epoch, opts.max_age)
        ages = self.bank.ages(epoch)
        parts = comm.all_gather((len(ages), len(entries), int(ages.sum()), int(ages.max(initial=0)),
                                 self.bank.nbytes))
        total = max(sum(p[0] for p in parts), 1)
        stats = {"bank_entries": float(sum(p[0] for p in parts)), "bank_used": float(sum(p[1] for p in parts)),
                 "bank_age_mean": sum(p[2] for p in parts) / total, "bank_age_max": float(max(p[3] for p in parts)),
                 "bank_mib": sum(p[4] for p in parts) / 2**20, "bank_time_s": time.perf_counter() - start}
        pseudo = self.cluster(entries.hashes, entries.vectors.astype(np.float32), entries.known, entries.hidden,
                              seed)
        if opts.check_full:
            start = time.perf_counter()
            hashes, embeddings, known, hidden, _ = self.full_pass()
            layout = EmbeddingBank(opts.dtype)  # the bank's points, order and rounding: only the vectors differ
            layout.record(hashes, embeddings, stamp=0, epoch=epoch, known=known, hidden=hidden)
            layout.sync(comm)
            e = layout.usable(epoch, None)
            full = self.cluster(e.hashes, e.vectors.astype(np.float32), e.known, e.hidden, seed)
            from_full = full.table().lookup_hashes(pseudo.hashes)
            both = from_full != IGNORE
            if both.sum() >= 2:
                stats["nmi_full"] = nmi(pseudo.assignment[both], from_full[both])
            # the same over keys recorded in the last epoch: what train mode costs without staleness
            fresh = np.concatenate(comm.all_gather(entries.hashes[self.bank.ages(epoch)[
                self.bank.positions(entries.hashes)] <= 1]))
            recent = both & (PseudoLabelTable.from_hashes(fresh, np.zeros(len(fresh))).positions(pseudo.hashes) >= 0)
            if recent.sum() >= 2:
                stats["nmi_full_fresh"], stats["bank_fresh"] = (nmi(pseudo.assignment[recent], from_full[recent]),
                                                                float(recent.mean()))
            stats.update({f"full_{k}": v for k, v in hidden_agreement(full).items()})
            stats["check_time_s"] = time.perf_counter() - start
        return pseudo, stats, (entries.hashes, entries.vectors)

    def report(self, epoch: int, seed: int, previous: PseudoLabelTable, extra: dict[str, float]) -> dict[str, float]:
        """The epoch's clustering in the metrics, the log and ``events.jsonl``."""
        ctx, pseudo = self.ctx, self.pseudo
        assert pseudo is not None
        stats = {"reclustered": 1.0, **extra, **pseudo.stats}
        if (value := agreement(previous, pseudo)) is not None:
            stats["nmi_previous"] = value
        has = pseudo.labels != IGNORE
        if has.sum() >= 2:
            stats["nmi_labels"] = nmi(pseudo.assignment[has], pseudo.labels[has])
        stats.update(hidden_agreement(pseudo))
        points = len(pseudo.hashes)
        if pseudo.stats.get("kmeans_spread", 1.0) < 1e-6:
            ctx.log(f"warning: the {points} embeddings are nearly identical (relative spread "
                    f"{pseudo.stats['kmeans_spread']:.1e}): the pseudo-labels carry no information yet. "
                    f"A model whose eval-mode output ignores its input (e.g. BatchNorm running "
                    f"statistics still near their initial values) does this.")
        duplicates = points - len(self.table)
        source = (f"{extra['embed_time_s']:.1f}s embedding" if "embed_time_s" in extra else
                  f"bank: mean age {extra['bank_age_mean']:.2f} epochs, {extra['bank_mib']:.1f} MiB")
        ctx.log(f"epoch {epoch + 1}: {points} embeddings -> {self.options.num_clusters} clusters "
                f"({pseudo.device_reason}; {stats['kmeans_time_s']:.1f}s k-means, {source}): sizes "
                f"{stats['cluster_min']:.0f}/{stats['cluster_median']:.0f}/{stats['cluster_max']:.0f} min/median/max"
                + (f", empty clusters {pseudo.empty} (no weight, no pseudo-labels)" if pseudo.empty else "")
                + (f", {duplicates} duplicate keys" if duplicates else "")
                + (f"; hidden labels: NMI {stats['nmi_hidden']:.3f}, purity {stats['purity_hidden']:.3f}"
                   if "nmi_hidden" in stats else "")
                + (f"; NMI with a full pass {stats['nmi_full']:.3f}" if "nmi_full" in stats else ""))
        ctx.event("recluster", epoch=epoch + 1, seed=seed,
                  points=points, clusters=self.options.num_clusters, device=pseudo.device_reason,
                  objective=stats["kmeans_objective"], empty=pseudo.empty,
                  sizes=pseudo.sizes.tolist(), time_s=stats["kmeans_time_s"],
                  source="full" if "embed_time_s" in extra else "bank",
                  **{k: stats[k] for k in ("nmi_labels", "nmi_hidden", "purity_hidden", "nmi_full") if k in stats})
        return stats

    def _install(self, pseudo: PseudoLabels, epoch: int) -> None:
        self.pseudo = pseudo
        self.table = pseudo.table()
        self.clustered_epoch = epoch
        self.cluster_balance = (balance_weights(pseudo.sizes).to(self.ctx.device)
                                if self.options.balance == "weight" else None)

    def reset_head(self, epoch: int, points: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """A fresh cluster head without optimiser state: seeded (every rank draws the same), or
        with ``head_init: centroids`` the nearest-centroid classifier of ``points`` (this
        rank's key hashes and the vectors that were clustered) under the new table."""
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
        weight, bias = fresh.weight.detach(), fresh.bias.detach() if fresh.bias is not None else None
        if self.options.head_init == "centroids" and points is not None:
            w, b = nearest_centroid_head(points[0], points[1], self.table, k, self.comm())
            weight, bias = torch.from_numpy(w), torch.from_numpy(b)
        with torch.no_grad():
            head.weight.copy_(weight)
            if head.bias is not None and bias is not None:
                head.bias.copy_(bias)
        self.ctx.reset_optimizer_state(head.parameters())

    # --- per batch ----------------------------------------------------------------------
    def loss(self, outputs: dict[str, torch.Tensor], targets: Targets) -> tuple[torch.Tensor, dict[str, float]]:
        opts = self.options
        cluster_logits = outputs["cluster_logits"].float()
        # every head in the graph on every rank (DDP), whatever this batch holds
        total = sum(outputs[name].float().sum() * 0.0 for name in ("cluster_logits", "attributes", "logits")
                    if name in outputs)
        logs: dict[str, float] = {}
        if self.epoch < opts.warmup_epochs:  # supervised warm-up: no pseudo-labels yet, none missing
            return self._supervised_loss(outputs, targets, total, logs)
        hashes = key_hashes(list(targets.keys))
        pseudo = torch.from_numpy(self.table.lookup_hashes(hashes)).to(cluster_logits.device)
        if self.bank is not None and len(hashes) == len(outputs["embedding"]):
            # this step's embeddings, "fresher" than the warm-up that preceded it (stamp step + 1)
            known = np.where(targets.labelled.bool().cpu().numpy(), targets.label.cpu().numpy(), IGNORE)
            self.bank.record(hashes, outputs["embedding"], stamp=self.ctx.step + 1, epoch=self.epoch, known=known)
        known_pseudo = pseudo != IGNORE
        missing = int((~known_pseudo).sum())
        self.unclustered += missing
        logs["unclustered"] = missing / max(len(targets.keys), 1)
        if opts.cluster_weight > 0 and known_pseudo.any():
            ce = F.cross_entropy(cluster_logits[known_pseudo], pseudo[known_pseudo], weight=self.cluster_balance)
            total = total + opts.cluster_weight * ce
            logs["cluster_ce"] = float(ce.detach())
            logs["cluster_acc"] = float((cluster_logits[known_pseudo].argmax(1) == pseudo[known_pseudo]).float().mean())
        return self._supervised_loss(outputs, targets, total, logs)

    def _supervised_loss(self, outputs: dict[str, torch.Tensor], targets: Targets, total: Any,
                         logs: dict[str, float]) -> tuple[torch.Tensor, dict[str, float]]:
        """``total`` plus the CCC and emotion losses of the labelled samples."""
        opts = self.options
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
                ce = self.emotion_loss(outputs["logits"][has], targets.label[has])
                total = total + opts.emotion_weight * ce
                logs["emotion_ce"] = float(ce.detach())
        return torch.as_tensor(total), logs

    def validate(self, epoch: int) -> dict[str, float]:
        if self.unclustered:
            self.ctx.log(f"epoch {epoch + 1}: {self.unclustered} training rows had no pseudo-label (their "
                          f"keys were not embedded, e.g. debug.max_eval_batches) and were left out of "
                          f"the cluster loss")
            self.unclustered = 0
        if self.bank is not None:  # every rank is here: merge the epoch's records, whole bank to rank 0
            comm = self.comm()
            self.bank.sync(comm)
            self.bank_snapshot = self.bank.gather(comm) if comm.world_size > 1 else None
        return super().validate(epoch)

    # --- checkpointed state -------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if self.pseudo is None:
            return {}
        p = self.pseudo
        state: dict[str, Any] = {
            "table": self.table.state(), "centroids": torch.from_numpy(np.asarray(p.centroids, dtype=np.float32)),
            "sizes": torch.from_numpy(p.sizes.astype(np.int64)),
            "clustered_epoch": self.clustered_epoch, "num_clusters": self.options.num_clusters}
        if self.bank is not None and self.bank_ready:
            entries = self.bank_snapshot
            if entries is None:  # one process: its bank is the whole bank (with unmerged records)
                dim = self.bank.entries.vectors.shape[1] if self.bank.entries is not None else 0
                entries = freshest(Records.concat([self.bank.entries or Records.empty(dim, self.bank.dtype),
                                                   *self.bank.pending]))
            state["bank"] = EmbeddingBank.state(entries)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if int(state["num_clusters"]) != self.options.num_clusters:
            raise ConfigError(f"the checkpoint's pseudo-labels have {state['num_clusters']} clusters, "
                              f"method.num_clusters is {self.options.num_clusters}")
        if "table" in state:
            table = PseudoLabelTable.from_state(state["table"])
        else:  # a checkpoint from before the compact table: its key list, hashed now
            table = PseudoLabelTable.from_keys(list(state["keys"]), state["assignment"].cpu().numpy())
        pseudo = PseudoLabels(hashes=table.hashes, assignment=table.values.astype(np.int64),
                              centroids=state["centroids"].cpu().numpy(), sizes=state["sizes"].cpu().numpy(),
                              labels=np.full(len(table), IGNORE, np.int64), device_reason="restored")
        self._install(pseudo, int(state["clustered_epoch"]))
        if self.bank is not None:
            self.bank_ready = "bank" in state  # none (e.g. from embeddings: full): the next re-clustering warms up
            if self.bank_ready:
                self.bank.load_state(state["bank"], self.ctx.rank, self.ctx.world_size)

