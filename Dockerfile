# syntax=docker/dockerfile:1
# One image for the three processes of mergequeue (CONTRACT.md section 1):
#   web (default):  uvicorn api.main:app --host 0.0.0.0 --port 8000
#   worker:         arq jobs.WorkerSettings
#   migrations:     alembic upgrade head
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# Installed from the project's own metadata (pyproject.toml), as the README's scripts/venv does
# (`pip install -e ".[run]"`), minus the editable mode and honcho, which only runs both locally.
COPY pyproject.toml README.md ./
COPY api/ api/
COPY jobs/ jobs/
COPY observability/ observability/
COPY mergequeue/ mergequeue/
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/pip uninstall --yes pip

FROM python:${PYTHON_VERSION}-slim
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
