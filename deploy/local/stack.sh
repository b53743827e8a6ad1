#!/usr/bin/env bash
# Local dev stack for sluice: a private MariaDB (binlog ROW/FULL) and the
# sluice-kafka broker (cmd/sluice-kafka, built on kfake), both on loopback.
# MariaDB runs with local_infile on and innodb_autoinc_lock_mode=2, what the
# consumer's bulk load of new rows needs (README, Performance).
#
# Usage: deploy/local/stack.sh up|down|status|env|destroy|up-mysql|restart-mysql
#
#   up       start both (idempotent), create user sluice/sluice
#   down     stop both, keep data
#   up-mysql, restart-mysql
#            start (or stop and start) MariaDB alone: a failover drill
#            restarts it with another SLUICE_MYSQL_SERVER_ID
#   status   show what runs (exit 0 if both run, 3 otherwise)
#   env      print export lines for SLUICE_SOURCE_DSN, SLUICE_TARGET_DSN, SLUICE_BROKERS
#   destroy  down, then delete $SLUICE_STACK_DIR
#
# Environment:
#   SLUICE_STACK_DIR   state dir (default <repo>/.sluice/stack)
#   SLUICE_MYSQL_PORT  MariaDB port on 127.0.0.1 (default 3307)
#   SLUICE_KAFKA_PORT  broker port on 127.0.0.1 (default 9092)
#   SLUICE_MYSQL_TLS   1: MariaDB takes TLS connections only (require_secure_transport),
#                      with a CA and certificates generated into $SLUICE_STACK_DIR/tls
#                      (openssl); `env` then exports SLUICE_MYSQL_CA. Set at the first `up`
#                      of a state dir, and remembered.
#   SLUICE_KAFKA_SECURE 1: the broker takes SASL_SSL only (TLS from the same generated CA,
#                      SASL PLAIN/SCRAM-SHA-256/SCRAM-SHA-512 user sluice / sluice); `env`
#                      then exports the SLUICE_KAFKA_* settings. Remembered like SLUICE_MYSQL_TLS.
#   SLUICE_MYSQL_SERVER_ID  MariaDB's server_id when it starts (default 1)
#   SLUICE_MYSQL_BUFFER_POOL  MariaDB's innodb_buffer_pool_size when it starts
#                      (default 512M; a 20M-row bench wants its tables in memory,
#                      as a production target would: 6G)
# Ports chosen at `up` are remembered in $SLUICE_STACK_DIR/ports.env and reused
# by later commands unless the variables are set again.
#
# This only ever touches processes it started itself (pid files are trusted
# only if /proc/PID/cmdline carries our datadir / binary path). It never
# reconfigures or stops any other MySQL/MariaDB on the machine.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

