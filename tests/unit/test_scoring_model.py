"""Model forward shapes, metrics, and training determinism for a seed (tiny config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workers.scoring.device import select_device
from workers.scoring.model import ModelConfig, ScoringModel, load_weights, weights_bytes
from workers.scoring.train import (
    Dataset,
    TrainConfig,
    average_precision,
    compare_scores,
    predict,
    roc_auc,
    train_model,
)
from workers.scoring.windows import N_FEATURES

TINY = ModelConfig(steps=16, d_model=16, heads=2, ff=32, embed_dim=8)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _toy(n: int = 96, seed: int = 0) -> Dataset:
    """Positives have a speed bump inside the span; negatives do not."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, TINY.steps, N_FEATURES))
    labels = (np.arange(n) % 2).astype(np.float32)
    w[labels == 1, :, 1] += 2.0
    w[:, 3:5, 2] = np.nan  # missing values are handled
    return Dataset(w, rng.integers(0, 11, n).astype(np.int64), labels,
                   rng.uniform(size=n), np.arange(n, dtype=np.int64) % 4)


def test_forward_shapes_and_unit_embeddings() -> None:
    model = ScoringModel(TINY).eval()
    logits, emb = model(torch.zeros(5, TINY.steps, N_FEATURES), torch.arange(5))
    assert logits.shape == (5,) and emb.shape == (5, TINY.embed_dim)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(5))
    default = ScoringModel().eval()
    logits, emb = default(torch.zeros(2, 64, N_FEATURES), torch.tensor([0, 11]))
    assert logits.shape == (2,) and emb.shape == (2, 64)
    with pytest.raises(ValueError, match="expected windows"):
        model(torch.zeros(1, 8, N_FEATURES), torch.zeros(1, dtype=torch.long))


def test_weights_round_trip() -> None:
    model = ScoringModel(TINY).eval()
    data = weights_bytes(model)
    again = load_weights(TINY, data)
    x, t = torch.randn(3, TINY.steps, N_FEATURES), torch.tensor([1, 2, 3])
    torch.testing.assert_close(model(x, t)[0], again(x, t)[0])
    assert ModelConfig.from_json(TINY.to_json()) == TINY


def test_training_is_deterministic_for_a_seed_and_learns() -> None:
    data = _toy()
    cfg = TrainConfig(epochs=12, batch_size=32, lr=5e-3, seed=3)
    a = train_model(data, TINY, cfg)
    b = train_model(data, TINY, cfg)
    assert weights_bytes(a.model) == weights_bytes(b.model)
    assert a.history == b.history
    c = train_model(data, TINY, TrainConfig(epochs=1, batch_size=32, seed=4))
    assert weights_bytes(c.model) != weights_bytes(a.model)
    probs, emb = predict(a.model, a.norm, data.windows, data.types)
    assert probs.shape == (96,) and emb.shape == (96, TINY.embed_dim)
    auc = roc_auc(data.labels, probs)
    assert auc is not None and auc > 0.9


def test_metrics_match_hand_computed_values() -> None:
    y = [1, 0, 1, 0, 1]
    s = [0.9, 0.8, 0.7, 0.2, 0.1]
    # Pairs (pos, neg) ranked right: 0.9>0.8, 0.9>0.2, 0.7>0.2 → 3 of 6.
    assert roc_auc(y, s) == pytest.approx(3 / 6)
    # Precision at each positive: 1/1, 2/3, 3/5 → mean.
    assert average_precision(y, s) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1], [0.1, 0.2]) is None and average_precision([0, 0], [1, 2]) is None
    out = compare_scores(y, s, [0.5] * 5)
    assert out["rule_score"]["auc"] == 0.5 and out["ap_gain"] == pytest.approx(
        round(average_precision(y, s) or 0, 4) - 0.6, abs=1e-4)
    # Rule AP 0.6 leaves 0.4 to gain; the model took gain / 0.4 of it.
    assert out["ap_headroom"] == pytest.approx(0.4)
    assert out["headroom_taken"] == pytest.approx(out["ap_gain"] / 0.4, abs=1e-3)
    perfect_rule = compare_scores(y, s, s)
    assert perfect_rule["ap_gain"] == 0 and perfect_rule["headroom_taken"] == 0
    ideal = compare_scores([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], [0.9, 0.1, 0.8, 1.0])
    assert ideal["ap_headroom"] == pytest.approx(1 - ideal["rule_score"]["ap"])
    assert ideal["headroom_taken"] == pytest.approx(1.0)


def test_average_precision_over_labelled_events() -> None:
    y, s = [1, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.2, 0.1]
    # 5 labelled events, 3 held by candidates: recall steps of 1/5, precisions 1, 2/3, 3/5
    assert average_precision(y, s, n_events=5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 5)
    # = AP over candidates x the share of events the candidates hold
    assert average_precision(y, s, n_events=5) == pytest.approx(
        (average_precision(y, s) or 0) * 3 / 5)
    assert average_precision([], [], n_events=4) == 0.0
    assert average_precision([0], [0.3], n_events=0) is None
    with pytest.raises(ValueError, match="n_events 2 < 3"):
        average_precision(y, s, n_events=2)


def test_held_out_row_compares_the_rules_and_the_same_candidates() -> None:
    from workers.bench.learning_bench import held_out_row

    labels = np.array([True, False, True, True, False])
    tiers = np.array(["strict", "strict", "recall", "recall", "recall"])
    rule = np.array([0.9, 0.8, 0.4, 0.3, 0.35])
    model = np.array([0.9, 0.1, 0.8, 0.7, 0.2])
    row = held_out_row("zara01", "accompany", 4, labels, tiers, {
        "rule_score": rule, "simulation": model, "labels": model,
        "simulation+labels": model})
    assert (row["candidates"], row["true"], row["bound"]) == ("2 + 3", "1 + 2", 0.75)
    assert row["rule_score_strict"] == pytest.approx(0.25)  # one of 4 events, precision 1
    # every tier by rule_score (T 0.9, F 0.8, T 0.4, F 0.35, T 0.3): precisions 1, 2/3, 3/5
    assert row["rule_score"] == pytest.approx(round((1 + 2 / 3 + 3 / 5) / 4, 4))
    assert row["simulation+labels"] == pytest.approx(0.75)  # the three true ones first
    assert row["gain"] == pytest.approx(round(0.75 - row["rule_score"], 4))
    assert row["gain_vs_rules"] == pytest.approx(0.5)


def test_device_auto_falls_back_to_cpu() -> None:
    from workers.errors import UserError

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected
    assert select_device("cpu").type == "cpu"
    with pytest.raises(UserError, match="--device 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            select_device("cuda")
