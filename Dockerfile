# syntax=docker/dockerfile:1
# The telephony processes (api, worker, voice, migrate) in one image: `docker run IMAGE api`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# espeak-ng: the fast offline text-to-speech engine of the voice pipeline.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*

# Only what the package needs (see [tool.setuptools] in pyproject.toml); tests and benches stay out.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY models/ models/
COPY workflows/ workflows/
COPY activities/ activities/
COPY voice/ voice/
COPY api/ api/
COPY workers/ workers/
RUN pip install . \
    && cd / \
    && rm -rf /build

RUN useradd --create-home --uid 10001 --user-group telephony \
    && mkdir -p /var/lib/telephony \
    && chown telephony:telephony /var/lib/telephony
USER telephony
WORKDIR /home/telephony
ENV TELEPHONY_DATA_DIR=/var/lib/telephony

EXPOSE 8000
ENTRYPOINT ["telephony"]
CMD ["api"]
