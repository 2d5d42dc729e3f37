#!/usr/bin/env bash
# ECS watching benchmark: TASKS tasks in flight in moto's ECS, all stopped at once; how many
# DescribeTasks calls, and how long until every job noticed its task stopped:
#   ragshift  the ECS executor's single poller (DescribeTasks for up to 100 tasks per call)
#   baseline  each job polling its own task (one DescribeTasks per task per interval)
# Goal: calls per round = ceil(TASKS/100) instead of TASKS (ECS's DescribeTasks rate limit is
# what a 2 a.m. rebuild of thousands of bots runs into), with stops noticed no later.
#
#   bench/ecs/run.sh                  # 200 tasks, 1 s poll interval
#   TASKS=500 POLL_MS=2000 bench/ecs/run.sh
#
# Starts its own moto and PostgreSQL (the ragshift executor reads the run journal); needs
# scripts/setup.sh. A debug build: the time is moto's and the network's, not ragshift's CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragshift/target}"
TASKS="${TASKS:-200}"
POLL_MS="${POLL_MS:-1000}"
echo "building the bench..." >&2
cargo build -q -p ragshift-run --example ecs_poll_bench
exec "$CARGO_TARGET_DIR/debug/examples/ecs_poll_bench" "$TASKS" "$POLL_MS"
