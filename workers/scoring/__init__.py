"""The scoring model and worker: candidate windows, a small Transformer, training on
simulated scenes, the model registry and the `score_candidates` job handler.
See docs/scoring.md."""
