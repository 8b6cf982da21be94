#!/usr/bin/env bash
# Install everything the test suite needs, then run it (arguments go to pytest).
# The README's test command and CI's .ci/run both call this script. Python packages go into
# $PYTHON when set, else the active virtualenv, else ./.venv, created on first use (test-python.sh).
#   PYTHON=/path/to/python scripts/test.sh tests/unit -q
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="$(bash scripts/test-python.sh)"

"$python" -m pip install -q --disable-pip-version-check -e '.[test]'

# kcat, for the kcat compatibility tests (a Debian package).
if ! command -v kcat >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat) >/dev/null
    else
        echo "test.sh: kcat is not installed (apt-get install kcat); its tests will be skipped" >&2
    fi
fi

# Headless Chromium and its WebDriver (the web console's browser tests) and promtool (the
# Prometheus text-format check of /metrics): Debian packages.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}") >/dev/null
    else
        echo "test.sh: ${missing[*]} not installed (apt-get install ${missing[*]}); their tests will be skipped" >&2
    fi
fi

# Apache Kafka's jars from Maven Central, for Kafka's own CLI tools and the side-by-side tests.
if command -v mvn >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then
    bash scripts/fetch-kafka.sh >/dev/null
else
    echo "test.sh: Java and Maven are needed for the Kafka CLI tests; they will be skipped" >&2
fi

# KafkaJS (Node.js), pinned by tests/clients/kafkajs/package-lock.json, for its client tests.
if command -v npm >/dev/null 2>&1; then
    npm ci --prefix tests/clients/kafkajs --no-audit --no-fund --loglevel=error >/dev/null
else
    echo "test.sh: Node.js and npm are needed for the KafkaJS tests; they will be skipped" >&2
fi

# The Go clients (franz-go, Sarama, kafka-go), pinned by tests/clients/go/go.sum; the tests build them.
if command -v go >/dev/null 2>&1; then
    (cd tests/clients/go && go mod download)
else
    echo "test.sh: Go is needed for the franz-go, Sarama and kafka-go tests; they will be skipped" >&2
fi

# Each run records which API versions each client used (docs/compatibility.md is rendered
# from it with: python -m moldau.testing.compat_report build/compatibility.json docs/compatibility.md).
export MOLDAU_COMPAT_REPORT="${MOLDAU_COMPAT_REPORT:-build/compatibility.json}"
rm -f "$MOLDAU_COMPAT_REPORT"

exec "$python" -m pytest "$@"
