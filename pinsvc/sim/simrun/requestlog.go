package simrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ivr-pin/ivr-pin/pinsvc/secret"
)

// requestLog wraps a simulator so that each request it answers is one line
// on w: the simulator, method and path, the card number masked (first six,
// last four), the HTTP status and the host's result code. Nothing else of
// the request or the answer is written: PIN blocks, tokens, signatures and
// card details stay out of the log, as they would on a real host's.
func requestLog(name string, h http.Handler, w io.Writer, mu *sync.Mutex) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &recorder{ResponseWriter: rw, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			return
		}
		card := "-"
		if pan := findString(decode(body), "card_number"); pan != "" {
			card = secret.MaskPAN(pan)
		}
		result := "-"
		answer := decode(rec.body.Bytes())
		for _, k := range []string{"error_code", "code"} {
			if v := findString(answer, k); v != "" {
				result = k + "=" + v
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s: %s %s card=%s http=%d %s\n", name, r.Method, r.URL.Path, card, rec.status, result)
	})
}

// recorder keeps the status and the first 64 KiB of the answer.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

func (r *recorder) Write(b []byte) (int, error) {
	if room := 64<<10 - r.body.Len(); room > 0 {
		r.body.Write(b[:min(len(b), room)])
	}
	return r.ResponseWriter.Write(b)
}

func decode(b []byte) any {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return nil
	}
	return v
}

// findString finds key anywhere in a decoded JSON value and says its value
// (a number as its digits).
func findString(v any, key string) string {
	switch t := v.(type) {
	case map[string]any:
		if x, ok := t[key]; ok {
			switch s := x.(type) {
			case string:
				return s
			case float64:
				return strconv.FormatFloat(s, 'f', -1, 64)
			}
		}
		for _, x := range t {
			if s := findString(x, key); s != "" {
				return s
			}
		}
	case []any:
		for _, x := range t {
			if s := findString(x, key); s != "" {
				return s
			}
		}
	}
	return ""
}
