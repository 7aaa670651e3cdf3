package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/manifest"
)

// input is what every template command reads: the template, the values and
// the run.
type input struct {
	file, valuesFile string
	jobFile, lenient bool
	sets             setFlags
	runID, runName   string
	container, image string
	namespace        string
	stdin            io.Reader
}

// flags adds the template flags to fs.
func (in *input) flags(fs *flag.FlagSet, defaultRunID string) {
	in.sets = setFlags{}
	fs.StringVar(&in.file, "f", "", "template file, YAML or JSON (- for stdin); default: the built-in template")
	fs.StringVar(&in.file, "filename", "", "same as -f")
	fs.BoolVar(&in.jobFile, "job-file", false, "read -f as a complete Job manifest (Prefect 1's job spec file)")
	fs.StringVar(&in.valuesFile, "values", "", "YAML or JSON file of values")
	fs.Var(in.sets, "set", "a value as NAME=VALUE, read as YAML (repeatable; wins over --values)")
	fs.BoolVar(&in.lenient, "allow-unknown", false, "Prefect's behaviour: unknown values kept, unknown placeholders and missing $NAME removed or empty")
	fs.StringVar(&in.runID, "run-id", defaultRunID, "the run's ID (a label value)")
	fs.StringVar(&in.runName, "run-name", "", "the run's name")
	fs.StringVar(&in.container, "container", "", "the run container's name; default: the first container")
	fs.StringVar(&in.image, "image", "", "image for a run container that names none")
	fs.StringVar(&in.namespace, "n", "", "namespace of the Job, as a Worker's Options.Namespace (a namespace value wins); default: the template's")
	fs.StringVar(&in.namespace, "namespace", "", "same as -n")
}

// parse parses args into fs, refusing stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// helpOr prints fs's flags on -h and returns nil, or returns err.
func helpOr(fs *flag.FlagSet, err error, w io.Writer) error {
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(w)
		fmt.Fprintf(w, "usage: kubeworker %s [flags]\n", fs.Name())
		fs.PrintDefaults()
		return nil
	}
	return err
}

// template loads the template.
func (in *input) template() (*manifest.Template, error) {
	if in.file == "" {
		if in.jobFile {
			return nil, &usageError{"--job-file needs -f"}
		}
		return manifest.Default(), nil
	}
	data, err := in.read(in.file)
	if err != nil {
		return nil, err
	}
	var t *manifest.Template
	if in.jobFile {
		t, err = manifest.LoadJob(data)
	} else {
		t, err = manifest.LoadWithOptions(data, manifest.LoadOptions{AllowUnknownPlaceholders: in.lenient})
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.file, err)
	}
	return t, nil
}

// values reads --values, then --set over it.
func (in *input) values() (map[string]any, error) {
	vals := map[string]any{}
	if in.valuesFile != "" {
		data, err := in.read(in.valuesFile)
		if err != nil {
			return nil, err
		}
		if err := yaml.Unmarshal(data, &vals); err != nil {
			return nil, fmt.Errorf("%s: not a YAML or JSON object of values: %w", in.valuesFile, err)
		}
		if vals == nil {
			vals = map[string]any{}
		}
	}
	for k, v := range in.sets {
		vals[k] = v
	}
	return vals, nil
}

// renderOptions are the template's render settings.
func (in *input) renderOptions() manifest.RenderOptions {
	return manifest.RenderOptions{
		ValuesOptions:            manifest.ValuesOptions{AllowUnknown: in.lenient},
		LookupEnv:                os.LookupEnv,
		AllowUnknownPlaceholders: in.lenient,
		AllowMissingEnv:          in.lenient,
	}
}

func (in *input) prepareOptions() manifest.PrepareOptions {
	return manifest.PrepareOptions{Container: in.container, Image: in.image}
}

// read reads a file, or stdin for "-".
func (in *input) read(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(in.stdin)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", path, pe.Err)
		}
		return nil, err
	}
	return data, nil
}

// setFlags are --set NAME=VALUE values, read as YAML.
type setFlags map[string]any

func (s setFlags) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (s setFlags) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", kv)
	}
	var val any
	if err := yaml.Unmarshal([]byte(v), &val); err != nil {
		return fmt.Errorf("%s: not a YAML value: %w", k, err)
	}
	s[k] = val
	return nil
}
