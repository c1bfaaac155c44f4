#!/bin/sh
# tests/k8s/kubectl_check.sh - the fake Kubernetes API server
# (tests/fake_kube_apiserver) held to the real client: kubectl must take
# it for an API server and see what it holds. Run by `make check`.
#
# The fake serves HTTPS with a CA made now (make_certs.sh) and a bearer
# token from a file; kubectl gets a kubeconfig with the CA's data and the
# token. Checked: the TLS is real (another CA fails), the token and client
# certificates log in and a wrong token does not, the token file is read
# again on each request; create -f, get -l -o json, label, patch of the
# status subresource (merge, and strategic with conditions merged by type),
# delete, and a background `get --watch --output-watch-events -o json`
# that sees ADDED, MODIFIED, DELETED in that order; a graceful deletion
# (kubectl delete waits on a watch with a fieldSelector); 1000 pods loaded
# at once and listed in pages; a watch from a compacted resourceVersion
# gets 410 Expired; bad bodies get a 400 Status; services and
# endpointslices round-trip.
#
# kubectl is not packaged in Debian: without it the test is skipped (77).
# FAKE_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full" runs the
# fake under a tool; its exit status is checked at the end.
# Environment (set by `make check`): top_srcdir, top_builddir.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
fake=$top_builddir/tests/fake_kube_apiserver

if ! command -v kubectl >/dev/null 2>&1; then
	echo "SKIP: kubectl is not installed (Debian has no package for it)"
	echo "kubectl_check: 0 passed, 0 failed"
	exit 77
fi
# patch --subresource=status came with kubectl 1.24; Debian bookworm's
# kubernetes-client is 1.20 (and validates against OpenAPI v2, which the
# fake does not serve)
minor=$(kubectl version --client -o json 2>/dev/null |
	sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n 1)
if [ -n "$minor" ] && [ "$minor" -lt 24 ]; then
	echo "SKIP: kubectl 1.$minor is older than 1.24 (patch --subresource)"
	echo "kubectl_check: 0 passed, 0 failed"
	exit 77
fi
if ! command -v openssl >/dev/null 2>&1; then
	echo "FAIL: the openssl command is needed to make the test CA (apt-get install openssl)"
	exit 1
fi
if [ ! -x "$fake" ]; then
	# configure builds it only with libevent_openssl and openssl
	echo "SKIP: $fake is not built (apt-get install libssl-dev; configure again)"
	echo "kubectl_check: 0 passed, 0 failed"
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sy-k8s-XXXXXX") || exit 1
fake_pid=
watch_pid=
passed=0
failed=0

cleanup() {
	[ -z "$watch_pid" ] || kill "$watch_pid" 2>/dev/null
	[ -z "$fake_pid" ] || kill "$fake_pid" 2>/dev/null
	if [ "$failed" -gt 0 ] || [ -n "${KEEP_WORK:-}" ]; then
		echo "kubectl_check: files kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
	shift
	for f in "$@"; do
		[ -f "$f" ] && sed 's/^/    | /' "$f" | tail -n 15
	done
}
# check DESCRIPTION EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: expected '$2', got '$3'"; fi
}

slow=1
[ -n "${FAKE_WRAPPER:-}" ] && slow=10

"$top_srcdir/tests/k8s/make_certs.sh" "$work/certs" &&
	"$top_srcdir/tests/k8s/make_certs.sh" "$work/other" || {
	echo "FAIL: make_certs.sh failed"
	exit 1
}
printf 'token-one\n' > "$work/token"

# shellcheck disable=SC2086
${FAKE_WRAPPER:-} "$fake" --port 0 --port-file "$work/port" \
	--tls-cert "$work/certs/server.crt" --tls-key "$work/certs/server.key" \
	--client-ca "$work/certs/ca.crt" --token "$work/token" \
	--bookmark-interval 500ms --history 5000 >"$work/fake.log" 2>&1 &
fake_pid=$!
i=0
while [ ! -s "$work/port" ] && [ $i -lt $((100 * slow)) ]; do
	sleep 0.1
	i=$((i + 1))
done
port=$(head -n 1 "$work/port" 2>/dev/null)
if [ -z "$port" ]; then
	echo "FAIL: the fake did not start"
	cat "$work/fake.log"
	exit 1
fi

