package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kubeworker/kubeworker/manifest"
)

// defaultRunID is the run ID of render and validate.
const defaultRunID = "kubeworker-cli"

// job renders and prepares in's Job.
func (in *input) job() (*batchv1.Job, error) {
	tmpl, err := in.template()
	if err != nil {
		return nil, err
	}
	vals, err := in.values()
	if err != nil {
		return nil, err
	}
	cfg, err := tmpl.Render(vals, in.renderOptions())
	if err != nil {
		return nil, err
	}
	if _, given := vals["namespace"]; in.namespace != "" && !given {
		cfg.InNamespace(in.namespace)
	}
	return cfg.Prepare(manifest.Run{ID: in.runID, Name: in.runName}, in.prepareOptions())
}

func render(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	in := &input{stdin: stdin}
	in.flags(fs, defaultRunID)
	out := fs.String("o", "yaml", "output format: yaml or json")
	fs.StringVar(out, "output", "yaml", "same as -o")
	if err := parse(fs, args); err != nil {
		return helpOr(fs, err, stdout)
	}
	if *out != "yaml" && *out != "json" {
		return &usageError{fmt.Sprintf("render: -o %q: want yaml or json", *out)}
	}
	job, err := in.job()
	if err != nil {
		return err
	}
	var data []byte
	if *out == "json" {
		data, err = json.MarshalIndent(job, "", "  ")
		data = append(data, '\n')
	} else {
		data, err = manifest.JobYAML(job)
	}
	if err != nil {
		return err
	}
	_, err = stdout.Write(data)
	return err
}

func validate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	in := &input{stdin: stdin}
	in.flags(fs, defaultRunID)
	if err := parse(fs, args); err != nil {
		return helpOr(fs, err, stdout)
	}
	if _, err := in.job(); err != nil {
		return err
	}
	name := in.file
	if name == "" {
		name = "the default template"
	}
	fmt.Fprintf(stdout, "%s: ok\n", name)
	return nil
}
