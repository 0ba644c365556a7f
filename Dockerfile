# claimwatch service image (python:3.11-slim). Build: docker build -t claimwatch .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CLAIMWATCH_SEEDS=/app/seeds

WORKDIR /app
RUN useradd --create-home --uid 10001 claimwatch

COPY pyproject.toml README.md ./
COPY archiver ./archiver
COPY store ./store
COPY jobs ./jobs
RUN pip install '.[postgres,web]'
COPY seeds ./seeds

USER claimwatch
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD claimwatch status --json > /dev/null || exit 1
ENTRYPOINT ["claimwatch"]
CMD ["serve", "--log-format", "json", "--metrics-port", "9464", "--metrics-host", "0.0.0.0"]