# kubeconfig FILE CA-FILE, then the user's lines
kubeconfig() {
	file=$1 ca=$2
	shift 2
	{
		printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n'
		printf '    server: https://127.0.0.1:%s\n' "$port"
		printf '    certificate-authority-data: %s\n' "$(base64 < "$ca" | tr -d '\n')"
		printf 'users:\n- name: tester\n  user:\n'
		for line in "$@"; do printf '    %s\n' "$line"; done
		printf 'contexts:\n- name: fake\n  context: {cluster: fake, user: tester, namespace: default}\n'
		printf 'current-context: fake\n'
	} > "$file"
}
kubeconfig "$work/kc" "$work/certs/ca.crt" "token: token-one"
kubeconfig "$work/kc-wrong-ca" "$work/other/ca.crt" "token: token-one"
kubeconfig "$work/kc-wrong-token" "$work/certs/ca.crt" "token: token-two"
kubeconfig "$work/kc-cert" "$work/certs/ca.crt" \
	"client-certificate-data: $(base64 < "$work/certs/client.crt" | tr -d '\n')" \
	"client-key-data: $(base64 < "$work/certs/client.key" | tr -d '\n')"

kc() { # KUBECONFIG-FILE kubectl-args...
	cfg=$1
	shift
	kubectl --kubeconfig "$cfg" --cache-dir "$work/cache" --request-timeout=$((20 * slow))s "$@"
}
k() { kc "$work/kc" "$@"; }
state() { k get --raw /_fake/state; }
server_rv() { state | sed -n 's/.*"resource_version":\([0-9]*\).*/\1/p'; }
# wait_for FILE PATTERN SECONDS: until grep -E finds it
wait_for() {
	n=0
	while ! grep -Eq "$2" "$1" 2>/dev/null && [ $n -lt $(($3 * 10 * slow)) ]; do
		sleep 0.1
		n=$((n + 1))
	done
	grep -Eq "$2" "$1" 2>/dev/null
}

# ---- TLS and login ----
k version >"$work/out" 2>&1
check "kubectl version sees the fake server" "Server Version: v1.32.0-fake" \
	"$(grep -o 'Server Version: .*' "$work/out")"

if kc "$work/kc-wrong-ca" get pods >"$work/out" 2>&1; then
	not_ok "a kubeconfig with another CA fails" "$work/out"
elif grep -q "certificate" "$work/out"; then
	ok "a kubeconfig with another CA fails (certificate error)"
else
	not_ok "a kubeconfig with another CA fails with a certificate error" "$work/out"
fi

if kc "$work/kc-wrong-token" get pods >"$work/out" 2>&1; then
	not_ok "a wrong token is refused" "$work/out"
else
	if grep -Eq 'Unauthorized|must be logged in' "$work/out"; then
		ok "a wrong token is refused (401)"
	else
		not_ok "a wrong token is refused with 401" "$work/out"
	fi
fi

if kc "$work/kc-cert" get pods >"$work/out" 2>&1; then
	ok "a client certificate logs in"
else
	not_ok "a client certificate logs in" "$work/out"
fi

# ---- a watch in the background, then the life of a pod ----
kc "$work/kc" get pods -l app=x --watch --output-watch-events -o json \
	>"$work/watch.out" 2>"$work/watch.err" &
watch_pid=$!
n=0
until state 2>/dev/null | grep -q '"watches":1,' || [ $n -ge $((100 * slow)) ]; do
	sleep 0.1
	n=$((n + 1))
done
state | grep -q '"watches":1,' && ok "kubectl's watch is open" ||
	not_ok "kubectl's watch is open" "$work/watch.err"

cat > "$work/pod.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  labels:
    app: x
spec:
  containers:
  - name: server
    image: example/server:1
EOF
k create -f "$work/pod.yaml" >"$work/out" 2>&1
check "kubectl create -f makes the pod" "pod/web-1 created" "$(cat "$work/out")"

k get pods -l app=x -o json >"$work/out" 2>&1
if grep -q '"kind": "List"' "$work/out" && grep -q '"name": "web-1"' "$work/out"; then
	ok "kubectl get pods -l app=x -o json lists it"
else
	not_ok "kubectl get pods -l app=x -o json lists it" "$work/out"
fi
check "a selector that does not match lists nothing" "" \
	"$(k get pods -l 'app in (y,z)' -o jsonpath='{.items[*].metadata.name}' 2>&1)"
check "a new pod is Pending" "Pending" "$(k get pod web-1 -o jsonpath='{.status.phase}' 2>&1)"

k label pod web-1 tier=front >"$work/out" 2>&1
check "kubectl label" "front" "$(k get pod web-1 -o jsonpath='{.metadata.labels.tier}' 2>&1)"

