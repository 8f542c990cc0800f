# glimpse-api (also runs `glimpse-manage db sync` for the compose `migrate` service).
# Build context: the repository root (docker build -f deploy/images/api.Dockerfile .).

FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first: this layer is rebuilt only when the lock or a pyproject.toml changes.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/api/pyproject.toml services/api/
COPY services/worker/pyproject.toml services/worker/
COPY services/scrubber/pyproject.toml services/scrubber/
RUN uv sync --frozen --no-dev --no-install-workspace --package glimpse-api
COPY shared/src shared/src
COPY services/api/src services/api/src
RUN uv sync --frozen --no-dev --no-editable --package glimpse-api

FROM python:3.11-slim
# Every path a volume is mounted on exists here, owned by the service user: a new named
# volume takes its owner from the image (else it would belong to root and writes would fail).
RUN useradd --system --uid 10001 --user-group --no-create-home glimpse \
    && mkdir -p /var/lib/glimpse/images /var/lib/glimpse/cheap /var/lib/glimpse/staging \
        /var/lib/glimpse/tasks /var/lib/glimpse/run /etc/glimpse \
    && chown -R glimpse:glimpse /var/lib/glimpse
COPY --from=build /app/.venv /app/.venv
# Our metadata definitions, for `glimpse-manage db load_metadefs` ([DEFAULT] metadata_source_path).
COPY etc/metadefs /etc/glimpse/metadefs
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1
WORKDIR /var/lib/glimpse
USER glimpse
EXPOSE 9292
CMD ["glimpse-api", "--config-file", "/etc/glimpse/glimpse.conf"]
