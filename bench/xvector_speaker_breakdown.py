"""Per-corpus breakdown of a speaker-pretraining run's validation numbers (its best
checkpoint; no training): speaker accuracy per corpus, and the EER on all trials, on
within-corpus trials only and per corpus (cross-corpus non-target pairs are easy).

    python bench/xvector_speaker_breakdown.py /work/xv_bench/runs/xvector_pretrain
"""
import dataclasses
import sys
import tempfile
from pathlib import Path
import numpy as np
from ssl_ser.config import load
from ssl_ser.train import checkpoint as ckpt
from ssl_ser.train.config import JobConfig
from ssl_ser.train.loop import Loop
from ssl_ser.train.session import LocalSession
from ssl_ser.methods.speaker import unseen_labels_allowed
from ssl_ser.labels import label_of
from ssl_ser.metrics_speaker import make_trials, cosine_scores, eer

run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/xvector_pretrain")
job = load(JobConfig, run / "config.yaml")
job = dataclasses.replace(job, debug=dataclasses.replace(job.debug, max_eval_batches=None), augment={})
best = ckpt.find_checkpoint(run, "best")
print("best", best)
loop = Loop(job, LocalSession(Path(tempfile.mkdtemp()) / "run", 2, "unused", "min"), debug=True, progress=False, force=True)
loop.bare_model.load_state_dict(ckpt.load_state(best, map_location=loop.device)["model"])
loop.method._ensure_hook()
pred = loop.evaluate(job.data.valid)
print("overall", {k: round(v, 4) for k, v in pred.metrics.items()})
rep = pred.report
pc = rep["per_class"]
corp = {"fsdd": [], "ravdess": [], "urdu": []}
for c, v in pc.items():
    if v["support"] == 0:
        continue
    k = c.split("/")[0]
    corp[k].append((c, v["recall"], v["support"]))
for k, rows in corp.items():
    n = sum(s for _, _, s in rows); hit = sum(r * s for _, r, s in rows)
    print(k, "speakers", len(rows), "utts", n, "acc", round(hit / n, 4), "mean recall", round(np.mean([r for _, r, _ in rows]), 4))
with unseen_labels_allowed(loop.labels):
    p = loop.evaluate(job.method["trials_from"], embeddings=True)
order = np.argsort(np.asarray(p.keys, dtype=object), kind="stable")
keep = [int(i) for i in order]
spk = [str(label_of(p.meta[i], "speaker")) for i in keep]
cor = [str(p.meta[i].get("corpus") if isinstance(p.meta[i], dict) else getattr(p.meta[i], "corpus")) for i in keep]
emb = p.embeddings[keep]
t = make_trials(spk, max_target=20000, max_nontarget=20000, seed=0)
s = cosine_scores(emb, t)
print("all trials", len(t), int(t.target.sum()), "EER", round(eer(s, t.target)[0], 4))
cor = np.array(cor)
same = cor[t.left] == cor[t.right]
print("within-corpus trials only", int(same.sum()), int(t.target[same].sum()), "EER", round(eer(s[same], t.target[same])[0], 4))
for c in ("ravdess", "urdu"):
    idx = [i for i, x in enumerate(cor) if x == c]
    tt = make_trials([spk[i] for i in idx], max_target=20000, max_nontarget=20000, seed=0)
    ss = cosine_scores(emb[idx], tt)
    print(c, "only trials", len(tt), int(tt.target.sum()), "EER", round(eer(ss, tt.target)[0], 4))
