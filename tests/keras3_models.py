"""The models tests/test_keras3.py converts, built the same way by tf-keras and by Keras 3
(``keras`` is either module): Sequential with BatchNormalization and Adam state, functional with
Embedding, LSTM, GRU and a shared Dense, subclassed with nested layers (Conv2D, BN) and a list."""

from __future__ import annotations

from typing import Any

import numpy as np

CASES = ("seq", "func", "sub")


def build(keras: Any, case: str) -> Any:
    layers = keras.layers
    if case == "seq":
        model = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.BatchNormalization(), layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
        return model
    if case == "func":
        inputs = keras.Input((5,), dtype="int32")
        x = layers.Embedding(10, 4)(inputs)
        shared = layers.Dense(2, name="shared")
        out = layers.Add()([shared(layers.Dense(2)(layers.LSTM(3)(x))), shared(layers.GRU(2)(x))])
        return keras.Model(inputs, out)

    class Block(layers.Layer):  # type: ignore[misc, name-defined]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.conv = layers.Conv2D(2, 3)
            self.bn = layers.BatchNormalization()

        def call(self, x: Any) -> Any:
            return self.bn(self.conv(x))

    class Net(keras.Model):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.block = Block()
            self.head = layers.Dense(3)
            self.extra = [layers.Dense(2), layers.Dense(2)]

        def call(self, x: Any) -> Any:
            x = self.head(keras.ops.mean(self.block(x), axis=(1, 2)) if hasattr(keras, "ops")
                          else keras.backend.mean(self.block(x), axis=(1, 2)))
            return self.extra[1](self.extra[0](x))

    net = Net()
    net(np.ones((1, 6, 6, 1), np.float32))
    return net


def train(model: Any, case: str) -> None:
    """One step of Adam, so that the optimizer has state (``seq`` only) and BN statistics move."""
    if case == "seq":
        rng = np.random.default_rng(1)
        model.fit(rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32),
                  verbose=0, epochs=2)


def example_input(case: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    if case == "func":
        return rng.integers(0, 10, (2, 5)).astype(np.int32)
    return rng.standard_normal((2, 6, 6, 1) if case == "sub" else (2, 4)).astype(np.float32)


def output(model: Any, case: str) -> np.ndarray:
    """The model's inference output on :func:`example_input` (BatchNormalization uses its moving statistics)."""
    return np.asarray(model(example_input(case), training=False))
