package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/kballard/go-shellquote"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RenderOptions says how a template is rendered.
type RenderOptions struct {
	ValuesOptions
	// LookupEnv answers "{{ $NAME }}" placeholders. Default: nil, so every
	// "$NAME" is missing; pass os.LookupEnv to read the process environment.
	LookupEnv func(name string) (string, bool)
}

// Config is a rendered job configuration: the Job manifest and the base
// fields, typed. Prepare turns it into the Job of one run.
type Config struct {
	// Name is the base of the Job's generateName; "" means the run's name.
	Name string
	// Namespace is where the Job is created. Default "default".
	Namespace string
	// Command is the run's default command when the manifest gives no
	// args; nil means PrepareOptions.DefaultCommand.
	Command []string
	// Env, Labels and Annotations are added to the Job by Prepare.
	Env         map[string]string
	Labels      map[string]string
	Annotations map[string]string
	// ClusterConfig, when set, names the cluster to create the Job in.
	ClusterConfig *ClusterConfig
	// JobWatchTimeoutSeconds is the total deadline for following the Job,
	// from creation to its end; 0 means none.
	JobWatchTimeoutSeconds int
	// PodWatchTimeoutSeconds bounds the wait for the pod to leave Pending.
	// Default 60.
	PodWatchTimeoutSeconds int
	// StreamOutput says whether to follow the run container's log.
	// Default true.
	StreamOutput bool
	// JobManifest is the rendered Job, as a JSON tree without nulls (a null
	// means unset). It shares the parts that held no placeholder with the
	// Template, and the values it took with the variables' defaults and
	// with each other: read it, do not change it in place (Prepare never
	// does).
	JobManifest map[string]any
	// JobFile is copied from the template; see Template.JobFile.
	JobFile bool
}

// ClusterConfig is a kubeconfig given inline, and the context to use.
type ClusterConfig struct {
	// Config is a kubeconfig as an object.
	Config map[string]any `json:"config"`
	// Context is the context to use; "" means the kubeconfig's current one.
	Context string `json:"context_name,omitempty"`
}

