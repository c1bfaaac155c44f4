#!/bin/sh
# tests/sim/sim_check.sh - a smoke test of the vLLM engine simulator
# (tests/vllm_sim): it starts one, and with curl checks /v1/models, chat
# completions streamed and not, /metrics moving under concurrent load and
# with a repeated prompt, sleep and wake, injected failures and the
# context-length error. The model itself is unit-tested (test_sim_model.c).
#
# Environment (set by `make check`): top_builddir. SIM_WRAPPER="valgrind
# --leak-check=full --error-exitcode=3" runs the simulator under a tool;
# its exit status is checked at the end.
# Exit status: 0 pass, 1 fail, 77 skip (no curl).

top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
sim="$top_builddir/tests/vllm_sim"

if ! command -v curl >/dev/null 2>&1; then
	echo "SKIP: curl is missing"
	exit 77
fi
if [ ! -x "$sim" ]; then
	echo "FAIL: $sim is not built"
	exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/sim_check.XXXXXX") || exit 1
pid=
failed=0
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	failed=$((failed + 1))
}
ok() {
	echo "ok: $*"
}
# the first "key":value of a JSON text (numbers, booleans, "strings")
field() {
	grep -o "\"$1\":[^,}]*" | head -n 1 | cut -d: -f2-
}
# a metric's value, without labels
metric() {
	curl -s "$base/metrics" | grep "^$1[{ ]" | head -n 1 | sed 's/.* //'
}
post() {
	curl -s -m 20 "$base$1" -H 'Content-Type: application/json' -d "$2"
}
# waits up to 10 s for a metric to reach a value
wait_metric() {
	i=0
	while [ $i -lt 100 ]; do
		[ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# Small timings so a request takes milliseconds; two sequences at once so
# five requests queue; decode steps of 20 ms so the queue can be seen.
# shellcheck disable=SC2086
${SIM_WRAPPER:-} "$sim" --port 0 --port-file "$dir/port" --model org/sim-8b \
	--served-model-name sim-8b --lora sql-lora=/adapters/sql --max-num-seqs 2 \
	--max-model-len 1024 --num-gpu-blocks 256 --prefill-overhead-ms 1 \
	--prefill-per-token-ms 0.01 --decode-base-ms 20 --decode-per-seq-ms 0 \
	>"$dir/sim.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$dir/port" ] && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ ! -s "$dir/port" ]; then
	cat "$dir/sim.log"
	echo "FAIL: the simulator did not start"
	exit 1
fi
base="http://127.0.0.1:$(cat "$dir/port")"

# ---- /v1/models, /health, /version ----
models=$(curl -s "$base/v1/models")
case $models in
*'"id":"sim-8b"'*'"root":"org/sim-8b"'*'"max_model_len":1024'*'"id":"sql-lora"'*'"root":"/adapters/sql","parent":"sim-8b"'*)
	ok "/v1/models lists the model and the LoRA adapter with its parent" ;;
*) fail "/v1/models: $models" ;;
esac
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/health")
[ "$code" = 200 ] && ok "/health" || fail "/health answered $code"
case $(curl -s "$base/version") in
*'"version":'*) ok "/version" ;;
*) fail "/version" ;;
esac

# ---- a chat completion, whole: "user: hello\n" is 12 bytes, 3 tokens ----
chat='{"model":"sim-8b","messages":[{"role":"user","content":"hello"}],"max_tokens":5}'
out=$(post /v1/chat/completions "$chat")
if [ "$(echo "$out" | field prompt_tokens)" = 3 ] &&
	[ "$(echo "$out" | field completion_tokens)" = 5 ] &&
	[ "$(echo "$out" | field finish_reason)" = '"length"' ] &&
	[ "$(echo "$out" | field content)" = '"This is simulated ou"' ]; then
	ok "chat completion: usage 3 + 5 tokens, 20 bytes of text, finish_reason length"
else
	fail "chat completion: $out"
fi

# ---- streamed, with usage: role chunk, 4 tokens, usage chunk, [DONE] ----
out=$(post /v1/chat/completions '{"model":"sql-lora","messages":[{"role":"user","content":"hello"}],"max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}')
chunks=$(echo "$out" | grep -c '^data: {')
content=$(echo "$out" | grep -c '"delta":{"content":"')
last=$(echo "$out" | grep '^data: ' | tail -n 1)
usage=$(echo "$out" | grep '"choices":\[\],"usage"')
if [ "$chunks" = 6 ] && [ "$content" = 4 ] && [ "$last" = "data: [DONE]" ] &&
	[ "$(echo "$usage" | field completion_tokens)" = 4 ] &&
	echo "$out" | grep -q '"role":"assistant"' && echo "$out" | grep -q '"model":"sql-lora"'; then
	ok "chat stream: role chunk, 4 token chunks, usage chunk, [DONE]"
else
	fail "chat stream: $out"
fi

# ---- text completion, the default max_tokens (16) ----
out=$(post /v1/completions '{"model":"sim-8b","prompt":"abcdefgh"}')
[ "$(echo "$out" | field completion_tokens)" = 16 ] && [ "$(echo "$out" | field prompt_tokens)" = 2 ] &&
	ok "completion: 2 prompt tokens, 16 by default" || fail "completion: $out"

# ---- concurrent load: 2 run, 3 wait ----
loads=
for n in 1 2 3 4 5; do
	post /v1/completions "{\"prompt\":\"load $n\",\"max_tokens\":15}" >"$dir/load$n" &
	loads="$loads $!"
