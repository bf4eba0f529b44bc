# adgm-serve: one image for the API and the workers.
#   CPU (API, CPU worker):  docker build -t adgm-serve:cpu .
#   GPU worker (CUDA torch): docker build -t adgm-serve:gpu --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 .
# BuildKit builds it (the default since Docker 23 and in Compose v2; DOCKER_BUILDKIT=1 for Docker 20.10).
# Behind a TLS-inspecting proxy, give pip the CA bundle as a build secret (it never enters a layer):
#   DOCKER_BUILDKIT=1 docker build --secret id=pip-cert,src=/etc/ssl/certs/ca-certificates.crt \
#       --build-arg PIP_CERT=/run/secrets/pip-cert -t adgm-serve:cpu .
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_CERT
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 adgm
WORKDIR /srv/adgm

# torch first, from the index that matches the hardware; the package install then keeps it.
RUN --mount=type=secret,id=pip-cert pip install --index-url "${TORCH_INDEX_URL}" "torch>=2.4,<3" "torchvision>=0.19"
COPY pyproject.toml README.md ./
COPY adgm_core ./adgm_core
COPY store ./store
COPY app ./app
COPY worker ./worker
RUN --mount=type=secret,id=pip-cert pip install -e .

# State lives in /data (volumes in docker-compose.yml), owned by the unprivileged user.
RUN mkdir -p /data/artifacts /data/mnist && chown -R adgm:adgm /data
ENV ADGM_DATABASE_URL=sqlite:////data/adgm.sqlite \
    ADGM_ARTIFACT_DIR=/data/artifacts
USER adgm

EXPOSE 8000
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000"]
