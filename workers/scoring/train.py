"""Training and evaluation of the scoring model on labelled windows (pure torch + numpy).

Deterministic for a seed on one device and thread count: torch's generator is seeded,
the shuffles come from a numpy generator of the same seed, and dropout draws from torch's
generator. `collect.py` builds the labelled windows from simulated scenes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from workers.scoring.model import ModelConfig, ScoringModel
from workers.scoring.windows import NormStats

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# --------------------------------------------------------------------------- metrics
def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """Area under the ROC curve (ties count half); None when one class is absent."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size)
    sorted_s = s[order]
    i = 0
    while i < s.size:  # average ranks over ties
        j = i
        while j + 1 < s.size and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels: npt.ArrayLike, scores: npt.ArrayLike,
                      n_events: int | None = None) -> float | None:
    """Average precision (area under the step precision-recall curve, sklearn's definition);
    tied scores form one threshold. None without positives.

    `n_events`: AP over labelled events rather than over candidates — recall is matched
    candidates / n_events, so a labelled event no candidate holds is never recalled and
    caps the curve (a detector's AP). None: over candidates (recall reaches 1)."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum()) if n_events is None else int(n_events)
    if n_events is not None and n_events < int(y.sum()):
        raise ValueError(f"n_events {n_events} < {int(y.sum())} matched candidates")
    if n_pos == 0:
        return None
    if y.size == 0:
        return 0.0
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each threshold
    precision = tp[last] / (tp[last] + fp[last])
    recall = tp[last] / n_pos
    prev_recall = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - prev_recall) * precision))


def compare_scores(labels: npt.ArrayLike, model: npt.ArrayLike,
                   rule: npt.ArrayLike) -> dict[str, Any]:
    """ROC AUC and AP of the model's score and of rule_score on the same candidates."""
    y = np.asarray(labels, dtype=bool)

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 4)

    m_ap, r_ap = r(average_precision(y, model)), r(average_precision(y, rule))
    out: dict[str, Any] = {
        "n": int(y.size), "positives": int(y.sum()),
        "model": {"auc": r(roc_auc(y, model)), "ap": m_ap},
        "rule_score": {"auc": r(roc_auc(y, rule)), "ap": r_ap}}
    out["ap_gain"] = None if m_ap is None or r_ap is None else round(m_ap - r_ap, 4)
    # AP is at most 1, so no score can gain more than 1 - AP(rule_score) on these
    # candidates; the share of that headroom the model took is comparable across sets.
    out["ap_headroom"] = None if r_ap is None else round(1.0 - r_ap, 4)
    out["headroom_taken"] = (round((m_ap - r_ap) / (1.0 - r_ap), 4)
                             if m_ap is not None and r_ap is not None and r_ap < 1.0 else None)
    return out


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    aux_weight: float = 0.3
    """Weight of the embedding's auxiliary loss (predict type and truth from the embedding)."""
    seed: int = 0


@dataclass
class Dataset:
    """Raw windows (N, T, F), type indices, labels (1: matched truth), rule scores, and the
    scene each window came from (for splits)."""

    windows: FloatArray
    types: IntArray
    labels: npt.NDArray[np.float32]
    rule_scores: FloatArray
    scenes: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    def subset(self, mask: npt.NDArray[np.bool_]) -> Dataset:
        return Dataset(self.windows[mask], self.types[mask], self.labels[mask],
                       self.rule_scores[mask],
                       self.scenes[mask] if self.scenes.size else self.scenes)


@dataclass
class Trained:
    model: ScoringModel
    norm: NormStats
    history: list[float]
    """Mean training loss per epoch."""


def train_model(data: Dataset, config: ModelConfig | None = None,
                train: TrainConfig | None = None,
                on_epoch: Callable[[int, float], None] | None = None,
                init: tuple[ScoringModel, NormStats] | None = None) -> Trained:
    """Fit normalisation and the model on `data` (CPU); deterministic for train.seed.
    With `init` (a model and its normalisation), fine-tune a copy of that model instead:
    its normalisation is kept, so the windows mean what they meant to it."""
    tc = train or TrainConfig()
    if len(data) == 0:
        raise ValueError("no training windows")
    torch.manual_seed(tc.seed)
    rng = np.random.default_rng(tc.seed)
    if init is None:
        norm = NormStats.fit(data.windows)
        model = ScoringModel(config)
    else:
        base, norm = init
        model = ScoringModel(base.config)
        model.load_state_dict(base.state_dict())
    x = torch.from_numpy(norm.apply(data.windows))
    t = torch.from_numpy(data.types.astype(np.int64))
    y = torch.from_numpy(data.labels.astype(np.float32))
    n_types = model.config.n_types
    aux = nn.Linear(model.config.embed_dim, 2 * n_types)
    params = [*model.parameters(), *aux.parameters()]
    opt = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    steps = max(1, tc.epochs * ((len(data) + tc.batch_size - 1) // tc.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=tc.lr, total_steps=steps)
    pos = float(y.sum())
    pos_weight = torch.tensor((len(data) - pos) / pos if pos > 0 else 1.0).clamp(0.2, 5.0)
    bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    ce = nn.CrossEntropyLoss()
    history: list[float] = []
    model.train()
    for epoch in range(tc.epochs):
        order = torch.from_numpy(rng.permutation(len(data)))
        total, batches = 0.0, 0
        for i in range(0, len(data), tc.batch_size):
            idx = order[i:i + tc.batch_size]
            logits, emb = model(x[idx], t[idx])
            loss = bce(logits, y[idx])
            if tc.aux_weight > 0:
                loss = loss + tc.aux_weight * ce(aux(emb * 8.0), t[idx] * 2 + y[idx].long())
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
            batches += 1
        history.append(total / max(batches, 1))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    model.eval()
    return Trained(model, norm, history)


@torch.no_grad()
def predict(model: ScoringModel, norm: NormStats, windows: FloatArray, types: IntArray,
            device: torch.device | None = None, batch_size: int = 256
            ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Probabilities (N,) and embeddings (N, D) for raw windows."""
    dev = device or torch.device("cpu")
    model = model.to(dev).eval()
    x = norm.apply(windows)
    probs: list[npt.NDArray[np.float32]] = []
    embs: list[npt.NDArray[np.float32]] = []
    for i in range(0, x.shape[0], batch_size):
        xb = torch.from_numpy(x[i:i + batch_size]).to(dev)
        tb = torch.from_numpy(types[i:i + batch_size].astype(np.int64)).to(dev)
        logits, emb = model(xb, tb)
        probs.append(torch.sigmoid(logits).float().cpu().numpy())
        embs.append(emb.float().cpu().numpy())
    if not probs:
        return (np.zeros(0, dtype=np.float32),
                np.zeros((0, model.config.embed_dim), dtype=np.float32))
    return np.concatenate(probs), np.concatenate(embs)