done
if wait_metric 'vllm:num_requests_waiting' 3.0 && [ "$(metric 'vllm:num_requests_running')" = 2.0 ]; then
	ok "metrics under load: 2 running, 3 waiting"
else
	fail "metrics under load: running $(metric 'vllm:num_requests_running'), waiting $(metric 'vllm:num_requests_waiting')"
fi
usage=$(metric 'vllm:kv_cache_usage_perc')
case $usage in
0.0 | '') fail "kv_cache_usage_perc under load: '$usage'" ;;
*) ok "kv_cache_usage_perc under load: $usage" ;;
esac
# shellcheck disable=SC2086
wait $loads
if wait_metric 'vllm:num_requests_running' 0.0 && [ "$(metric 'vllm:num_requests_waiting')" = 0.0 ] &&
	[ "$(grep -l '"completion_tokens":15' "$dir"/load* | wc -l)" -eq 5 ]; then
	ok "the five queued requests all finished"
else
	fail "queued requests: $(cat "$dir"/load*)"
fi

# ---- prefix cache: a 100-token prompt again hits 96 tokens (6 full blocks,
# the last token always computed) ----
long=$(printf '%0400d' 7)
hits0=$(metric 'vllm:prefix_cache_hits_total')
post /v1/completions "{\"prompt\":\"$long\",\"max_tokens\":1}" >/dev/null
hits1=$(metric 'vllm:prefix_cache_hits_total')
post /v1/completions "{\"prompt\":\"$long\",\"max_tokens\":1}" >/dev/null
hits2=$(metric 'vllm:prefix_cache_hits_total')
if [ "${hits0%.0}" = "${hits1%.0}" ] && [ $((${hits2%.0} - ${hits1%.0})) = 96 ]; then
	ok "prefix cache: the repeated prompt hit 96 tokens"
else
	fail "prefix cache hits: $hits0 $hits1 $hits2"
fi
info=$(curl -s "$base/metrics" | grep '^vllm:cache_config_info{')
case $info in
*'block_size="16"'*'num_gpu_blocks="256"'*) ok "cache_config_info" ;;
*) fail "cache_config_info: $info" ;;
esac

# ---- sleep: a request waits until wake-up; the KV cache is gone ----
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/sleep?level=1")
case $(curl -s "$base/is_sleeping") in
*'"is_sleeping":true'*) [ "$code" = 200 ] && ok "sleep" || fail "sleep answered $code" ;;
*) fail "/is_sleeping after /sleep" ;;
esac
post /v1/completions "{\"prompt\":\"$long\",\"max_tokens\":1}" >"$dir/held" &
held=$!
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/health")
if wait_metric 'vllm:num_requests_waiting' 1.0 && [ ! -s "$dir/held" ] && [ "$code" = 200 ]; then
	ok "asleep: the request is held, /health answers"
else
	fail "asleep: waiting $(metric 'vllm:num_requests_waiting'), health $code, $(cat "$dir/held")"
fi
curl -s -o /dev/null -X POST "$base/wake_up"
wait $held
case $(curl -s "$base/is_sleeping") in
*'"is_sleeping":false'*) ;;
*) fail "/is_sleeping after /wake_up" ;;
esac
if grep -q '"completion_tokens":1' "$dir/held" && [ "$(metric 'vllm:prefix_cache_hits_total')" = "$hits2" ]; then
	ok "woken: the held request answered, without cache hits (level 1 forgot the cache)"
else
	fail "after wake-up: $(cat "$dir/held"), hits $(metric 'vllm:prefix_cache_hits_total')"
fi

# ---- failures injected at run time ----
post /_sim/fail '{"status":503,"count":1}' >/dev/null
out=$(curl -s -w ' %{http_code}' "$base/v1/completions" -d '{"prompt":"x","max_tokens":1}')
out2=$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/completions" -d '{"prompt":"x","max_tokens":1}')
case $out in
*'"error":{'*'"type":"ServiceUnavailableError"'*'"code":503'*' 503')
	[ "$out2" = 200 ] && ok "injected 503, once" || fail "after the injected 503: $out2" ;;
*) fail "injected 503: $out" ;;
esac
post /_sim/fail '{"die_after":2}' >/dev/null
curl -sN "$base/v1/completions" -d '{"prompt":"x","max_tokens":10,"stream":true}' >"$dir/died"
rc=$?
post /_sim/fail '{}' >/dev/null
if [ $rc -ne 0 ] && [ "$(grep -c '^data: {' "$dir/died")" = 2 ] && ! grep -q DONE "$dir/died"; then
	ok "died mid-stream after 2 tokens (curl: $rc)"
else
	fail "die_after 2: curl $rc, $(cat "$dir/died")"
fi

# ---- the context-length error, in vLLM's words ----
out=$(curl -s -w ' %{http_code}' "$base/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hello"}],"max_tokens":1022}')
want="This model's maximum context length is 1024 tokens. However, you requested 1025 tokens (3 in the messages, 1022 in the completion). Please reduce the length of the messages or completion."
case $out in
*"\"error\":{\"message\":\"$want\",\"type\":\"BadRequestError\",\"param\":null,\"code\":400}"*' 400')
	ok "context-length error" ;;
*) fail "context-length error: $out" ;;
esac

# ---- the simulator stops cleanly (and, under valgrind, without leaks) ----
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
if [ $rc -ne 0 ]; then
	cat "$dir/sim.log"
	fail "the simulator exited $rc"
fi
if [ $failed -ne 0 ]; then
	echo "sim_check: $failed failed"
	exit 1
fi
echo "sim_check: all passed"
exit 0
