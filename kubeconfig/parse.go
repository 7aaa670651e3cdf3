package kubeconfig

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// fromKubeconfig decodes data and checks it (see Load) before building.
func fromKubeconfig(data []byte, opts Options) (*rest.Config, error) {
	raw, err := decode(data)
	if err != nil {
		return nil, err
	}
	var errs []error
	if opts.Untrusted {
		errs = refuseUnsafe(raw)
	}
	if errs = append(errs, validate(raw, opts.Context)...); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, opts.Context, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: client config: %w", err)
	}
	return cfg, nil
}

// decode is clientcmd.Load, except that its error for a duplicate name
// is cut short: it prints the whole list, secrets and all.
func decode(data []byte) (*clientcmdapi.Config, error) {
	raw, err := clientcmd.Load(data)
	if err == nil {
		return raw, nil
	}
	msg, _, cut := strings.Cut(err.Error(), " in list: ")
	if !cut {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if conv, name, ok := strings.Cut(msg, ": duplicate name "); ok {
		for typ, list := range dupLists {
			if strings.Contains(conv, typ) {
				msg = list + ": duplicate name " + name
			}
		}
	}
	return nil, errors.New("kubeconfig: " + msg) // not %w: the cause holds the secrets
}

// dupLists names the list of each of clientcmd's duplicate-name errors.
var dupLists = map[string]string{
	"[]NamedCluster ":   "clusters",
	"[]NamedAuthInfo ":  "users",
	"[]NamedContext ":   "contexts",
	"[]NamedExtension ": "extensions",
}
