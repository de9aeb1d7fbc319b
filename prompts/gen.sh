#!/usr/bin/env bash
# Makes the placeholder audio of every prompt from its words (prompts/words/<lang>.toml,
# or a bank's IVRPIN_PROMPT_WORDS directory laid over them):
#   sounds/<lang>/ivr-pin/<id>.wav   8 kHz mono 16-bit PCM (Asterisk's slin .wav)
#   sounds/<lang>/ivr-pin/<id>.ulaw  raw G.711 mu-law, 8 kHz (no transcoding on ulaw calls)
# English is spoken by Festival's HTS voice (cmu_us_slt_arctic_hts), which is
# clearly more natural than espeak-ng's formant voice; Arabic and Mandarin by
# espeak-ng (Debian has no better free voice for them). Both are
# deterministic, and sox runs repeatable (-R, its dither seeded): the same
# words give the same bytes.
#
# Needs: apt-get install -y espeak-ng sox festival festvox-us-slt-hts
#   bash prompts/gen.sh            prompts whose words (or voice) changed, or
#                                  that have no audio yet; the others keep
#                                  their bytes (sounds/MANIFEST records what
#                                  each file was made from)
#   bash prompts/gen.sh --all      every prompt
#   bash prompts/gen.sh --out DIR  write DIR/<lang>/ivr-pin/ instead (a bank's
#                                  own words, before it records real audio)
# These are placeholders for a lab: docs/prompts.md says how a bank records,
# converts and installs its own.
set -euo pipefail
all=false
out=""
while [ $# -gt 0 ]; do
  case "$1" in
  --all) all=true ;;
  --out) out="$2"; shift ;;
  *) echo "usage: gen.sh [--all] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
sounds=${out:-prompts/sounds}
manifest="$sounds/MANIFEST"
mkdir -p "$sounds"
touch "$manifest"
declare -A espeak_voice=([ar]=ar [zh]=cmn)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
newmanifest="$tmp/manifest"
: > "$newmanifest"

speak() { # lang text out.wav: the raw speech
  local lang=$1 text=$2 wav=$3
  if [ "$lang" = en ]; then
    printf '%s\n' "$text" > "$tmp/words.txt"
    text2wave -eval '(voice_cmu_us_slt_arctic_hts)' "$tmp/words.txt" -o "$wav"
  else
    # Slower speech (-s 150): callers are often on a bad line.
    espeak-ng -v "${espeak_voice[$lang]:-$lang}" -s 150 -w "$wav" -- "$text"
  fi
}

engine() { [ "$1" = en ] && echo "festival-slt-hts" || echo "espeak-ng-${espeak_voice[$1]:-$1}"; }

go run ./prompts/internal/textdump | while IFS=$'\t' read -r lang id text; do
  dir="$sounds/$lang/ivr-pin"
  mkdir -p "$dir"
  made="$(engine "$lang") $(printf '%s' "$text" | sha256sum | cut -c1-16)"
  printf '%s/%s\t%s\n' "$lang" "$id" "$made" >> "$newmanifest"
  if ! $all && [ -f "$dir/$id.wav" ] && [ -f "$dir/$id.ulaw" ] &&
    grep -qxF "$(printf '%s/%s\t%s' "$lang" "$id" "$made")" "$manifest"; then
    continue
  fi
  echo "making $lang/$id" >&2
  speak "$lang" "$text" "$tmp/raw.wav"
  case "$id" in
  number-*|pin-rule-from|pin-rule-to|card-ending)
    # Fragments said inside a sentence ("must have 4 to 6 digits", "ending
    # in 1 1 1 1"): the speech only, with a short breath either side.
    sox -R "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$id.wav" norm -3 \
      silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.08 0.08 ;;
  *)
    sox -R "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$id.wav" norm -3 pad 0.15 0.25 ;;
  esac
  sox -R "$dir/$id.wav" -t ul -r 8000 -c 1 "$dir/$id.ulaw"
done
sort "$newmanifest" > "$manifest"
echo "prompts written under $sounds/ (check them: go run ./cmd/ivr-pin prompts check $sounds)"
