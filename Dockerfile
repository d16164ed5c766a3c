# knscale image for users with Docker: `docker build -t ghcr.io/knscale/knscale:0.1.0 .`
# The tag must match config/base/kustomization.yaml `images:` and charts/knscale (tests check it
# against the project version).
#
# The same image as `make image` (which needs no Docker and no registry, docs/install.md): the same
# pinned Debian packages (image/debian-packages.txt), the same wheel and hash-checked runtime.lock
# installed by the same script (image/install-app.sh), the same user, entrypoint and environment
# (tests/unit/test_image_recipe.py compares them). The one difference: debian:bookworm-slim keeps
# apt and a few more essential packages than `make image`'s minimal root filesystem.
# Runs as the numeric non-root user 65532 with a read-only root filesystem.

FROM debian:bookworm-slim AS build
COPY image/debian-packages.txt /tmp/debian-packages.txt
RUN apt-get update \
 && sed -e 's/#.*//' -e '/^[[:space:]]*$/d' /tmp/debian-packages.txt \
    | xargs apt-get install -y --no-install-recommends python3.11-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN python3.11 -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/build.lock \
 && /venv/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist . \
 && bash image/install-app.sh /venv/bin/python /app /dist/knscale-*.whl --no-cache-dir

FROM debian:bookworm-slim
COPY image/debian-packages.txt /tmp/debian-packages.txt
RUN apt-get update \
 && sed -e 's/#.*//' -e '/^[[:space:]]*$/d' /tmp/debian-packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/debian-packages.txt \
 && echo "nonroot:x:65532:65532:nonroot:/nonexistent:/usr/sbin/nologin" >>/etc/passwd \
 && echo "nonroot:x:65532:" >>/etc/group
COPY --from=build /app/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532 is the conventional "nonroot" uid/gid; the Deployments pin the same numbers.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/knscale"]
CMD ["serve", "--in-cluster"]
