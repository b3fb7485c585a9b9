# The platform console: one image for web, worker and beat (the command picks the process;
# core/processes.py is the list every launcher follows).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBUG=0 \
    VAR_DIR=/app/var \
    STATIC_ROOT=/app/staticfiles \
    HOME=/tmp

RUN groupadd --gid 1000 app && useradd --uid 1000 --gid app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app
COPY requirements.txt requirements.lock ./
RUN pip install --no-compile -r requirements.txt -c requirements.lock

# .dockerignore keeps tests, test doubles (testing/) and benchmarks/ out of the image.
COPY --chown=root:root . .
# Static files are collected into the image (outside var/), so the root filesystem can be
# read-only at run time. The dummy secret only satisfies the production settings guard here.
RUN SECRET_KEY=collectstatic-only METRICS_TOKEN=collectstatic-only ALLOWED_HOSTS=localhost VAR_DIR=/tmp/build-var \
        python manage.py collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build-var \
    && mkdir -p /app/var && chown app:app /app/var

USER 1000:1000
# Local state (metrics files of the processes, generated secrets in demo mode) lives here:
# mount a volume (Kubernetes: emptyDir) and keep the rest of the filesystem read-only.
VOLUME ["/app/var"]
EXPOSE 8000

CMD ["python", "-m", "uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--lifespan", "off", "--no-access-log"]
