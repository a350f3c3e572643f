package main

import (
	"errors"
	"testing"
)

func TestRewritePath(t *testing.T) {
	m := []mapping{{from: "/etc/failwatch/ca/sub", to: "/v/p/inner"}, {from: "/etc/failwatch/ca", to: "/v/p/ca-bundle"}}
	for in, want := range map[string]string{
		"/etc/failwatch/ca/ca.crt":     "/v/p/ca-bundle/ca.crt",
		"/etc/failwatch/ca":            "/v/p/ca-bundle",
		"/etc/failwatch/ca/sub/x":      "/v/p/inner/x",
		"/etc/failwatch/cax/ca.crt":    "/etc/failwatch/cax/ca.crt",
		"value with /etc/failwatch/ca": "value with /etc/failwatch/ca",
		"":                             "",
	} {
		if got := rewritePath(in, m); got != want {
			t.Errorf("rewritePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The FailedMount Event's message is the kubelet's (operationexecutor.GenerateError with
// "MountVolume.SetUp failed"), which the controller parses.
func TestMountErrorIsTheKubeletsMessage(t *testing.T) {
	for _, c := range []struct{ err, want string }{
		{`secret "ca" not found`, `MountVolume.SetUp failed for volume "ca-bundle" : secret "ca" not found`},
		{"references non-existent secret key: ca.crt", `MountVolume.SetUp failed for volume "ca-bundle" : references non-existent secret key: ca.crt`},
	} {
		got := (&mountError{volume: "ca-bundle", err: errors.New(c.err)}).Error()
		if got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestPodAddress(t *testing.T) {
	for in, want := range map[string]string{
		"--metrics-listen=0.0.0.0:8080": "--metrics-listen=127.0.90.7:8080",
		"0.0.0.0:9090":                  "127.0.90.7:9090",
		"--metrics-listen=127.0.0.1:80": "--metrics-listen=127.0.0.1:80",
		"/app/src/cli/main.ts":          "/app/src/cli/main.ts",
	} {
		if got := podAddress(in, "127.0.90.7"); got != want {
			t.Errorf("podAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
