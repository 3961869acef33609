#!/bin/bash
# A quiet benchmark on a machine with 14+ CPUs, in about seven minutes: six `bench.run`
# processes side by side, each with its server on one CPU and wrk on another (so every ratio is
# within one process's run), then the worker scaling alone.
#
#   bash bench/parallel.sh OUTDIR [quick]
#
# It needs what `make bench` needs (the bench extras, wrk). Where the machine has no internet,
# put wheels in .devbench/whl (installed once into /tmp/site) and wrk in .devbench/.
# Contender lists can be changed with AEROS_BENCH_FIELD_A, _FIELD_B, _CORE_A, _CORE_B, _COSTS;
# REPEAT and DUR set the repeats and seconds per measurement; LOCAL=1 puts every group on CPUs
# 0 and 1 (a smoke test on a small machine). Results of 2026-12-04: bench/results/device-2026-12-04/.
out=${1:?usage: bench/parallel.sh OUTDIR [quick]}; quick=${2:-}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PY:-python3}
if [ -z "$PY" ] && [ -x "$here/.venv/bin/python" ] && [ ! -d "$here/.devbench/whl" ]; then
  py=$here/.venv/bin/python  # the project's virtualenv (make install)
fi
export PYTHONUNBUFFERED=1 PYTHONPATH=$here/src:$here
if [ -d "$here/.devbench/whl" ]; then
  if [ ! -d /tmp/site ]; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$here"/.devbench/whl/*.whl || exit 1
  fi
  export PYTHONPATH=/tmp/site:$PYTHONPATH LD_LIBRARY_PATH=$here/.devbench WRK=$here/.devbench/wrk
fi
cd "$here" && mkdir -p "$out" || exit 1
cpus() { if [ -n "$LOCAL" ]; then echo "--server-cpu 0 --client-cpu 1"; else echo "--server-cpu $1 --client-cpu $2"; fi; }
nproc; $py -V
if [ -n "$quick" ]; then
  long="--quick --repeat 1"; short="--quick --repeat 1"
else
  long="--repeat ${REPEAT:-5} --duration ${DUR:-2} --warmup 0.5"
  short="--repeat 3 --duration ${DUR:-2} --warmup 0.5"
fi
field_a=${AEROS_BENCH_FIELD_A:-bare,aeros,sanic,starlette,blacksheep,falcon}
field_b=${AEROS_BENCH_FIELD_B:-bare,aeros,litestar,robyn,fastapi,quart,flask-gunicorn}
core_a=${AEROS_BENCH_CORE_A:-bare,bare-aeros,aeros,aeros-granian}
core_b=${AEROS_BENCH_CORE_B:-bare,quart,quart-aeros,quart-hypercorn,fastapi,fastapi-aeros,flask-gunicorn}
costs=${AEROS_BENCH_COSTS:-bare-aeros,aeros,aeros-request-id,aeros-metrics,aeros-ratelimit}
run() { name=$1; shift; $py -m bench.run "$@" --out "$out/$name.json" > "$out/$name.log" 2>&1; }
run fieldA --field $long --contenders "$field_a" $(cpus 0 1) &
run fieldB --field $long --contenders "$field_b" $(cpus 2 3) &
run coreA $short --workers '' --contenders "$core_a" $(cpus 4 5) &
run coreB $short --workers '' --contenders "$core_b" $(cpus 6 7) &
run costs $long --workers '' --contenders "$costs" --scenarios json,cached-hit $(cpus 8 9) &
run costs2 $long --workers '' --contenders "$costs" --scenarios json $(cpus 12 13) &
wait
run scaling $short --contenders bare --scenarios json --workers 1,2,4,8 $(cpus 10 11)
for f in "$out"/*.log; do echo "==> $f"; cat "$f"; done > "$out/all.txt"
rm -f "$out"/*.log
grep -c "^scenario" "$out/all.txt"
