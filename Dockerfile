# syntax=docker/dockerfile:1
# Build stage: install Dyad and its dependencies into a virtual environment.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/dyad
ENV PATH="/opt/dyad/bin:$PATH"
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY schedules ./schedules
COPY db ./db
# fakebotapi/ (the fake Telegram of the demo, tests and benchmarks) stays out of the image;
# `dyad demo` says it needs a source checkout.
RUN pip install --no-cache-dir .

# Runtime stage: the virtual environment only, run by an unprivileged user.
FROM python:3.11-slim
RUN groupadd --system --gid 10001 dyad \
    && useradd --system --uid 10001 --gid dyad --home-dir /var/lib/dyad --create-home dyad
COPY --from=build /opt/dyad /opt/dyad
# The Mini App pages are served on 8080 once DYAD_WEBAPP_URL (the public https URL in
# front of it) is set; without it nothing listens there.
ENV PATH="/opt/dyad/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    DYAD_LOG_FORMAT=json \
    DYAD_WEBAPP_PORT=8080 \
    DYAD_WEBAPP_LISTEN=0.0.0.0
WORKDIR /var/lib/dyad
USER 10001:10001
EXPOSE 8443 9090 8080
ENTRYPOINT ["dyad"]
CMD ["run"]
