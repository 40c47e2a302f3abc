package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mptp/mptp/config"
)

const (
	okIn  = `"inbounds":[{"protocol":"socks","address":"127.0.0.1","port":1086}]`
	okOut = `"outbounds":[{"protocol":"direct"}]`
)

// parseLog parses a whole JSON config with the given "log" section, as
// mptp -c does, and returns that section.
func parseLog(t *testing.T, log string) config.Log {
	t.Helper()
	cfg, _, err := config.Parse([]byte(`{"log":` + log + `,` + okIn + `,` + okOut + `}`))
	if err != nil {
		t.Fatalf("config %s: %v", log, err)
	}
	return cfg.Log
}

// A "log" output that is a path is a file the logger appends to: what was
// in it stays, and the records come after it.
func TestLogToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mptp.log")
	if err := os.WriteFile(path, []byte("earlier line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(path)
	if err != nil {
		t.Fatal(err)
	}
	log, closer, err := Logger(parseLog(t, `{"level":"warn","output":`+string(out)+`}`))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("below the level")
	log.Warn("path down", "path", "wifi")
	if err := closer.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || lines[0] != "earlier line" ||
		!strings.Contains(lines[1], "level=WARN") || !strings.Contains(lines[1], `msg="path down" path=wifi`) {
		t.Fatalf("log file holds %q; want the earlier line, then only the warning", b)
	}
}

// "stdout" writes to standard output and "stderr", "console" and "" to
// standard error (both swapped for a file here), never to a file by that
// name.
func TestLogConsoleOutputs(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, tc := range []struct {
		output string
		stream **os.File
	}{
		{"stdout", &os.Stdout}, {"stderr", &os.Stderr}, {"console", &os.Stderr}, {"", &os.Stderr},
	} {
		tag := "to-" + tc.output
		f, err := os.CreateTemp(t.TempDir(), "stream")
		if err != nil {
			t.Fatal(err)
		}
		cfg := parseLog(t, `{"output":"`+tc.output+`"}`)
		saved := *tc.stream
		*tc.stream = f
		log, closer, err := Logger(cfg)
		if err == nil {
			log.Info("hello", "tag", tag)
			err = closer.Close()
		}
		*tc.stream = saved
		if err != nil {
			t.Fatalf("output %q: %v", tc.output, err)
		}
		b, err := os.ReadFile(f.Name())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := "level=INFO msg=hello tag=" + tag + "\n"; !strings.HasSuffix(string(b), want) {
			t.Errorf("output %q: stream got %q, want a record ending %q", tc.output, b, want)
		}
	}
	if ents, err := os.ReadDir("."); err != nil || len(ents) != 0 {
		t.Fatalf("files made in the working directory: %v %v", ents, err)
	}
}

// A file that cannot be opened is an error naming the field; a level that
// is not one is refused when the config is parsed, naming that field.
func TestLogErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no such dir", "mptp.log")
	if _, _, err := Logger(config.Log{Output: missing}); err == nil || !strings.HasPrefix(err.Error(), "log.output: ") {
		t.Errorf("output in a missing directory: %v, want a log.output error", err)
	}
	_, _, err := config.Parse([]byte(`{"log":{"level":"loud"},` + okIn + `,` + okOut + `}`))
	if err == nil || !strings.Contains(err.Error(), `log.level: unknown level "loud"`) {
		t.Errorf("level loud: %v, want a log.level error", err)
	}
}
