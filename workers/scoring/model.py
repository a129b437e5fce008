"""The scoring model: a small Transformer encoder over a candidate window.

Input: (B, T, F) normalised windows and (B,) type indices. A learned pooled token (plus the
candidate type's embedding) is prepended, sinusoidal positions are added, two encoder layers
run, and the pooled token (plus the mean of the step tokens, a residual path that speeds up
training) feeds two heads: the logit that the candidate is a true event and a unit-length
64-d embedding (for nearest-neighbour search with cosine distance).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from workers.scoring.windows import DEFAULT_STEPS, EVENT_TYPES, N_FEATURES


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyper-parameters (stored with the weights)."""

    n_features: int = N_FEATURES
    steps: int = DEFAULT_STEPS
    n_types: int = len(EVENT_TYPES) + 1
    d_model: int = 64
    heads: int = 4
    layers: int = 2
    ff: int = 128
    dropout: float = 0.1
    embed_dim: int = 64

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """The classic fixed (length, dim) positional encoding."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: pe[:, 1::2].shape[1]])
    return pe


class ScoringModel(nn.Module):
    """Transformer encoder with a pooled token, a probability head and an embedding head."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = config or ModelConfig()
        self.config = cfg
        self.input = nn.Linear(cfg.n_features, cfg.d_model)
        self.pool_token = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.type_embedding = nn.Embedding(cfg.n_types, cfg.d_model)
        self.register_buffer("positions", sinusoidal_positions(cfg.steps + 1, cfg.d_model),
                             persistent=False)
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ff, cfg.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.score_head = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(),
                                        nn.Linear(cfg.d_model, 1))
        self.embed_head = nn.Linear(cfg.d_model, cfg.embed_dim)
        nn.init.normal_(self.pool_token, std=0.02)

    def forward(self, windows: Tensor, types: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T, F), (B,) → logits (B,), unit embeddings (B, embed_dim)."""
        b, t, f = windows.shape
        if f != self.config.n_features or t != self.config.steps:
            raise ValueError(f"expected windows (B, {self.config.steps}, "
                             f"{self.config.n_features}), got {tuple(windows.shape)}")
        x = self.input(windows)
        pool = self.pool_token.expand(b, 1, -1) + self.type_embedding(types).unsqueeze(1)
        positions: Tensor = self.positions  # type: ignore[assignment]
        x = torch.cat([pool, x], dim=1) + positions.unsqueeze(0)
        enc = self.encoder(x)
        h = self.norm(enc[:, 0] + enc[:, 1:].mean(dim=1))
        logits = self.score_head(h).squeeze(-1)
        emb = nn.functional.normalize(self.embed_head(h), dim=-1)
        return logits, emb


def weights_bytes(model: ScoringModel) -> bytes:
    """The state dict serialised (deterministic for equal weights)."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return buf.getvalue()


def load_weights(config: ModelConfig, data: bytes) -> ScoringModel:
    """A model in eval mode from weights_bytes()."""
    model = ScoringModel(config)
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model
