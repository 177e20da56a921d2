# dossier-audit: one image for the consumer, the migrations and the simulator.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY producers ./producers
COPY consumers ./consumers
COPY inspection ./inspection
COPY dossier_runtime ./dossier_runtime
COPY dossier_audit ./dossier_audit
RUN pip install . && useradd --system --uid 10001 dossier
USER dossier
ENTRYPOINT ["dossier"]
CMD ["--help"]
