#!/usr/bin/env bash
# Install the system side of secinf: Debian's PostgreSQL 15 with plpython3u and pg_cron,
# plus TimescaleDB (Apache part) and pgvector compiled from Debian 13's source packages.
#
# The trixie sources come through a *private* apt configuration (own sources list, own
# lists and cache dirs), so the system's /etc/apt stays untouched. Built extension files are
# cached under $SECINF_CACHE (default ~/.cache/secinf) so a second run copies, not compiles.
#
# Needs root (apt-get, writing into /usr/lib/postgresql). Skipped entirely when SECINF_DSN
# is set: then the user brings their own server.
set -euo pipefail

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
CACHE=${SECINF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secinf}
APT_PRIVATE=$CACHE/apt-trixie
BUILD=$CACHE/build
STAGE=$CACHE/stage
log() { printf '\033[1;34m[install-system]\033[0m %s\n' "$*"; }

if [[ -n "${SECINF_DSN:-}" ]]; then
  log "SECINF_DSN is set: using that server, installing nothing."
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-system: needs root to install Debian packages. Run it as root (sudo make setup)," >&2
  echo "or point SECINF_DSN at an existing server with the extensions installed." >&2
  exit 2
fi

# ---------------------------------------------------------------- Debian packages
PKGS=(postgresql-$PG_MAJOR postgresql-client-$PG_MAJOR postgresql-contrib
      postgresql-plpython3-$PG_MAJOR postgresql-$PG_MAJOR-cron postgresql-server-dev-$PG_MAJOR
      python3-numpy python3-jwt python3-venv python3-dev build-essential cmake dpkg-dev
      libssl-dev libkrb5-dev chromium
      pgbackrest  # backups: secinf db backup / backups / restore
      prometheus prometheus-postgres-exporter)  # metrics: promtool and the scrape test
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's postgresql-common would create and start a 'main' cluster on 5432; we run our own.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  # Debian's prometheus and prometheus-postgres-exporter would start their systemd services
  # (a Prometheus on :9090 scraping nothing of ours): a temporary policy-rc.d that answers
  # 101 ("action forbidden") stops every daemon start during this install; removed after.
  # secinf runs its own Prometheus and exporter (docs/operations.md, "Metrics and alerts").
  # An existing policy-rc.d (a container's own) is left as it is.
  policy_rc=/usr/sbin/policy-rc.d own_policy=
  if [[ ! -e $policy_rc ]]; then
    printf '#!/bin/sh\n# secinf install-system: no daemon starts during apt-get\nexit 101\n' > $policy_rc
    chmod 755 $policy_rc
    own_policy=1
    trap '[[ -z $own_policy ]] || rm -f "$policy_rc"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [[ -z $own_policy ]] || rm -f "$policy_rc"
  own_policy=
else
  log "Debian packages present"
fi

# ---------------------------------------------------------------- extensions from source
EXT_DIR=$($PG_CONFIG --sharedir)/extension
LIB_DIR=$($PG_CONFIG --pkglibdir)

private_apt() {
  apt-get -o Dir::Etc::SourceList="$APT_PRIVATE/sources.list" \
          -o Dir::Etc::SourceParts=/dev/null \
          -o Dir::State::Lists="$APT_PRIVATE/lists" \
          -o Dir::Cache="$APT_PRIVATE/cache" \
          -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root "$@"
}

fetch_source() {  # fetch_source PKG -> prints the unpacked source dir
  local pkg=$1 dir
  dir=$(find "$BUILD" -maxdepth 1 -type d -name "$pkg-[0-9]*" 2>/dev/null | head -n1)
  if [[ -z "$dir" ]]; then
    mkdir -p "$APT_PRIVATE/lists/partial" "$APT_PRIVATE/cache/archives/partial" "$BUILD"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
      > "$APT_PRIVATE/sources.list"
    [[ -n $(ls "$APT_PRIVATE/lists" 2>/dev/null | grep -v partial) ]] || private_apt update -qq >&2
    (cd "$BUILD" && private_apt source -qq "$pkg" >&2)
    dir=$(find "$BUILD" -maxdepth 1 -type d -name "$pkg-[0-9]*" | head -n1)
  fi
  echo "$dir"
}

install_staged() {  # install_staged NAME: copy cached build output into the server's dirs
  cp -a "$STAGE/$1$LIB_DIR/." "$LIB_DIR/"
  cp -a "$STAGE/$1$EXT_DIR/." "$EXT_DIR/"
}

if [[ ! -f "$EXT_DIR/timescaledb.control" ]]; then
  if [[ ! -d "$STAGE/timescaledb" ]]; then
    src=$(fetch_source timescaledb)
    log "building TimescaleDB (Apache part) from $src"
    (cd "$src" && ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DAPACHE_ONLY=ON \
        -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG=$PG_CONFIG -DCMAKE_BUILD_TYPE=Release >/dev/null 2>&1 \
      && make -C build -j"$(nproc)" >/dev/null \
      && make -C build install DESTDIR="$STAGE/timescaledb.tmp" >/dev/null)
    mv "$STAGE/timescaledb.tmp" "$STAGE/timescaledb"
  fi
  install_staged timescaledb
  log "TimescaleDB installed"
else
  log "TimescaleDB present"
fi

if [[ ! -f "$EXT_DIR/vector.control" ]]; then
  if [[ ! -d "$STAGE/pgvector" ]]; then
    src=$(fetch_source pgvector)
    log "building pgvector from $src"
    (cd "$src" && make PG_CONFIG=$PG_CONFIG OPTFLAGS="" -j"$(nproc)" >/dev/null \
      && make PG_CONFIG=$PG_CONFIG install DESTDIR="$STAGE/pgvector.tmp" >/dev/null)
    mv "$STAGE/pgvector.tmp" "$STAGE/pgvector"
  fi
  install_staged pgvector
  log "pgvector installed"
else
  log "pgvector present"
fi
log "system ready: PostgreSQL $($PG_CONFIG --version | awk '{print $2}') with plpython3u, pg_cron, timescaledb, vector"
