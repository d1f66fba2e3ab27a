#!/usr/bin/env bash
# test-summary.sh — adds up the "test result:" lines of a `cargo test` log and
# prints one closing line, "tests: N passed, N failed"; exits non-zero if any
# test failed or none ran.
set -euo pipefail
log="${1:?usage: test-summary.sh LOG}"
read -r passed failed < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed;?$/) p += $i
        if ($(i+1) ~ /^failed;?$/) f += $i
    }
} END { print p + 0, f + 0 }' "$log")
echo "tests: ${passed} passed, ${failed} failed"
if (( failed > 0 || passed == 0 )); then
    exit 1
fi
