# Keystone (identity) for deploy/compose.yaml: the `keystone` package from PyPI with its pinned
# dependencies (deploy/keystone/requirements.txt, hash-checked), served by gunicorn on port 5000.
# The same image runs the keystone-bootstrap job. Build context: the repository root.

FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
COPY deploy/keystone/requirements.txt /tmp/requirements.txt
RUN uv venv --python /usr/local/bin/python3.11 /opt/keystone \
    && uv pip install --python /opt/keystone/bin/python --require-hashes -r /tmp/requirements.txt

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --no-create-home keystone \
    && mkdir -p /var/lib/keystone /etc/keystone /opt/keystone-run \
    && chown -R keystone:keystone /var/lib/keystone
COPY --from=build /opt/keystone /opt/keystone
COPY deploy/keystone/gunicorn.conf.py deploy/keystone/bootstrap.py deploy/keystone/healthcheck.py /opt/keystone-run/
ENV PATH="/opt/keystone/bin:$PATH" \
    PYTHONUNBUFFERED=1
# gunicorn finds gunicorn.conf.py here.
WORKDIR /opt/keystone-run
USER keystone
EXPOSE 5000
CMD ["gunicorn"]
