#!/usr/bin/env bash
# Remakes docs/demo.png, the README's screenshot, from a real run: `shiyu demo` on a fresh folder, the live
# event stream for a few seconds and the statistics by county, drawn as a terminal by headless Chromium.
# Needs what the tests do not: `apt-get install -y chromium fonts-noto-cjk`, plus curl and python3. The demo
# runs on a spare port and a temporary folder; the picture shows them as the README's command has them
# (:8080, ./shiyu-data), and that is all it changes.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${PORT:-18080}
base="http://127.0.0.1:$port"
work=$(mktemp -d)
cleanup() {
  [ -n "${demo:-}" ] && kill "$demo" 2>/dev/null && wait "$demo" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --release -p shiyu
./target/release/shiyu --data "$work/data" demo --listen "127.0.0.1:$port" >"$work/demo.txt" 2>/dev/null &
demo=$!
for _ in $(seq 300); do
  grep -q '^live:' "$work/demo.txt" && break
  kill -0 "$demo" || { echo "shiyu demo stopped early" >&2; exit 1; }
  sleep 1
done

password=$(python3 -c 'import json,sys; print(next(a["password"] for a in json.load(open(sys.argv[1])) if a["role"] == "leader"))' \
  "$work/data/demo-accounts.json")
curl -sf -c "$work/cookies" -H 'Content-Type: application/json' \
  -d "{\"username\":\"leader\",\"password\":\"$password\"}" "$base/api/session" >/dev/null
timeout 4 curl -sN -b "$work/cookies" "$base/api/events/stream" >"$work/stream.txt" || true
curl -sf -b "$work/cookies" "$base/api/analytics/groups?by=county" >"$work/groups.json"

python3 - "$work" "$port" <<'EOF'
import html, json, sys
work, port = sys.argv[1], sys.argv[2]
lines = [("cmd", "$ cargo run --release -- demo")]
demo = open(f"{work}/demo.txt", encoding="utf-8").read()
demo = demo.replace(f"{work}/data", "shiyu-data").replace(f"127.0.0.1:{port}", "127.0.0.1:8080")
lines += [("out", line) for line in demo.splitlines()]
lines.append(("gap", ""))
lines.append(("cmd", "$ curl -N -b cookies.txt $BASE/api/events/stream        # every step as it commits"))
events = [json.loads(l[6:]) for l in open(f"{work}/stream.txt", encoding="utf-8") if l.startswith("data: ")]
for e in events[-6:]:
    lines.append(("out", f"  seq {e['seq']}  case {e['case_id']}  v{e['version']}  {e['label']} ({e['kind']})"))
lines.append(("gap", ""))
lines.append(("cmd", "$ curl -b cookies.txt '$BASE/api/analytics/groups?by=county'   # as a table"))
def cell(text, width, left=False):
    # A CJK character takes two columns of a monospaced font: pad by columns, not by characters.
    pad = " " * max(0, width - sum(2 if ord(c) > 0x2e7f else 1 for c in text))
    return text + pad if left else pad + text
lines.append(("out", "  " + cell("区县", 20, left=True) + "".join(cell(h, 8) for h in ["案件", "已结", "在办", "超期率", "满意率"])))
groups = sorted(json.load(open(f"{work}/groups.json"))["groups"], key=lambda g: -g["cases"])
for g in groups:
    numbers = [str(g["cases"]), str(g["closed"]), str(g["open"]),
               f"{g['overdue_rate'] * 100:.1f}%", f"{g['satisfaction_rate'] * 100:.1f}%"]
    lines.append(("out", "  " + cell(g["keys"][0]["name"], 20, left=True) + "".join(cell(n, 8) for n in numbers)))
body = "\n".join(f'<span class="{kind}">{html.escape(text)}</span>' for kind, text in lines)
page = f"""<!doctype html><meta charset="utf-8"><style>
body {{ margin: 0; background: #0d1117; }}
.window {{ margin: 16px; border-radius: 8px; background: #161b22; overflow: hidden; }}
.title {{ background: #21262d; color: #8b949e; font: 13px sans-serif; padding: 8px 12px; }}
pre {{ margin: 0; padding: 12px 16px; color: #c9d1d9; font: 12.5px/1.5 "Noto Sans Mono CJK SC", monospace; }}
.cmd {{ color: #7ee787; }}
</style><div class="window"><div class="title">shiyu demo — 南通市域社会治理指挥中心</div><pre>{body}</pre></div>"""
open(f"{work}/shot.html", "w", encoding="utf-8").write(page)
open(f"{work}/height", "w").write(str(80 + 19 * len(lines)))
EOF

chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="1240,$(cat "$work/height")" \
  --screenshot="$PWD/docs/demo.png" "file://$work/shot.html" 2>/dev/null
echo "wrote docs/demo.png"
