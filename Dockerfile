# syntax=docker/dockerfile:1
# One image for the three processes of mergequeue (docs/operations.md, "Processes"):
#   web (default):  uvicorn api.main:app --host 0.0.0.0 --port 8000
#   worker:         arq jobs.WorkerSettings
#   migrations:     alembic upgrade head
# Dependencies come from requirements/runtime.txt, a lock with hashes made from
# pyproject.toml by scripts/lock for this Python version: the same versions as every
# development and test virtualenv (scripts/venv), and nothing else (no test tools, no
# reload watcher).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The dependency layer first: rebuilt only when the lock changes, not on every source edit.
# The virtualenv has no pip of its own: the builder's pip installs into it (--python).
COPY requirements/runtime.txt requirements/build.txt requirements/
RUN python -m venv --without-pip /opt/venv \
    && pip install --no-cache-dir --require-hashes --no-deps -r requirements/build.txt \
    && pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes --no-deps \
       -r requirements/runtime.txt
# Then mergequeue itself, from its own metadata (pyproject.toml), as a wheel built with the
# locked setuptools (not whatever pip would fetch), on top of the locked dependencies.
COPY pyproject.toml README.md ./
COPY api/ api/
COPY cli/ cli/
COPY jobs/ jobs/
COPY observability/ observability/
COPY mergequeue/ mergequeue/
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
    && pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /tmp/dist/mergequeue-*.whl \
    && pip --python /opt/venv/bin/python check

FROM python:${PYTHON_VERSION}-slim
# The OCI labels: pass --build-arg REVISION=$(git rev-parse HEAD) --build-arg
# CREATED=$(date -u +%FT%TZ) --build-arg SOURCE=<repository URL> when building a release.
ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="mergequeue" \
      org.opencontainers.image.description="A self-hosted GitHub merge queue: FastAPI web service and arq worker." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# UID/GID 10001: the Helm chart's runAsUser/runAsGroup.
RUN groupadd --system --gid 10001 mergequeue \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin mergequeue
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# alembic reads alembic.ini and migrations/ from the working directory.
COPY alembic.ini ./
COPY migrations/ migrations/
USER 10001:10001
EXPOSE 8000 8491
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
