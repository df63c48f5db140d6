# Production image: `shepherd serve` by default; run `shepherd worker` from the same image for the
# Temporal worker. Configuration comes from the environment (SHEPHERD_*) and a mounted shepherd.yml.
# No Docker engine runs on the development machines: this file is kept correct by reading.
FROM python:3.11-slim AS build
WORKDIR /src
# Exactly the locked runtime dependencies (hash-checked, nothing resolved), then Shepherd without deps.
COPY requirements.lock ./
RUN pip install --no-cache-dir --prefix=/install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
RUN pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 shepherd
COPY --from=build /install /usr/local
USER shepherd
WORKDIR /home/shepherd
ENV SHEPHERD_CONFIG_PATH=/etc/shepherd/shepherd.yml \
    PYTHONUNBUFFERED=1
# 3000: Slack's requests; 9100: serve's /metrics, /healthz, /readyz (a worker container: 9101, and the
# Temporal SDK's metrics on 9102). The check asks whichever of serve or worker this container runs.
EXPOSE 3000 9100 9101 9102
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u\nfor port in (os.environ.get('SHEPHERD_METRICS_PORT') or '9100', '9101'):\n    try:\n        sys.exit(0 if u.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)\n    except OSError:\n        pass\nsys.exit(1)"]
ENTRYPOINT ["shepherd"]
CMD ["serve", "--http", "--port", "3000"]
