# The reconciler as a container image: `docker run --rm -v "$PWD:/work" reconciler plan /work/clusters`
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
COPY providers ./providers
RUN pip install --no-cache-dir '.[aws,xcp]' \
    && useradd --create-home --uid 10001 reconciler \
    && mkdir -p /state && chown reconciler /state
USER reconciler
ENV RECONCILER_STATE_DIR=/state
VOLUME ["/state"]
ENTRYPOINT ["reconciler"]
CMD ["--help"]
