# AIS image: one image for every process (trading loop, projector, API), chosen by command.
#   docker build -t ais .
#   docker run --rm ais ais --help
# Dependencies come only from requirements.lock (pinned); the project installs without
# resolving anything else. The processes run as the unprivileged user `ais`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIS_HOME=/var/lib/ais

RUN groupadd --system --gid 10001 ais \
    && useradd --system --uid 10001 --gid ais --home-dir /home/ais --create-home \
        --shell /usr/sbin/nologin ais \
    && mkdir -p /var/lib/ais \
    && chown ais:ais /var/lib/ais

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock

# The project (editable, so config/ and data/ are found next to the code).
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY application ./application
COPY projections ./projections
COPY adapters ./adapters
COPY interfaces ./interfaces
COPY config ./config
COPY data ./data
RUN pip install --no-deps --no-build-isolation -e . \
    && python -m compileall -q domain application projections adapters interfaces

USER ais
VOLUME ["/var/lib/ais"]
EXPOSE 8000 9101 9102

# The API's liveness; the projector and the loop override it in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"

CMD ["ais", "--help"]
