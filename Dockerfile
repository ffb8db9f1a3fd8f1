# The pipeline's image: the `checkout` CLI (worker, init, send, get, events), installed
# from the project's wheel, as `make wheel-check` installs and runs it in CI.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY worker ./worker
COPY tasks ./tasks
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY --from=wheel /dist /dist
RUN pip install /dist/*.whl && rm -rf /dist && useradd --system --uid 10001 checkout
# Celery puts the working directory on sys.path: an empty one, so only the wheel is imported.
WORKDIR /home/checkout
USER checkout
ENTRYPOINT ["checkout"]
CMD ["worker"]
