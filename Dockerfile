# PD segmentation service: TorchServe 0.12 serving pd_segmenter, CPU only.
#
#   docker build -t pd-segmenter:1.0.0 .
#   docker run --rm --init --memory 2g -p 127.0.0.1:8080-8082:8080-8082 pd-segmenter:1.0.0
#
# Build arguments, token keys, probes and deployment: docs/deployment.md.
#
# Stages
#   python-deps   /opt/venv with the runtime packages of requirements.txt (CPU torch)
#   archive       + torch-model-archiver; runs scripts/export.py -> pd_segmenter.mar
#   runtime-venv  /opt/venv pruned: no pip, no test suites, no torch headers or C++ test
#                 programs, stripped torch libraries, no packages serving never imports
#   jre           a jlink-ed Java 17 runtime with only the modules TorchServe's frontend uses,
#                 and the token-keys plugin jar (keys from a mounted Secret), compiled by its JDK
#   (final)       base image + tini + the JRE + the venv + the .mar + configuration
#
# Java: Debian's openjdk-17-jre-headless is about 200 MB installed; the jlink-ed runtime of
# the modules `jdeps` finds in model-server.jar (list below) is about 50 MB and starts the
# same frontend. The JDK that builds it stays in the jre stage.

ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS python-deps
# Optional wheel index for torch, e.g. PyTorch's CPU wheel index; empty: pip's own config.
ARG TORCH_INDEX_URL=""
# Optional, for this build only (build arguments of a stage never reach the final image):
# a folder of wheels (e.g. the CPU torch wheel on a build volume) and a CA bundle for pip.
ARG PIP_FIND_LINKS=""
ARG PIP_CERT=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements.txt ./
# Runtime subset of requirements.txt: the archiver, onnx (the exporter), the test runner, tqdm,
# requests and the reliability suite's hypothesis and locust are needed only to build the
# archive, to train or to test.
RUN set -eu; \
    if [ -z "$PIP_FIND_LINKS" ]; then unset PIP_FIND_LINKS; fi; \
    if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi; \
    grep -v -E '^(torch-model-archiver|onnx|pytest|tqdm|requests|hypothesis|locust)==' requirements.txt > runtime-requirements.txt; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        -r runtime-requirements.txt; \
    /opt/venv/bin/python -c "import torch; assert not torch.version.cuda, 'a CUDA torch build was installed'"

# ---------------------------------------------------------------------------------------
FROM python-deps AS archive
ARG PIP_FIND_LINKS=""
ARG PIP_CERT=""
RUN set -eu; \
    if [ -z "$PIP_FIND_LINKS" ]; then unset PIP_FIND_LINKS; fi; \
    if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi; \
    grep -E '^(torch-model-archiver|onnx)==' requirements.txt > archiver-requirements.txt; \
    /opt/venv/bin/pip install -r archiver-requirements.txt
COPY scripts/_bootstrap.py scripts/export.py scripts/
COPY handler/ handler/
COPY config/model-config.yaml config/
COPY model_store/weights/ model_store/weights/
# The version the model reports ("model": {"version": ...}) and TorchServe registers.
ARG MODEL_VERSION=1.0
# The network's runtime: frozen TorchScript, or onnx for ONNX Runtime (README, "Which runtime").
ARG RUNTIME=torchscript
RUN /opt/venv/bin/python scripts/export.py --version "$MODEL_VERSION" --runtime "$RUNTIME"