k patch pod web-1 --subresource=status --type=merge \
	-p '{"status":{"phase":"Running","podIP":"10.1.2.3","conditions":[{"type":"Ready","status":"True"}]}}' \
	>"$work/out" 2>&1
check "kubectl patch --subresource=status sets phase and podIP" "Running 10.1.2.3" \
	"$(k get pod web-1 -o jsonpath='{.status.phase} {.status.podIP}' 2>&1)"

# strategic merge (kubectl's default type): conditions are merged by type
k patch pod web-1 --subresource=status \
	-p '{"status":{"conditions":[{"type":"PodScheduled","status":"True"},{"type":"Ready","status":"False"}]}}' \
	>"$work/out" 2>&1
check "a strategic status patch merges conditions by type" "Ready=False PodScheduled=True" \
	"$(k get pod web-1 -o jsonpath='{range .status.conditions[*]}{.type}={.status} {end}' 2>&1 | sed 's/ $//')"

check "a patch of the pod leaves its status alone" "Running" \
	"$(k patch pod web-1 --type=merge -p '{"status":{"phase":"Failed"}}' -o jsonpath='{.status.phase}' 2>&1)"

# (kubectl -o jsonpath wraps a list in a List of its own: ask raw)
list_rv=$(k get --raw /api/v1/namespaces/default/pods |
	sed -n 's/^{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"\([0-9]*\)".*/\1/p')
check "a list's resourceVersion is the server's" "$(server_rv)" "$list_rv"

k delete pod web-1 >"$work/out" 2>&1
check "kubectl delete" 'pod "web-1" deleted' "$(cat "$work/out")"
if k get pod web-1 >"$work/out" 2>&1; then
	not_ok "the deleted pod is gone" "$work/out"
else
	check "the deleted pod is gone (NotFound)" "1" "$(grep -c 'NotFound' "$work/out")"
fi

# The watch saw it all, in order: created, labelled, two status patches, deleted.
wait_for "$work/watch.out" '"type": ?"DELETED"' 10
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
watch_pid=
check "the background watch saw ADDED, MODIFIED x3, DELETED" "ADDED MODIFIED MODIFIED MODIFIED DELETED" \
	"$(sed -n 's/^{ *"type": *"\([A-Z]*\)".*/\1/p' "$work/watch.out" | tr '\n' ' ' | sed 's/ $//')"

# ---- the token file is read on every request ----
printf 'token-two\n' > "$work/token"
if k get pods >"$work/out" 2>&1; then
	not_ok "the old token stops working when the file changes" "$work/out"
else
	ok "the old token stops working when the file changes"
fi
if kc "$work/kc-wrong-token" get pods >"$work/out" 2>&1; then
	ok "the new token works"
else
	not_ok "the new token works" "$work/out"
fi
printf 'token-one\n' > "$work/token"

# ---- a graceful deletion: deletionTimestamp first, then gone ----
printf '{"delete_grace_ms":700}' > "$work/config.json"
k create --raw /_fake/config -f "$work/config.json" >/dev/null 2>&1
sed 's/web-1/web-2/' "$work/pod.yaml" | k create -f - >/dev/null 2>&1
k get pods --field-selector metadata.name=web-2 --watch --output-watch-events -o json \
	>"$work/watch2.out" 2>"$work/watch2.err" &
watch_pid=$!
wait_for "$work/watch2.out" '"type": ?"ADDED"' 10
k delete pod web-2 >"$work/out" 2>&1
wait_for "$work/watch2.out" '"type": ?"DELETED"' 10
kill "$watch_pid" 2>/dev/null
wait "$watch_pid" 2>/dev/null
watch_pid=
check "a graceful delete: kubectl waits it out" 'pod "web-2" deleted' "$(cat "$work/out")"
check "a graceful delete is MODIFIED (terminating), then DELETED" "ADDED MODIFIED DELETED" \
	"$(sed -n 's/^{ *"type": *"\([A-Z]*\)".*/\1/p' "$work/watch2.out" | tr '\n' ' ' | sed 's/ $//')"
check "the MODIFIED event has a deletionTimestamp" "1" \
	"$(grep '"type": *"MODIFIED"' "$work/watch2.out" | grep -c deletionTimestamp)"
printf '{"delete_grace_ms":0}' > "$work/config.json"
k create --raw /_fake/config -f "$work/config.json" >/dev/null 2>&1

