# The pipeline's image: the `checkout` CLI (worker, init, send, get, events).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY worker ./worker
COPY tasks ./tasks
RUN pip install . && useradd --system --uid 10001 checkout

USER checkout
ENTRYPOINT ["checkout"]
CMD ["worker"]
