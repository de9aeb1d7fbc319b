package config

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"sort"
	"strings"

	"github.com/ivr-pin/ivr-pin/pinsvc/keysecure"
)

// Print writes every setting as NAME=value, one a line, sorted, with secrets
// shown as <set>/<unset> and keys as their KCV.
func (c *Config) Print(w io.Writer) {
	lines := []string{}
	v := reflect.ValueOf(c).Elem()
	for _, s := range settings() {
		name := Prefix + "_" + s.Name
		field := v.FieldByIndex(s.Index).Interface()
		val := fmt.Sprint(field)
		switch x := field.(type) {
		case []string:
			val = strings.Join(x, ",")
		case map[string]string:
			pairs := make([]string, 0, len(x))
			for k, v := range x {
				pairs = append(pairs, k+":"+v)
			}
			sort.Strings(pairs)
			val = strings.Join(pairs, ",")
		}
		switch s.Tag.Get("secret") {
		case "true":
			val = c.printSecret(s, name, val)
		case "url":
			val = RedactURL(val)
		}
		lines = append(lines, name+"="+val)
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// printSecret shows a secret as <set>/<unset>, where it came from, and a
// key's check value.
func (c *Config) printSecret(s setting, name, val string) string {
	val = setOrUnset(val)
	if s.Name == "NI_ZPK" && c.HasSoftwareZPK() {
		if k, err := c.ZPK(); err == nil {
			val = "<set, KCV " + k.KCV() + ">"
		}
	}
	if val != "<unset>" && c.fromFile(name) {
		val = strings.Replace(val, "<set", "<set from "+name+FileSuffix, 1)
	}
	if s.Name == "KEYSECURE_API_SECRET" && c.KeySecureAPISecret != "" {
		if k, err := keysecure.SecretKey(c.KeySecureAPISecret); err == nil {
			val = "<set, KCV " + k.KCV() + ">"
		}
	}
	return val
}

func setOrUnset(v string) string {
	if v == "" {
		return "<unset>"
	}
	return "<set>"
}

// RedactURL shows a URL with every secret it may carry (a password in the
// user info, any query value: tokens and keys travel there) as <set>. A
// value that does not parse is shown only as <set>/<unset>.
func RedactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || v == "" || u.Host == "" {
		return setOrUnset(v)
	}
	out := u.Scheme + "://"
	if u.User != nil {
		out += u.User.Username()
		if _, has := u.User.Password(); has {
			out += ":<set>"
		}
		out += "@"
	}
	out += u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			sep := "&"
			if i == 0 {
				sep = "?"
			}
			out += sep + url.QueryEscape(k) + "=<set>"
		}
	}
	return out
}

// Describe lists each setting's variable, default and description, a
// table per section, for the README's configuration tables (`ivr-pin
// config --table`).
func Describe(w io.Writer) {
	section := ""
	for _, s := range settings() {
		if s.Section != section {
			if section != "" {
				fmt.Fprintln(w)
			}
			section = s.Section
			fmt.Fprintf(w, "**%s**\n\n| Variable | Default | Meaning |\n|---|---|---|\n", section)
		}
		def := s.Tag.Get("default")
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(w, "| `%s_%s` | `%s` | %s |\n", Prefix, s.Name, def, s.Tag.Get("desc"))
	}
}
