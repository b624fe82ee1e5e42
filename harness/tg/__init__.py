"""The training core, and the only place that imports tinygrad: MNIST data, run specs, models,
optimisers, augmentation, the trainer, tinygrad's devices, counters, kernel search, PoCL's cache lock,
and the machine description. Imports only `base`."""
