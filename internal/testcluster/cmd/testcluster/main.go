// Command testcluster builds and runs kubeworker's local test cluster.
//
//	go run ./internal/testcluster/cmd/testcluster provision
//	go run ./internal/testcluster/cmd/testcluster up [-kubeconfig FILE]
//
// provision builds the control plane's binaries into the cache if they are
// missing, printing each step; run it before go test, so that no test
// binary spends its timeout building. up starts a cluster, writes a
// kubeconfig, prints how to use it, and runs until SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kubeworker/kubeworker/internal/testcluster"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: testcluster provision | up [-kubeconfig FILE] [-watch-cache]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := testcluster.Options{Progress: stderr}
	switch args[0] {
	case "provision":
		bins, err := testcluster.Provision(ctx, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "binaries ready:\n  %s\n  %s\n  %s\n  %s\n  %s\n  %s\n",
			bins.Etcd, bins.Etcdctl, bins.KubeAPIServer, bins.KubeControllerManager, bins.KubeScheduler, bins.Kwok)
		return nil
	case "up":
		return up(ctx, args[1:], opts, stdout)
	default:
		return fmt.Errorf("unknown command %q: want provision or up", args[0])
	}
}

func up(ctx context.Context, args []string, opts testcluster.Options, stdout io.Writer) error {
	flags := flag.NewFlagSet("up", flag.ContinueOnError)
	kubeconfig := flags.String("kubeconfig", "", "also copy the admin kubeconfig to this file")
	flags.BoolVar(&opts.WatchCache, "watch-cache", false, "turn on the API server's watch cache")
	if err := flags.Parse(args); err != nil {
		return err
	}
	cluster, err := testcluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	path := cluster.Kubeconfig()
	if *kubeconfig != "" {
		data, err := os.ReadFile(path)
		if err == nil {
			err = os.WriteFile(*kubeconfig, data, 0o600)
		}
		if err != nil {
			return fmt.Errorf("write kubeconfig: %w (and stop: %v)", err, cluster.Stop())
		}
		path = *kubeconfig
	}
	fmt.Fprintf(stdout, `The test cluster is up: API server %s, fault proxy %s.
Point kubectl and the examples at it:

  export KUBECONFIG=%s

Component logs are in %s. Press Ctrl-C to stop it.
`, cluster.Config().Host, cluster.Proxy().URL(), path, cluster.Dir())
	<-ctx.Done()
	fmt.Fprintln(stdout, "stopping")
	return cluster.Stop()
}
