# syntax=docker/dockerfile:1
# GPU worker image (`gpu` queue: training and catalogue prediction). PyPI's torch wheels for
# Linux x86_64 are the CUDA build and bring the CUDA runtime libraries as pip packages, so a
# plain Python base suffices; the driver comes from the host (NVIDIA Container Toolkit).
#   docker build -f deploy/docker/worker.Dockerfile -t galaxy-platform-worker-gpu .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_HOME=/srv/galaxy-platform/app \
    VAR_DIR=/srv/galaxy-platform/var \
    MEDIA_ROOT=/srv/galaxy-platform/media \
    STATIC_ROOT=/srv/galaxy-platform/static \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

COPY requirements.txt /tmp/requirements.txt
RUN sed '/^# Tests/,$d' /tmp/requirements.txt > /tmp/runtime.txt \
    && pip install --no-cache-dir -r /tmp/runtime.txt \
    && rm /tmp/requirements.txt /tmp/runtime.txt

RUN groupadd --system --gid 10001 galaxy \
    && useradd --system --uid 10001 --gid galaxy --home-dir /srv/galaxy-platform --shell /usr/sbin/nologin galaxy \
    && mkdir -p "${APP_HOME}" "${VAR_DIR}" "${MEDIA_ROOT}" "${STATIC_ROOT}" \
    && chown -R galaxy:galaxy /srv/galaxy-platform

WORKDIR ${APP_HOME}
COPY --chown=galaxy:galaxy manage.py pyproject.toml ./
COPY --chown=galaxy:galaxy platform ./platform
COPY --chown=galaxy:galaxy classifier ./classifier
COPY --chown=galaxy:galaxy frontend ./frontend
COPY --chown=galaxy:galaxy deploy ./deploy

USER 10001:10001
# One process per GPU, nothing prefetched (deploy/README.md). The prefork pool forks before
# any task imports torch, so CUDA initialises in the child.
CMD ["celery", "--workdir", "platform", "-A", "config", "worker", "-Q", "gpu", "--concurrency", "1", "--prefetch-multiplier", "1", "-n", "gpu@%h"]
