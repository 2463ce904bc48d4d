# mutransfer dashboard + engine. Not built here (this machine has no Docker engine): kept
# simple enough to check by reading. See README, "Docker".
#
#   docker build -t mutransfer .
#   docker run -p 8501:8501 -v mutransfer-data:/data mutransfer
#
# Optional: a CPU-only torch wheel index, e.g. --build-arg TORCH_INDEX_URL=<index url>; by
# default pip resolves torch==2.13.0 from PyPI (a CUDA build on x86_64, which also runs on CPU).
# Optional: --build-arg WITH_HF=1 adds Hugging Face transformers (`model: {kind: hf, ...}`).

# ---- stage 1: build a virtual environment with every dependency -------------------------
FROM python:3.11-slim AS deps
ARG TORCH_INDEX_URL=""
ARG WITH_HF=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies before source: editing code does not invalidate this layer.
COPY requirements.txt requirements-hf.txt /tmp/
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" "torch==2.13.0"; \
    fi \
 && pip install -r /tmp/requirements.txt \
 && if [ "$WITH_HF" = "1" ]; then pip install -r /tmp/requirements-hf.txt; fi

# ---- stage 2: runtime image -------------------------------------------------------------
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    MUTRANSFER_DB_PATH=/data/mutransfer.duckdb
RUN groupadd --system app && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /data && chown app:app /data
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app mucore/ mucore/
COPY --chown=app:app experiments/ experiments/
# app/ carries the dashboard's Streamlit settings (app/.streamlit/config.toml, read beside
# app/main.py); the --server.address flag below overrides its loopback bind.
COPY --chown=app:app app/ app/
USER app
# The DuckDB store and its raw metric chunks live on this volume.
VOLUME ["/data"]
# Streamlit's port. Inside the container the server binds 0.0.0.0 (publish it with -p);
# outside Docker the default bind stays 127.0.0.1.
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read().strip() == b'ok' else 1)"
CMD ["streamlit", "run", "app/main.py", "--server.address=0.0.0.0", "--server.port=8501", "--server.headless=true"]
