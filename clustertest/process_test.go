package clustertest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFailedStartShowsTheEndOfTheLog(t *testing.T) {
	p := newProcess("failing", "/bin/sh", []string{"-c", "echo first; echo boom: bad flag; exit 3"}, t.TempDir())
	never := func(context.Context) error { return errors.New("not ready") }
	_, err := launch(t.Context(), p, waitTimeout, never)
	if err == nil {
		t.Fatal("a program that exits started")
	}
	for _, want := range []string{"failing", "exited", "boom: bad flag"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPortClashIsRecognized(t *testing.T) {
	p := newProcess("clash", "/bin/sh", []string{"-c", "echo 'listen tcp 127.0.0.1:1: bind: address already in use'; exit 1"}, t.TempDir())
	_, err := launch(t.Context(), p, waitTimeout, func(context.Context) error { return errors.New("not ready") })
	if !errors.Is(err, errPortTaken) {
		t.Errorf("error %v, want errPortTaken", err)
	}
}

func TestKillStopsTheWholeProcessGroup(t *testing.T) {
	dir := t.TempDir()
	childPID := filepath.Join(dir, "child.pid")
	p := newProcess("parent", "/bin/sh", []string{"-c", "sleep 600 & echo $! > " + childPID + "; wait"}, dir)
	ready := func(context.Context) error {
		_, err := os.Stat(childPID)
		return err
	}
	p, err := launch(t.Context(), p, waitTimeout, ready)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for child == 0 {
		data, _ := os.ReadFile(childPID)
		child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.kill(); err != nil {
		t.Fatal(err)
	}
	// The child was killed too; it may linger as a zombie until init
	// reaps it.
	eventually(t, "the child to die", func(context.Context) (bool, error) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		return err != nil || strings.Contains(string(data), ") Z "), nil
	})
}