# ---------------------------------------------------------------------------------------
FROM python-deps AS runtime-venv
# torch's own dependencies that serving never imports (torch.compile and torch.export would),
# and ONNX Runtime's (only its tools import them). Build with --build-arg PRUNE_PACKAGES=""
# to keep them.
ARG PRUNE_PACKAGES="sympy mpmath networkx jinja2 markupsafe fsspec filelock flatbuffers protobuf"
# strip only torch's libraries: the auditwheel-patched ones of numpy/scipy/pillow break
# when stripped ("ELF load command address/offset not page-aligned").
# torch/bin keeps torch_shm_manager, which `import torch.multiprocessing` requires.
# torch._dynamo and torch._inductor (torch.compile), scipy.io / scipy.cluster, and ONNX
# Runtime's Python tools and its C-API library (the Python module links its own copy) are never
# used by the handler (checked by importing it and running the network: not in sys.modules);
# scripts/image_test.sh runs real predictions on the result.
RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends binutils; \
    rm -rf /var/lib/apt/lists/*; \
    if [ -n "$PRUNE_PACKAGES" ]; then /opt/venv/bin/python -m pip uninstall -y $PRUNE_PACKAGES; fi; \
    /opt/venv/bin/python -m pip uninstall -y pip setuptools; \
    site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \
    find "$site" -path "$site/torch" -prune -o -type d -name tests -prune -exec rm -rf {} +; \
    rm -rf "$site/scipy/io" "$site/scipy/cluster"; \
    o="$site/onnxruntime"; \
    rm -rf "$o/transformers" "$o/tools" "$o/quantization" "$o/datasets" "$o"/capi/libonnxruntime.so*; \
    t="$site/torch"; \
    rm -rf "$t/test" "$t/include" "$t/share/cmake" "$t/_dynamo" "$t/_inductor" \
        "$t/lib/libjitbackend_test.so" "$t/lib/libtorchbind_test.so" \
        "$t/lib/libbackend_with_compiler.so" "$t/lib/libaoti_custom_ops.so"; \
    find "$t/bin" -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} +; \
    strip --strip-unneeded "$t"/lib/*.so* "$t/bin/torch_shm_manager"; \
    /opt/venv/bin/python -c "import torch, onnxruntime, numpy, scipy.signal, scipy.optimize, matplotlib, PIL, yaml, psutil, redis, ts"

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS jre
ARG JAVA_MODULES=java.base,java.compiler,java.desktop,java.logging,java.management,java.management.rmi,java.naming,java.prefs,java.scripting,java.sql,java.xml,jdk.crypto.ec,jdk.management,jdk.sctp,jdk.unsupported,jdk.zipfs
# man1 must exist for the JDK's update-alternatives in slim images (they drop man pages);
# jlink --strip-debug calls objcopy (binutils).
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless binutils \
    && rm -rf /var/lib/apt/lists/* \
    && jlink --add-modules "$JAVA_MODULES" --strip-debug --no-man-pages --no-header-files \
        --compress=2 --output /opt/java \
    && /opt/java/bin/java -version
COPY --from=python-deps /opt/venv/lib/python3.11/site-packages/ts/frontend/model-server.jar /src/
COPY k8s/container/token-keys/ /src/token-keys/
RUN /src/token-keys/build.sh /src/model-server.jar /opt/pd-serving/plugins/pd-token-keys.jar

# ---------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="pd-segmenter" \
      org.opencontainers.image.description="Partial-discharge segmentation served by TorchServe 0.12 (CPU)" \
      org.opencontainers.image.version="1.0.0"
# tini: PID 1 that forwards SIGTERM to TorchServe's JVM and reaps the worker processes.
# The fixed uid/gid 1000 is what the Kubernetes manifests run as (runAsUser: 1000).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb \
    && groupadd --gid 1000 model-server \
    && useradd --uid 1000 --gid 1000 --no-create-home --home-dir /home/model-server \
        --shell /usr/sbin/nologin model-server \
    && mkdir -p /home/model-server/model-store /home/model-server/config \
        /home/model-server/run /home/model-server/logs \
    && chown 1000:1000 /home/model-server/run /home/model-server/logs
COPY --from=jre /opt/java /opt/java
COPY --from=jre /opt/pd-serving/plugins/ /opt/pd-serving/plugins/
COPY --from=runtime-venv /opt/venv /opt/venv
COPY --from=archive /src/model_store/pd_segmenter.mar /home/model-server/model-store/
COPY config/config.properties config/metrics.yaml /home/model-server/config/
COPY k8s/container/start_torchserve.py k8s/container/healthcheck.py k8s/container/log4j2.xml /opt/pd-serving/
# Where TorchServe writes (a read-only root file system needs volumes at exactly these):
#   /home/model-server/run   working directory: key_file.json (token keys)
#   /tmp                     java.io.tmpdir: worker sockets, the unpacked .mar; matplotlib cache
#   /home/model-server/logs  LOG_LOCATION / METRICS_LOCATION (empty with the stdout log config)
# OMP_WAIT_POLICY=PASSIVE: the network's OpenMP threads sleep at a barrier instead of spinning.
# Two workers on two threads each, on a 2-core pod, spun against each other: a batch of the
# largest requests took 22-47 s instead of about 3 (docs/benchmarks.md, 2026-12-06 morning).
ENV PATH=/opt/venv/bin:/opt/java/bin:$PATH \
    JAVA_HOME=/opt/java \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOG_LOCATION=/home/model-server/logs \
    METRICS_LOCATION=/home/model-server/logs \
    MPLCONFIGDIR=/tmp/matplotlib \
    TS_KEY_FILE=/home/model-server/run/key_file.json \
    TS_MANAGEMENT_URL=http://127.0.0.1:8081 \
    TINI_SUBREAPER=1 \
    OMP_WAIT_POLICY=PASSIVE
USER 1000:1000
WORKDIR /home/model-server/run
EXPOSE 8080 8081 8082
# Token authorization is on, so the check reads the management key from key_file.json and
# asks the management API for the model's workers: healthy = at least one worker READY.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-I", "-S", "/opt/pd-serving/healthcheck.py"]
ENTRYPOINT ["tini", "--"]
CMD ["python", "/opt/pd-serving/start_torchserve.py", \
     "--ts-config", "/home/model-server/config/config.properties", \
     "--model-store", "/home/model-server/model-store", \
     "--log-config", "/opt/pd-serving/log4j2.xml", \
     "--foreground", "--ncs"]
