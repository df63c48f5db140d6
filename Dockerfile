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
EXPOSE 3000
ENTRYPOINT ["shepherd"]
CMD ["serve", "--http", "--port", "3000"]
