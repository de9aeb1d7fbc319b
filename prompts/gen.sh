#!/usr/bin/env bash
# Remakes every prompt's audio from the catalogue in prompts.go:
#   sounds/<lang>/ivr-pin/<id>.wav   8 kHz mono 16-bit PCM (Asterisk's slin .wav)
#   sounds/<lang>/ivr-pin/<id>.ulaw  raw G.711 mu-law, 8 kHz (no transcoding on ulaw calls)
# Needs espeak-ng and sox (apt-get install -y espeak-ng sox). Run from anywhere:
#   bash prompts/gen.sh             every prompt
#   bash prompts/gen.sh --missing   only prompts without audio yet (keeps the
#                                   committed files byte for byte)
set -euo pipefail
only_missing=false
[ "${1:-}" = "--missing" ] && only_missing=true
cd "$(dirname "$0")/.."
declare -A voice=([en]=en-us [ar]=ar [zh]=cmn)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./prompts/internal/textdump | while IFS=$'\t' read -r lang id text; do
  dir="prompts/sounds/$lang/ivr-pin"
  mkdir -p "$dir"
  if $only_missing && [ -f "$dir/$id.wav" ] && [ -f "$dir/$id.ulaw" ]; then continue; fi
  # Slower speech (-s 150) and a short lead-in/out of silence: callers are often on a bad line.
  espeak-ng -v "${voice[$lang]}" -s 150 -w "$tmp/raw.wav" -- "$text"
  case "$id" in
  number-*|pin-rule-from|pin-rule-to)
    # Fragments said inside a sentence ("must have 4 to 6 digits"): the
    # speech only, with a short breath either side, so the sentence flows.
    sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$id.wav" norm -3 \
      silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.08 0.08 ;;
  *)
    sox "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$id.wav" norm -3 pad 0.15 0.25 ;;
  esac
  sox "$dir/$id.wav" -t ul -r 8000 -c 1 "$dir/$id.ulaw"
done
echo "prompts written under prompts/sounds/"
