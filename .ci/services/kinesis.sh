# Kinesis for tests/test_source_kinesis.py: moto's server on loopback.
#
# Sourced by .ci/run (bash, `set -euo pipefail`, after `pip install -e '.[test]'`, which brings
# moto[server]): starts moto_server on a free port, waits until it answers (30 s at most),
# appends its PID to SERVICE_PIDS (stopped when .ci/run exits) and exports
# RILLET_TEST_KINESIS_ENDPOINT. Names start with kinesis_ so as not to touch the caller's.

kinesis_py="${PYTHON:-python3}"
kinesis_port="$("$kinesis_py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
kinesis_log="${TMPDIR:-/tmp}/rillet-moto-kinesis-${kinesis_port}.log"

# The console script when it is on PATH; else the same module through the Python in use.
if command -v moto_server >/dev/null; then
    moto_server -H 127.0.0.1 -p "$kinesis_port" >"$kinesis_log" 2>&1 &
else
    "$kinesis_py" -m moto.server -H 127.0.0.1 -p "$kinesis_port" >"$kinesis_log" 2>&1 &
fi
kinesis_pid=$!
SERVICE_PIDS+=("$kinesis_pid")

if ! "$kinesis_py" - "$kinesis_port" "$kinesis_pid" <<'EOF'
import os, sys, time, urllib.request

port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"moto_server (pid {pid}) exited before answering")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/data.json", timeout=2):
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"moto_server did not answer on 127.0.0.1:{port} within 30 s")
EOF
then
    echo "kinesis: moto_server failed to start; its log ($kinesis_log):" >&2
    cat "$kinesis_log" >&2 || true
    return 1
fi

export RILLET_TEST_KINESIS_ENDPOINT="http://127.0.0.1:${kinesis_port}"
echo "kinesis: moto_server (pid $kinesis_pid) at $RILLET_TEST_KINESIS_ENDPOINT, log $kinesis_log"
