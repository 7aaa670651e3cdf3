// Command render renders a kubeworker template for one run and prints the
// Job it would create, without touching any cluster.
//
//	go run ./examples/render -set image=busybox:stable -set 'command=echo hi'
//	go run ./examples/render -template my-template.yaml -values values.yaml
//
// A -set value is read as YAML, so -set backoff_limit=2 gives a number and
// -set 'env={A: "1"}' a map; quote a value to keep it a string.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kubeworker/kubeworker/manifest"
	"sigs.k8s.io/yaml"
)

type setFlags map[string]any

func (s setFlags) String() string { return fmt.Sprint(map[string]any(s)) }

func (s setFlags) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", kv)
	}
	var val any
	if err := yaml.Unmarshal([]byte(v), &val); err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	s[k] = val
	return nil
}

func main() {
	sets := setFlags{}
	tmplPath := flag.String("template", "", "template file (YAML or JSON); default: the built-in default template")
	jobFile := flag.Bool("job-file", false, "the -template file is a complete Job (Prefect 1's job spec file)")
	valuesPath := flag.String("values", "", "YAML or JSON file of values")
	runID := flag.String("run-id", "0b6f1c2e-8d1a-4f7e-9c55-3a2b1d0e9f10", "the run's ID")
	runName := flag.String("name", "example run", "the run's name")
	image := flag.String("image", "", "image for a run container that names none")
	flag.Var(sets, "set", "a value as name=value (repeatable; the value is read as YAML)")
	flag.Parse()
	if err := run(*tmplPath, *jobFile, *valuesPath, sets, manifest.Run{ID: *runID, Name: *runName}, *image); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(tmplPath string, jobFile bool, valuesPath string, sets map[string]any, r manifest.Run, image string) error {
	tmpl := manifest.Default()
	if tmplPath != "" {
		data, err := os.ReadFile(tmplPath)
		if err != nil {
			return err
		}
		if jobFile {
			tmpl, err = manifest.LoadJob(data)
		} else {
			tmpl, err = manifest.Load(data)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tmplPath, err)
		}
	}
	values := map[string]any{}
	if valuesPath != "" {
		data, err := os.ReadFile(valuesPath)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(data, &values); err != nil {
			return fmt.Errorf("%s: %w", valuesPath, err)
		}
	}
	for k, v := range sets {
		values[k] = v
	}
	cfg, err := tmpl.Render(values, manifest.RenderOptions{LookupEnv: os.LookupEnv})
	if err != nil {
		return err
	}
	job, err := cfg.Prepare(r, manifest.PrepareOptions{Image: image})
	if err != nil {
		return err
	}
	out, err := manifest.JobYAML(job)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
