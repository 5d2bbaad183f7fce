# The reconciler as a container image. One-off commands:
#   docker run --rm -v "$PWD:/work" reconciler plan /work/clusters
# The GitOps daemon, as a non-root user, its state (git clone, ledgers, simcloud) in a volume:
#   docker run -d --name reconciler -v reconciler-state:/state -p 9108:9108 \
#     reconciler run --source https://github.com/acme/infra.git --branch main --path clusters \
#     --listen 0.0.0.0:9108
FROM python:3.11-slim

# git for the daemon's clone (GitPython drives the git binary); ssh for ssh:// sources.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
COPY providers ./providers
RUN pip install --no-cache-dir '.[aws,xcp,openstack,postgresql]' \
    && useradd --create-home --uid 10001 reconciler \
    && mkdir -p /state && chown reconciler /state

USER reconciler
ENV RECONCILER_STATE_DIR=/state \
    PYTHONUNBUFFERED=1
VOLUME ["/state"]
# The web console at / (closed unless the desired state declares a Console document), /healthz,
# /readyz, /metrics and POST /hooks/git when the daemon runs with --listen 0.0.0.0:9108
EXPOSE 9108
# Healthy while the daemon's reconcile loop makes progress (one-off commands exit long before it matters).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"
# SIGTERM (docker stop) lets in-flight provider calls finish, closes the ledger and releases the leases.
STOPSIGNAL SIGTERM
ENTRYPOINT ["reconciler"]
CMD ["--help"]
