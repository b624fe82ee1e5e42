"""mnist-bench: fixed-seed MNIST training benchmarks for tinygrad."""

__version__ = "0.1.0"