# ---- 1000 pods at once, listed in pages ----
awk 'BEGIN {
	printf "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":[";
	for (i = 0; i < 1000; i++)
		printf "%s{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"bulk-%04d\",\"namespace\":\"bulk\",\"labels\":{\"bulk\":\"yes\",\"shard\":\"s%d\"}},\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":\"i\"}]},\"status\":{\"phase\":\"Running\",\"podIP\":\"10.9.%d.%d\"}}",
			i ? "," : "", i, i % 4, int(i / 250), i % 250 + 1;
	printf "]}\n";
}' > "$work/bulk.json"
k create --raw /_fake/load -f "$work/bulk.json" >"$work/out" 2>&1
check "POST /_fake/load makes 1000 pods" '"created":1000' "$(grep -o '"created":[0-9]*' "$work/out")"
check "kubectl lists all 1000 (pages of 500, with continue)" "1000" \
	"$(k get pods -n bulk -l bulk=yes -o name 2>&1 | grep -c '^pod/bulk-')"
check "a set selector over them" "500" \
	"$(k get pods -n bulk -l 'shard in (s1,s3)' -o name 2>&1 | grep -c '^pod/')"
check "pages were asked for" "1" \
	"$(k get --raw /_fake/requests | grep -c 'continue=' | sed 's/^[1-9][0-9]*$/1/')"

# ---- a watch from before the history gets 410 Expired ----
old_rv=$(server_rv)
printf '{"metadata":{"labels":{"touched":"yes"}}}' > "$work/patch.json"
k patch pod bulk-0001 -n bulk --type=merge --patch-file "$work/patch.json" >/dev/null 2>&1
k create --raw /_fake/compact -f /dev/null >/dev/null 2>&1
k get --raw "/api/v1/namespaces/bulk/pods?watch=1&resourceVersion=$old_rv&timeoutSeconds=5" \
	>"$work/out" 2>&1
if grep -q '"type":"ERROR"' "$work/out" && grep -q '"code":410' "$work/out" &&
	grep -q '"reason":"Expired"' "$work/out" && grep -q 'too old resource version' "$work/out"; then
	ok "a watch from a compacted resourceVersion gets ERROR 410 Expired"
else
	not_ok "a watch from a compacted resourceVersion gets ERROR 410 Expired" "$work/out"
fi
k get --raw "/api/v1/namespaces/bulk/pods?watch=1&resourceVersion=$(server_rv)&allowWatchBookmarks=true&timeoutSeconds=1" \
	>"$work/out" 2>&1
check "a watch with bookmarks gets one, resourceVersion only" "1" \
	"$(grep -c '^{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"[0-9]*"}}}$' "$work/out" |
	sed 's/^[1-9][0-9]*$/1/')"

# ---- services and endpointslices ----
cat > "$work/svc.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: engine
  labels: {app: engine}
spec:
  selector: {app: engine}
  ports:
  - port: 8000
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: engine-abc
  labels:
    kubernetes.io/service-name: engine
addressType: IPv4
endpoints:
- addresses: ["10.1.0.7"]
  conditions: {ready: true}
ports:
- port: 8000
EOF
k create -f "$work/svc.yaml" >"$work/out" 2>&1
check "kubectl create -f a service and an endpointslice" \
	"service/engine created endpointslice.discovery.k8s.io/engine-abc created" \
	"$(tr '\n' ' ' < "$work/out" | sed 's/ $//')"
check "the endpointslice reads back" "10.1.0.7" \
	"$(k get endpointslices -l kubernetes.io/service-name=engine -o jsonpath='{.items[0].endpoints[0].addresses[0]}' 2>&1)"

# ---- bad input is a 400 Status ----
printf 'not json' > "$work/bad.json"
k create --raw /api/v1/namespaces/default/pods -f "$work/bad.json" >"$work/out" 2>&1
if grep -q "BadRequest\|not JSON\|400" "$work/out"; then
	ok "a body that is not JSON gets 400 BadRequest"
else
	not_ok "a body that is not JSON gets 400 BadRequest" "$work/out"
fi

# ---- the fake ends cleanly (under FAKE_WRAPPER: no leaks, no errors) ----
kill "$fake_pid"
n=0
while kill -0 "$fake_pid" 2>/dev/null && [ $n -lt $((50 * slow)) ]; do
	sleep 0.1
	n=$((n + 1))
done
wait "$fake_pid"
rc=$?
fake_pid=
check "the fake exits cleanly on SIGTERM" "0" "$rc"
[ "$rc" = 0 ] || tail -n 30 "$work/fake.log"

echo "kubectl_check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
