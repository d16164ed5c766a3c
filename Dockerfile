# knscale image: `docker build -t ghcr.io/knscale/knscale:0.1.0 .`
# The tag must match config/base/kustomization.yaml `images:` (a test checks it against the
# project version). Runs as a numeric non-root user with a read-only root filesystem.

FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m pip install --no-cache-dir --upgrade pip build
COPY . .
RUN python -m build --wheel --outdir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /dist/*.whl /tmp/wheels/
RUN python -m pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels
# 65532 is the conventional "nonroot" uid/gid; the Deployment pins the same numbers.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8443
ENTRYPOINT ["knscale"]
CMD ["serve", "--in-cluster"]