STACK_DIR=${SLUICE_STACK_DIR:-$REPO_ROOT/.sluice/stack}
case $STACK_DIR in
/*) ;;
*) STACK_DIR=$PWD/$STACK_DIR ;;
esac
STACK_DIR=${STACK_DIR%/}
[[ -n $STACK_DIR ]] || { echo "stack.sh: SLUICE_STACK_DIR must not be /" >&2; exit 1; }

PORTS_FILE=$STACK_DIR/ports.env
MARKER=$STACK_DIR/.sluice-stack

# Ports: explicit env > remembered from last `up` > defaults.
saved_mysql_port="" saved_kafka_port="" saved_mysql_tls=""
if [[ -r $PORTS_FILE ]]; then
	saved_mysql_port=$(sed -n 's/^MYSQL_PORT=\([0-9]*\)$/\1/p' "$PORTS_FILE")
	saved_kafka_port=$(sed -n 's/^KAFKA_PORT=\([0-9]*\)$/\1/p' "$PORTS_FILE")
	saved_mysql_tls=$(sed -n 's/^MYSQL_TLS=\([01]\)$/\1/p' "$PORTS_FILE")
	saved_kafka_secure=$(sed -n 's/^KAFKA_SECURE=\([01]\)$/\1/p' "$PORTS_FILE")
fi
MYSQL_TLS=${SLUICE_MYSQL_TLS:-${saved_mysql_tls:-0}}
KAFKA_SECURE=${SLUICE_KAFKA_SECURE:-${saved_kafka_secure:-0}}
MYSQL_PORT=${SLUICE_MYSQL_PORT:-${saved_mysql_port:-3307}}
KAFKA_PORT=${SLUICE_KAFKA_PORT:-${saved_kafka_port:-9092}}
for p in "$MYSQL_PORT" "$KAFKA_PORT"; do
	[[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) || { echo "stack.sh: invalid port '$p'" >&2; exit 1; }
done

MY_DATADIR=$STACK_DIR/mariadb
MY_BINLOG_DIR=$STACK_DIR/binlog
MY_SOCK=$STACK_DIR/mysqld.sock
MY_PID=$STACK_DIR/mysqld.pid
MY_ERR=$STACK_DIR/mysqld.err
MY_OUT=$STACK_DIR/mysqld.out
MY_INIT_MARK=$STACK_DIR/.mariadb-initialized
MY_TLS_DIR=$STACK_DIR/tls

KAFKA_BIN=$STACK_DIR/bin/sluice-kafka
KAFKA_DATA=$STACK_DIR/kafka
KAFKA_PID=$STACK_DIR/kafka.pid
KAFKA_LOG=$STACK_DIR/kafka.log

IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

log() { echo "stack.sh: $*"; }
die() { echo "stack.sh: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

# find_tool NAME... : first of NAME found in PATH or the usual sbin dirs.
find_tool() {
	local n d
	for n in "$@"; do
		if command -v "$n" >/dev/null 2>&1; then command -v "$n"; return 0; fi
		for d in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin /usr/local/mysql/bin; do
			[[ -x $d/$n ]] && { echo "$d/$n"; return 0; }
		done
	done
	return 1
}

# cmdline_has PID ARG... : true if PID's argv contains every ARG exactly.
cmdline_has() {
	local pid=$1 want have found
	shift
	[[ -r /proc/$pid/cmdline ]] || return 1
	local -a argv=()
	mapfile -d '' -t argv <"/proc/$pid/cmdline" 2>/dev/null || return 1
	for want in "$@"; do
		found=0
		for have in "${argv[@]}"; do
			[[ $have == "$want" ]] && { found=1; break; }
		done
		((found)) || return 1
	done
}

alive() { kill -0 "$1" 2>/dev/null; }

# Identity of our processes: exact argv entries.
mariadb_is_ours() { alive "$1" && cmdline_has "$1" "--datadir=$MY_DATADIR"; }
kafka_is_ours() { alive "$1" && cmdline_has "$1" "$KAFKA_BIN" "$KAFKA_DATA"; }

# our_pid KIND : pid of our running mariadb|kafka, or nothing. Trusts the pid
# file only if the process is ours; otherwise scans /proc for our argv (in
# case the pid file was lost). Removes stale pid files.
our_pid() {
	local kind=$1 pidfile check pid p
	case $kind in
	mariadb) pidfile=$MY_PID check=mariadb_is_ours ;;
	kafka) pidfile=$KAFKA_PID check=kafka_is_ours ;;
	esac
	if [[ -s $pidfile ]]; then
		pid=$(tr -dc '0-9' <"$pidfile" || true)
		if [[ -n $pid ]] && $check "$pid"; then
			echo "$pid"
			return 0
		fi
		rm -f "$pidfile"
	fi
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		if $check "$pid" 2>/dev/null; then
			[[ $kind == kafka ]] && echo "$pid" >"$pidfile"
			echo "$pid"
			return 0
		fi
	done
	return 0
}

# tcp_open PORT : something accepts connections on 127.0.0.1:PORT.
tcp_open() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# port_in_use PORT : anything listening on PORT (any address) or answering on loopback.
port_in_use() {
	local port=$1
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]] && return 0
	fi
	tcp_open "$port"
}

port_owner() {
	command -v ss >/dev/null 2>&1 || return 0
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*))' | head -1 || true
}

# detach PIDFILE LOG CMD... : start CMD in its own session with no inherited
# stdio (so it never holds a caller's pipe open); the process writes its own
# pid to PIDFILE right before exec'ing CMD.
detach() {
	local pidfile=$1 logf=$2
	shift 2
	rm -f "$pidfile"
	if command -v setsid >/dev/null 2>&1; then
		setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logf" 2>&1
	else
		nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logf" 2>&1 &
		disown || true
	fi
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s $pidfile ]] && return 0
		sleep 0.1
	done
	die "process did not start: $*"
}

# wait_gone PID SECONDS : wait until PID exits; return 1 on timeout.
wait_gone() {
	local pid=$1 secs=$2 i
	for ((i = 0; i < secs * 10; i++)); do
		alive "$pid" || return 0
		sleep 0.1
	done
	alive "$pid" && return 1 || return 0
}

ensure_stack_dir() {
	mkdir -p "$STACK_DIR"
	: >"$MARKER"
}

save_ports() {
	printf 'MYSQL_PORT=%s\nKAFKA_PORT=%s\nMYSQL_TLS=%s\nKAFKA_SECURE=%s\n' "$MYSQL_PORT" "$KAFKA_PORT" "$MYSQL_TLS" "$KAFKA_SECURE" >"$PORTS_FILE"
}

# ---------------------------------------------------------------- mariadb

# tls_certs: a CA, a server certificate for 127.0.0.1 and localhost, and a
# client certificate, in $MY_TLS_DIR, made once with openssl.
tls_certs() {
	[[ -s $MY_TLS_DIR/server-cert.pem ]] && return 0
	if ! command -v openssl >/dev/null 2>&1; then
		((IS_ROOT)) && command -v apt-get >/dev/null 2>&1 || die "the TLS stack needs openssl: apt-get install openssl"
		log "openssl not found; installing package openssl"
		{ DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl; } >/dev/null ||
			die "apt-get install openssl failed"
	fi
	mkdir -p "$MY_TLS_DIR"
	log "generating a CA and certificates in $MY_TLS_DIR"
	(
		cd "$MY_TLS_DIR"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sluice local CA" \
			-keyout ca-key.pem -out ca.pem
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
		openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
			-extfile server.ext -out server-cert.pem
		openssl req -newkey rsa:2048 -nodes -subj "/CN=sluice" -keyout client-key.pem -out client.csr
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -out client-cert.pem
		chmod 600 ./*-key.pem
	) >"$STACK_DIR/tls.log" 2>&1 || die "generating certificates failed (log: $STACK_DIR/tls.log)"
}

MARIADBD="" INSTALL_DB="" ADMIN="" CLIENT=""

locate_mariadb() {
	MARIADBD=$(find_tool mariadbd mysqld || true)
	INSTALL_DB=$(find_tool mariadb-install-db mysql_install_db || true)
	ADMIN=$(find_tool mariadb-admin mysqladmin || true)
	CLIENT=$(find_tool mariadb mysql || true)
	[[ -n $MARIADBD && -n $INSTALL_DB && -n $ADMIN && -n $CLIENT ]]
}

install_mariadb() {
	log "MariaDB server binaries not found; installing package mariadb-server"
	local policy=/usr/sbin/policy-rc.d created_policy=0
	# Keep the package from starting (and enabling) a system MariaDB service.
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		created_policy=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	local rc=0
	{ DEBIAN_FRONTEND=noninteractive apt-get update &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mariadb-server mariadb-client; } || rc=$?
	if ((created_policy)); then
		rm -f "$policy"
		trap - EXIT
	fi
	((rc == 0)) || die "apt-get install mariadb-server failed (exit $rc)"
}

mariadb_ping() {
	"$ADMIN" --no-defaults --socket="$MY_SOCK" -uroot --connect-timeout=2 ping >/dev/null 2>&1
}

mariadb_sql() {
	"$CLIENT" --no-defaults --socket="$MY_SOCK" -uroot --batch -e "$1"
}

mariadb_up() {
	if ! locate_mariadb; then
		if ((IS_ROOT)) && command -v apt-get >/dev/null 2>&1; then
			install_mariadb
			locate_mariadb || die "mariadb-server installed but mariadbd/mariadb-install-db/mariadb-admin/mariadb still not found"
		else
			die "MariaDB is not installed. Install the server and client binaries (mariadbd, mariadb-install-db, mariadb-admin, mariadb), e.g.: sudo apt-get install mariadb-server mariadb-client  (the system service is not needed; this script runs its own instance). Then re-run: $0 up"
		fi
	fi

	((${#MY_SOCK} < 100)) || die "socket path $MY_SOCK is too long for a unix socket; use a shorter SLUICE_STACK_DIR"

	local pid
	pid=$(our_pid mariadb)
	if [[ -n $pid ]]; then
		if mariadb_ping; then
			log "mariadb already running (pid $pid, port $MYSQL_PORT)"
			mariadb_users
			return 0
		fi
		log "mariadb (pid $pid) is running but not answering yet; waiting"
	else
		if port_in_use "$MYSQL_PORT"; then
			die "port $MYSQL_PORT on 127.0.0.1 is already in use by another process $(port_owner "$MYSQL_PORT") (not our MariaDB). Choose a free port with SLUICE_MYSQL_PORT=<port> $0 up"
		fi

		if [[ ! -e $MY_INIT_MARK ]]; then
			# Never successfully initialized: start from a clean datadir (ours).
			rm -rf "$MY_DATADIR"
			mkdir -p "$MY_DATADIR"
			log "initializing MariaDB datadir $MY_DATADIR"
			local -a init=("$INSTALL_DB" --no-defaults --datadir="$MY_DATADIR"
				--auth-root-authentication-method=normal --skip-test-db)
			((IS_ROOT)) && init+=(--user=root)
			if ! "${init[@]}" >"$STACK_DIR/install-db.log" 2>&1; then
				tail -n 30 "$STACK_DIR/install-db.log" >&2 || true
				die "mariadb-install-db failed (log: $STACK_DIR/install-db.log)"
			fi
			: >"$MY_INIT_MARK"
		fi

		mkdir -p "$MY_BINLOG_DIR"
		local -a cmd=("$MARIADBD" --no-defaults
			--datadir="$MY_DATADIR"
			--port="$MYSQL_PORT"
			--bind-address=127.0.0.1
			--socket="$MY_SOCK"
			--pid-file="$MY_PID"
			--log-error="$MY_ERR"
			--log-bin="$MY_BINLOG_DIR/mysql-bin"
			--binlog-format=ROW
			--binlog-row-image=FULL
			--binlog-row-metadata=FULL
			--server-id="${SLUICE_MYSQL_SERVER_ID:-1}"
			--innodb-buffer-pool-size="${SLUICE_MYSQL_BUFFER_POOL:-512M}"
			--innodb-autoinc-lock-mode=2
			--local-infile=1
			--max-allowed-packet=64M
			--max-connections=200
			--character-set-server=utf8mb4
			--collation-server=utf8mb4_general_ci)
		if [[ $MYSQL_TLS == 1 ]]; then
			tls_certs
			cmd+=(--ssl-ca="$MY_TLS_DIR/ca.pem" --ssl-cert="$MY_TLS_DIR/server-cert.pem"
				--ssl-key="$MY_TLS_DIR/server-key.pem" --require-secure-transport=ON)
		fi
		((IS_ROOT)) && cmd+=(--user=root)
		log "starting mariadb on 127.0.0.1:$MYSQL_PORT"
		detach "$MY_PID" "$MY_OUT" "${cmd[@]}"
		pid=$(tr -dc '0-9' <"$MY_PID")
	fi

	local i
	for ((i = 0; i < 60; i++)); do
		mariadb_ping && break
		if ! alive "$pid"; then
			echo "--- tail of $MY_ERR ---" >&2
			tail -n 30 "$MY_ERR" >&2 2>/dev/null || true
			tail -n 10 "$MY_OUT" >&2 2>/dev/null || true
			die "mariadb exited during startup"
		fi
		sleep 1
	done
	if ! mariadb_ping; then
		echo "--- tail of $MY_ERR ---" >&2
		tail -n 30 "$MY_ERR" >&2 2>/dev/null || true
		die "mariadb did not answer within 60s (pid $pid)"
	fi
	log "mariadb up (pid $pid)"
	mariadb_users
}

mariadb_users() {
	local h sql=""
	for h in 127.0.0.1 localhost; do
		sql+="CREATE USER IF NOT EXISTS 'sluice'@'$h' IDENTIFIED BY 'sluice';"
		sql+="ALTER USER 'sluice'@'$h' IDENTIFIED BY 'sluice';"
		sql+="GRANT ALL PRIVILEGES ON *.* TO 'sluice'@'$h' WITH GRANT OPTION;"
	done
	mariadb_sql "$sql" || die "could not create user sluice"
}

mariadb_down() {
	local pid
	pid=$(our_pid mariadb)
	if [[ -z $pid ]]; then
		log "mariadb not running"
		return 0
	fi
	log "stopping mariadb (pid $pid)"
	locate_mariadb || true
	if [[ -n $ADMIN ]]; then
		"$ADMIN" --no-defaults --socket="$MY_SOCK" -uroot --connect-timeout=5 shutdown >/dev/null 2>&1 ||
			kill -TERM "$pid" 2>/dev/null || true
	else
		kill -TERM "$pid" 2>/dev/null || true
	fi
	if ! wait_gone "$pid" 60; then
		log "mariadb did not stop within 60s; sending SIGKILL"
		mariadb_is_ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 5 || die "could not stop mariadb pid $pid"
	fi
	rm -f "$MY_PID"
	log "mariadb stopped"
}

# ---------------------------------------------------------------- kafka

kafka_up() {
	local pid
	pid=$(our_pid kafka)
	if [[ -n $pid ]] && tcp_open "$KAFKA_PORT"; then
		log "sluice-kafka already running (pid $pid, port $KAFKA_PORT)"
		return 0
	fi
	if [[ -z $pid ]]; then
		if port_in_use "$KAFKA_PORT"; then
			die "port $KAFKA_PORT on 127.0.0.1 is already in use by another process $(port_owner "$KAFKA_PORT") (not our sluice-kafka). Choose a free port with SLUICE_KAFKA_PORT=<port> $0 up"
		fi
		command -v go >/dev/null 2>&1 || die "go toolchain not found in PATH (needed to build cmd/sluice-kafka)"
		log "building sluice-kafka"
		mkdir -p "$(dirname "$KAFKA_BIN")" "$KAFKA_DATA"
		(cd "$REPO_ROOT" && go build -o "$KAFKA_BIN" ./cmd/sluice-kafka) || die "go build ./cmd/sluice-kafka failed"
		local -a kargs=(--listen "127.0.0.1:$KAFKA_PORT" --data-dir "$KAFKA_DATA")
		if [[ $KAFKA_SECURE == 1 ]]; then
			tls_certs
			kargs+=(--tls-cert "$MY_TLS_DIR/server-cert.pem" --tls-key "$MY_TLS_DIR/server-key.pem" --sasl-user sluice)
		fi
		log "starting sluice-kafka on 127.0.0.1:$KAFKA_PORT"
		SLUICE_KAFKA_BROKER_PASSWORD=sluice detach "$KAFKA_PID" "$KAFKA_LOG" "$KAFKA_BIN" "${kargs[@]}"
		pid=$(tr -dc '0-9' <"$KAFKA_PID")
	else
		log "sluice-kafka (pid $pid) running but port $KAFKA_PORT not open yet; waiting"
	fi
	local i
	for ((i = 0; i < 300; i++)); do
		tcp_open "$KAFKA_PORT" && break
		if ! alive "$pid"; then
			echo "--- tail of $KAFKA_LOG ---" >&2
			tail -n 30 "$KAFKA_LOG" >&2 || true
			die "sluice-kafka exited during startup"
		fi
		sleep 0.1
	done
	if ! tcp_open "$KAFKA_PORT"; then
		tail -n 30 "$KAFKA_LOG" >&2 || true
		die "sluice-kafka did not open port $KAFKA_PORT within 30s (pid $pid)"
	fi
	log "sluice-kafka up (pid $pid)"
}

kafka_down() {
	local pid
	pid=$(our_pid kafka)
	if [[ -z $pid ]]; then
		log "sluice-kafka not running"
		return 0
	fi
	log "stopping sluice-kafka (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid" 15; then
		log "sluice-kafka did not stop within 15s; sending SIGKILL"
		kafka_is_ours "$pid" && kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 5 || die "could not stop sluice-kafka pid $pid"
	fi
	rm -f "$KAFKA_PID"
	log "sluice-kafka stopped"
}

# ---------------------------------------------------------------- commands

print_env() {
	echo "export SLUICE_SOURCE_DSN='sluice:sluice@tcp(127.0.0.1:$MYSQL_PORT)/source_db'"
	echo "export SLUICE_TARGET_DSN='sluice:sluice@tcp(127.0.0.1:$MYSQL_PORT)/target_db'"
	echo "export SLUICE_BROKERS=127.0.0.1:$KAFKA_PORT"
	if [[ $MYSQL_TLS == 1 ]]; then
		echo "export SLUICE_MYSQL_CA='$MY_TLS_DIR/ca.pem'"
	fi
	if [[ $KAFKA_SECURE == 1 ]]; then
		echo "export SLUICE_KAFKA_CA='$MY_TLS_DIR/ca.pem' SLUICE_KAFKA_SASL=scram-sha-512 SLUICE_KAFKA_USER=sluice SLUICE_KAFKA_PASSWORD=sluice"
	fi
}

# preflight_ports: fail before starting anything if a port we still need is
# held by someone else.
preflight_ports() {
	if [[ -z $(our_pid mariadb) ]] && port_in_use "$MYSQL_PORT"; then
		die "port $MYSQL_PORT on 127.0.0.1 is already in use by another process $(port_owner "$MYSQL_PORT") (not our MariaDB). Choose a free port with SLUICE_MYSQL_PORT=<port> $0 up"
	fi
	if [[ -z $(our_pid kafka) ]] && port_in_use "$KAFKA_PORT"; then
		die "port $KAFKA_PORT on 127.0.0.1 is already in use by another process $(port_owner "$KAFKA_PORT") (not our sluice-kafka). Choose a free port with SLUICE_KAFKA_PORT=<port> $0 up"
	fi
}

cmd_up() {
	ensure_stack_dir
	preflight_ports
	save_ports
	mariadb_up
	kafka_up
	echo
	echo "sluice dev stack is up (state in $STACK_DIR)"
	echo "  MariaDB: 127.0.0.1:$MYSQL_PORT  user sluice / sluice  (root via socket $MY_SOCK)"
	echo "  Kafka:   127.0.0.1:$KAFKA_PORT"
	echo "  source:  sluice:sluice@tcp(127.0.0.1:$MYSQL_PORT)/source_db"
	echo "  target:  sluice:sluice@tcp(127.0.0.1:$MYSQL_PORT)/target_db"
	local prefix=""
	[[ $STACK_DIR == "$REPO_ROOT/.sluice/stack" ]] || prefix="SLUICE_STACK_DIR=$STACK_DIR "
	echo "  eval \"\$(${prefix}$0 env)\"   # exports SLUICE_SOURCE_DSN, SLUICE_TARGET_DSN, SLUICE_BROKERS"
}

cmd_down() {
	if [[ ! -d $STACK_DIR ]]; then
		log "nothing to stop ($STACK_DIR does not exist)"
		return 0
	fi
	kafka_down
	mariadb_down
}

cmd_status() {
	local rc=0 pid
	if [[ ! -d $STACK_DIR ]]; then
		echo "mariadb:      stopped"
		echo "sluice-kafka: stopped"
		return 3
	fi
	pid=$(our_pid mariadb)
	if [[ -n $pid ]]; then
		local state=answering
		locate_mariadb || true
		[[ -n $ADMIN ]] && mariadb_ping || state="not answering"
		echo "mariadb:      running  pid $pid  127.0.0.1:$MYSQL_PORT  ($state)  datadir $MY_DATADIR"
	else
		echo "mariadb:      stopped  (port $MYSQL_PORT)"
		rc=3
	fi
	pid=$(our_pid kafka)
	if [[ -n $pid ]]; then
		local state=listening
		tcp_open "$KAFKA_PORT" || state="not listening"
		echo "sluice-kafka: running  pid $pid  127.0.0.1:$KAFKA_PORT  ($state)  data $KAFKA_DATA"
	else
		echo "sluice-kafka: stopped  (port $KAFKA_PORT)"
		rc=3
	fi
	return $rc
}

cmd_destroy() {
	cmd_down
	if [[ -d $STACK_DIR ]]; then
		if [[ ! -e $MARKER ]] && [[ -n $(ls -A "$STACK_DIR") ]]; then
			die "$STACK_DIR does not look like a sluice stack dir (no .sluice-stack marker); not deleting it"
		fi
		case $STACK_DIR in
		"$HOME" | "$REPO_ROOT" | /) die "refusing to delete $STACK_DIR" ;;
		esac
		rm -rf -- "$STACK_DIR"
		log "removed $STACK_DIR"
	fi
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

case ${1:-} in
up) cmd_up ;;
up-mysql)
	ensure_stack_dir
	save_ports
	mariadb_up
	;;
restart-mysql)
	mariadb_down
	mariadb_up
	;;
down) cmd_down ;;
status) cmd_status ;;
env) print_env ;;
destroy) cmd_destroy ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
