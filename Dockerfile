# The aytada-es image: one role per container (`aytada-es worker relay|stages|projections|web`).
# ffmpeg comes from the imageio-ffmpeg wheel and libespeak-ng from espeakng-loader; PostgreSQL's
# client library is the one system package the service needs.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AYTADA_DATA_DIR=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin aytada \
    && mkdir -p /data \
    && chown aytada /data

USER aytada
VOLUME ["/data"]
EXPOSE 8000
CMD ["aytada-es", "worker", "web", "--host", "0.0.0.0", "--port", "8000"]
