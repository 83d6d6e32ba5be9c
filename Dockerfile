# The connector image: `docker build -t source-klaviyo:dev .`, then
# `docker run --rm source-klaviyo:dev spec`. The base image is Airbyte's Python connector base
# (Python 3.11, the platform's conventions, a non-root `airbyte` user); its tag must equal
# `connectorBuildOptions.baseImage` in metadata.yaml (unit_tests/test_metadata.py checks it).
FROM docker.io/airbyte/python-connector-base:4.0.0

WORKDIR /airbyte/integration_code

# Locked dependencies first, in their own layer: code changes do not reinstall them.
COPY requirements.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.lock

# Then the connector itself, without resolving anything again: the lock is the whole truth.
COPY pyproject.toml README.md ./
COPY source_klaviyo ./source_klaviyo
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps . \
    && rm -rf build source_klaviyo.egg-info

# The catalog the README's `docker run ... read --catalog /integration_tests/...` uses.
COPY integration_tests/configured_catalog.json /integration_tests/configured_catalog.json

ENV AIRBYTE_ENTRYPOINT="source-klaviyo"
ENTRYPOINT ["source-klaviyo"]

USER airbyte
