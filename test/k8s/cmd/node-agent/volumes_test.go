package main

import "testing"

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
