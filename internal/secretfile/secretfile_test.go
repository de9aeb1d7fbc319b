package secretfile

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// Each hostile or mistaken file is refused by name, at once, without
// reading it whole.
func TestReadRefusesUnsafeFiles(t *testing.T) {
	cases := []struct {
		name string
		make func(t *testing.T) string
		want string // in the error
	}{
		{"a FIFO (no writer: an open that blocks would hang start-up)", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "a FIFO"},
		{"a file one byte over the limit", func(t *testing.T) string {
			return writeSecret(t, strings.Repeat("a", MaxSize+1), 0o600)
		}, "at most"},
		{"a 100 kB file", func(t *testing.T) string {
			return writeSecret(t, strings.Repeat("a", 100_000), 0o600)
		}, "at most"},
		{"an 8 GiB sparse file", func(t *testing.T) string {
			p := writeSecret(t, "x", 0o600)
			if err := os.Truncate(p, 8<<30); err != nil {
				t.Skip("no sparse files here:", err)
			}
			return p
		}, "at most"},
		{"another user's file", func(t *testing.T) string {
			p := writeSecret(t, "a-long-enough-password", 0o600)
			if err := os.Chown(p, 4242, -1); err != nil {
				t.Skip("cannot give a file away without root:", err)
			}
			return p
		}, "owned by uid 4242"},
		{"a directory every user may write", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "open")
			if err := os.Mkdir(d, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(d, "secret")
			if err := os.WriteFile(p, []byte("a-long-enough-password"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "every user may write"},
		{"a directory another user owns", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "theirs")
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(d, "secret")
			if err := os.WriteFile(p, []byte("a-long-enough-password"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(d, 4242, -1); err != nil {
				t.Skip("cannot give a directory away without root:", err)
			}
			return p
		}, "owned by uid 4242"},
		{"group may read", func(t *testing.T) string { return writeSecret(t, "a-long-enough-password", 0o640) }, "mode 0640"},
		{"a directory", func(t *testing.T) string { return t.TempDir() }, "a directory"},
		{"empty", func(t *testing.T) string { return writeSecret(t, "\n", 0o600) }, "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.make(t)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b, err := Read(p)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("read %d bytes", len(b))
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file and say %q", err, c.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 2*MaxSize+64<<10 {
				t.Fatalf("refusing it allocated %d bytes", grew)
			}
		})
	}
}

// What a service is handed is read: 0400 and 0600 files of its own, one
// trailing newline dropped, at the limit exactly, in a sticky directory
// (as /tmp), through a symlink (as a Kubernetes secret volume).
func TestReadAcceptsWhatServicesAreHanded(t *testing.T) {
	exact := strings.Repeat("k", MaxSize)
	cases := []struct {
		name, want string
		make       func(t *testing.T) string
	}{
		{"0400 with a newline", "a-long-enough-password", func(t *testing.T) string { return writeSecret(t, "a-long-enough-password\n", 0o400) }},
		{"0600 with CRLF", "a-long-enough-password", func(t *testing.T) string { return writeSecret(t, "a-long-enough-password\r\n", 0o600) }},
		{"exactly the limit", exact, func(t *testing.T) string { return writeSecret(t, exact, 0o600) }},
		{"in a sticky directory", "a-long-enough-password", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "sticky")
			if err := os.Mkdir(d, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(d, 0o777|os.ModeSticky); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(d, "secret")
			if err := os.WriteFile(p, []byte("a-long-enough-password"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"through a symlink", "a-long-enough-password", func(t *testing.T) string {
			target := writeSecret(t, "a-long-enough-password", 0o400)
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Read(c.make(t))
			if err != nil || string(b) != c.want {
				t.Fatalf("%v (%d bytes)", err, len(b))
			}
		})
	}
}
