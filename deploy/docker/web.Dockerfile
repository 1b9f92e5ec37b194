# syntax=docker/dockerfile:1
# Slim image without CUDA: web (gunicorn), the CPU worker (`default` queue), beat and the
# one-off migrate service. Build from the repository root:
#   docker build -f deploy/docker/web.Dockerfile -t galaxy-platform-web .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_HOME=/srv/galaxy-platform/app \
    VAR_DIR=/srv/galaxy-platform/var \
    MEDIA_ROOT=/srv/galaxy-platform/media \
    STATIC_ROOT=/srv/galaxy-platform/static

# CPU-only torch (about 10x smaller than the CUDA build); the runtime section of
# requirements.txt is everything above its "# Tests" marker.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements.txt /tmp/requirements.txt
RUN sed '/^# Tests/,$d' /tmp/requirements.txt > /tmp/runtime.txt \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1 \
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
# Static files baked in: whitenoise serves them when no nginx sits in front (Kubernetes);
# compose's migrate service refreshes the shared static volume nginx reads.
RUN DEBUG=false SECRET_KEY=build-only python manage.py collectstatic --noinput

EXPOSE 8000
CMD ["gunicorn", "--pythonpath", "platform", "-c", "deploy/gunicorn.conf.py", "config.wsgi"]