// Render checks values (see Values), substitutes every placeholder in the
// job configuration in one pass and decodes the base fields. The Template is
// not changed, and may be rendered concurrently.
//
// A string that is exactly one placeholder becomes the value itself, typed;
// if the value is missing, its map key or list item is removed, and so is a
// map key whose value is null (in a manifest, null means unset). Inside a
// longer string a value is written as text (nil as "", maps and lists as
// JSON) and a missing one as "". Map keys are never templated, and text
// inserted from a value is never scanned for placeholders again.
func (t *Template) Render(values map[string]any, opts RenderOptions) (*Config, error) {
	vals, err := t.values(values, opts.ValuesOptions)
	if err != nil {
		return nil, err
	}
	r := renderer{values: vals, env: opts.LookupEnv, root: configPath}
	// Each base field is rendered and decoded in turn: the rendered job
	// configuration itself is never needed as a map.
	cfg := &Config{Namespace: "default", PodWatchTimeoutSeconds: 60, StreamOutput: true, JobFile: t.JobFile}
	var errs field.ErrorList
	for k, v := range t.JobConfiguration {
		r.at = append(r.at[:0], step{key: k})
		if v, ok, _ := r.render(v); ok && v != nil { // null keeps the default
			errs = cfg.decodeField(k, v, errs)
		}
	}
	if err := asError("render", r.errs); err != nil {
		return nil, err
	}
	if cfg.JobManifest == nil {
		errs = append(errs, field.Required(configPaths["job_manifest"], "the Job to create"))
	}
	if err := asError("render", sortErrors(errs)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// configKeys are the keys of a job configuration, and configPaths their
// paths, built once.
var (
	configKeys = []string{"name", "namespace", "command", "env", "labels", "annotations",
		"cluster_config", "job_watch_timeout_seconds", "pod_watch_timeout_seconds", "stream_output", "job_manifest"}
	configPath  = field.NewPath("job_configuration")
	configPaths = func() map[string]*field.Path {
		m := make(map[string]*field.Path, len(configKeys))
		for _, k := range configKeys {
			m[k] = configPath.Child(k)
		}
		return m
	}()
)

// decodeField sets the base field k of c from its rendered value v, which
// is not nil.
func (c *Config) decodeField(k string, v any, errs field.ErrorList) field.ErrorList {
	p, known := configPaths[k]
	if !known {
		p = configPath.Child(k)
	}
	var err *field.Error
	switch k {
	case "job_manifest":
		m, ok := v.(map[string]any)
		if !ok {
			err = field.TypeInvalid(p, kindOf(v), "must be an object")
		}
		c.JobManifest = m
	case "name":
		c.Name, err = textField(p, "", v)
	case "namespace":
		c.Namespace, err = textField(p, "", v)
		if err == nil && c.Namespace == "" {
			c.Namespace = "default"
		}
	case "command":
		c.Command, err = commandField(p, v)
	case "env":
		c.Env, errs = stringMapField(p, v, errs, true)
	case "labels":
		c.Labels, errs = stringMapField(p, v, errs, false)
	case "annotations":
		c.Annotations, errs = stringMapField(p, v, errs, false)
	case "cluster_config":
		c.ClusterConfig, err = clusterConfigField(p, v)
	case "job_watch_timeout_seconds":
		c.JobWatchTimeoutSeconds, err = intField(p, v)
	case "pod_watch_timeout_seconds":
		c.PodWatchTimeoutSeconds, err = intField(p, v)
	case "stream_output":
		b, ok := v.(bool)
		if !ok {
			err = field.TypeInvalid(p, v, "must be a boolean")
		}
		c.StreamOutput = b
	default:
		err = field.NotSupported(p, k, configKeys)
	}
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}

// textField reads v as text. An error names p, with key as its last
// step unless key is empty: the path is built only for an error.
func textField(p *field.Path, key string, v any) (string, *field.Error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case json.Number, bool:
		s, _ := asText(t)
		return s, nil
	}
	if key != "" {
		p = p.Child(key)
	}
	return "", field.TypeInvalid(p, v, "must be a string, not "+kindOf(v))
}

func intField(p *field.Path, v any) (int, *field.Error) {
	var n int64
	var err error
	switch t := v.(type) {
	case json.Number:
		n, err = t.Int64()
	case string:
		n, err = strconv.ParseInt(t, 10, 64)
	default:
		err = fmt.Errorf("not a number")
	}
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0, field.Invalid(p, v, "must be a whole number of seconds from 0 to 2147483647")
	}
	return int(n), nil
}

// commandField reads a command: a string is split as a POSIX shell would
// (quotes and backslashes, no expansion); a list is kept.
func commandField(p *field.Path, v any) ([]string, *field.Error) {
	switch t := v.(type) {
	case string:
		words, err := splitCommand(t)
		if err != nil {
			return nil, field.Invalid(p, t, "cannot split as a shell command: "+err.Error())
		}
		return words, nil
	case []any:
		out := make([]string, len(t))
		for i, w := range t {
			s, err := textField(p.Index(i), "", w)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, field.TypeInvalid(p, v, "must be a string or a list of strings, not "+kindOf(v))
}

// stringMapField reads an object of strings. Numbers and booleans are
// written as text; with dropNull, a null value is left out.
func stringMapField(p *field.Path, v any, errs field.ErrorList, dropNull bool) (map[string]string, field.ErrorList) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, append(errs, field.TypeInvalid(p, kindOf(v), "must be an object of strings"))
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v == nil && dropNull {
			continue
		}
		s, err := textField(p, k, v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[k] = s
	}
	return out, errs
}

func clusterConfigField(p *field.Path, v any) (*ClusterConfig, *field.Error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, field.TypeInvalid(p, kindOf(v), "must be an object with config and context_name")
	}
	cc := &ClusterConfig{}
	for k, x := range m {
		switch k {
		case "config":
			c, ok := x.(map[string]any)
			if !ok {
				return nil, field.TypeInvalid(p.Child(k), kindOf(x), "must be a kubeconfig object")
			}
			cc.Config = c
		case "context_name":
			s, err := textField(p, k, x)
			if err != nil {
				return nil, err
			}
			cc.Context = s
		default:
			return nil, field.NotSupported(p.Child(k), k, []string{"config", "context_name"})
		}
	}
	return cc, nil
}

// splitCommand splits s as a POSIX shell would (quotes and backslashes, no
// expansion).
func splitCommand(s string) ([]string, error) { return shellquote.Split(s) }
