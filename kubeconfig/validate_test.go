package kubeconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLoadNamesTheFieldOfAMalformedKubeconfig(t *testing.T) {
	const users = "users: [{name: ci, user: {token: " + secret + "}}]\n"
	const clusters = "clusters: [{name: c, cluster: {server: https://h}}, {name: d, cluster: {server: https://h}}]\n"
	tests := []struct {
		name    string
		opts    Options
		fields  []string
		details []string // in the message
	}{
		{"no clusters at all", Options{Kubeconfig: []byte(users + "contexts: [{name: dev, context: {cluster: c, user: ci}}]\ncurrent-context: dev")},
			[]string{"clusters", `contexts["dev"].context.cluster`}, []string{"clusters: none given", `"c" was not found (clusters: none)`}},
		{"empty bytes", Options{Kubeconfig: []byte{}},
			[]string{"clusters", "current-context"}, []string{"clusters: none given", "current-context: none given"}},
		{"an empty map", Options{KubeconfigMap: map[string]any{}},
			[]string{"clusters", "current-context"}, []string{"clusters: none given"}},
		{"an unknown context", Options{Kubeconfig: []byte(twoContexts), Context: "nope"},
			[]string{"context"}, []string{`context: context was not found for specified context: nope (contexts: "a", "b")`}},
		{"an unknown current-context", Options{Kubeconfig: []byte(clusters + users + "current-context: gone")},
			[]string{"current-context"}, []string{"context was not found for specified context: gone (contexts: none)"}},
		{"no context named and no current-context", Options{Kubeconfig: []byte(clusters + users + "contexts: [{name: dev, context: {cluster: c, user: ci}}]")},
			[]string{"current-context"}, []string{`current-context: none given, and no context was named (contexts: "dev")`}},
		{"a context's cluster is not there", Options{Kubeconfig: []byte(clusters + users + "contexts: [{name: dev, context: {cluster: x, user: ci}}]"), Context: "dev"},
			[]string{`contexts["dev"].context.cluster`}, []string{`"x" was not found (clusters: "c", "d")`}},
		{"a context's user is not there", Options{Kubeconfig: []byte(clusters + users + "contexts: [{name: dev, context: {cluster: c, user: x}}]"), Context: "dev"},
			[]string{`contexts["dev"].context.user`}, []string{`"x" was not found (users: "ci")`}},
		{"a context names neither", Options{Kubeconfig: []byte(clusters + users + "contexts: [{name: dev, context: {}}]"), Context: "dev"},
			[]string{`contexts["dev"].context.user`, `contexts["dev"].context.cluster`}, []string{"user: none given", "cluster: none given"}},
		{"the cluster has no server", Options{Kubeconfig: []byte("clusters: [{name: c, cluster: {tls-server-name: x}}]\n" + users + "contexts: [{name: dev, context: {cluster: c, user: ci}}]"), Context: "dev"},
			[]string{`clusters["c"].cluster.server`}, []string{"server: none given"}},
		{"a bad proxy-url, shown without its password", Options{Kubeconfig: testKubeconfig("", "proxy-url: 'ftp://u:"+secret+"@p'")},
			[]string{`clusters["c"].cluster.proxy-url`}, []string{"not an http, https or socks5 URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.opts)
			var ie *InvalidError
			if !errors.As(err, &ie) || errors.Is(err, ErrUntrusted) {
				t.Fatalf("got %v, want InvalidErrors", err)
			}
			if got := fields(err); !slices.Equal(got, tt.fields) {
				t.Errorf("fields %q, want %q", got, tt.fields)
			}
			for _, d := range tt.details {
				if !strings.Contains(err.Error(), d) {
					t.Errorf("%v\ndoes not say %q", err, d)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}

func TestLoadRefusesUndecodableKubeconfigs(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"bad YAML", Options{Kubeconfig: []byte("clusters: [")}, "kubeconfig: yaml:"},
		{"a list, not an object", Options{Kubeconfig: []byte("- a")}, "kubeconfig:"},
		{"a map whose users are not a list", Options{KubeconfigMap: map[string]any{"users": "x"}}, "kubeconfig:"},
		{"a map that cannot be marshalled", Options{KubeconfigMap: map[string]any{"users": make(chan int)}}, "kubeconfig: map:"},
		{"a duplicate user, without its token", Options{Kubeconfig: []byte("users: [{name: a, user: {token: " + secret + "}}, {name: a, user: {token: " + secret + "}}]")},
			`kubeconfig: users: duplicate name "a"`},
		{"a duplicate extension, without its content", Options{Kubeconfig: []byte("extensions: [{name: e, extension: " + secret + "}, {name: e, extension: " + secret + "}]")},
			`kubeconfig: extensions: duplicate name "e"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, untrusted := range []bool{false, true} {
				tt.opts.Untrusted = untrusted
				_, err := Load(tt.opts)
				if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), secret) {
					t.Errorf("untrusted %v: got %v, want an error starting %q and no token", untrusted, err, tt.want)
				}
			}
		})
	}
}
