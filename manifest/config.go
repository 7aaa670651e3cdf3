package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/kballard/go-shellquote"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
)

// RenderOptions says how a template is rendered. The zero value is
// strict: nothing in the template or the values is dropped without an
// error.
type RenderOptions struct {
	ValuesOptions
	// LookupEnv answers "{{ $NAME }}" placeholders. Default: nil, so every
	// "$NAME" is missing; pass os.LookupEnv to read the process environment.
	LookupEnv func(name string) (string, bool)
	// AllowUnknownPlaceholders renders a placeholder that names neither a
	// variable, a value nor a base field as Prefect does: a whole-string
	// one removes its map key or list item, inside text it reads as "".
	// Default: such a placeholder is an error naming it and its path.
	AllowUnknownPlaceholders bool
	// AllowMissingEnv renders "{{ $NAME }}" with no such environment
	// variable as "" (a whole-string one keeps its key), as Prefect does.
	// Default: an error naming $NAME and its path.
	AllowMissingEnv bool
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
	// Env holds the plain values of the env, by name; EnvValueFrom its
	// entries with a Kubernetes valueFrom source (env given as a list of
	// {name, valueFrom}); EnvUnset the names whose value is null, which
	// Prepare removes whoever else sets them (the worker, the template),
	// except the run's own env. A name is in at most one of the three.
	Env          map[string]string
	EnvValueFrom map[string]*corev1.EnvVarSource
	EnvUnset     []string
	// Labels and Annotations are added to the Job by Prepare; annotations
	// go on its pod template too.
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
	// QueueName is the Kueue LocalQueue the Job waits in, "" for none:
	// Prepare sets LabelQueueName and creates the Job suspended, so no
	// pod starts before Kueue admits it.
	QueueName string
	// PriorityClass is the Kueue WorkloadPriorityClass of the Job, "" for
	// none: Prepare sets LabelPriorityClass.
	PriorityClass string
	// QueueTimeoutSeconds bounds the wait for Kueue to admit the Job,
	// counted while it waits; 0 means none.
	QueueTimeoutSeconds int
	// JobManifest is the rendered Job, as a JSON tree without nulls (a null
	// means unset). It shares the parts that held no placeholder with the
	// Template, and the values it took with the variables' defaults and
	// with each other: read it, do not change it in place (Prepare never
	// does).
	JobManifest map[string]any
	// JobFile is copied from the template; see Template.JobFile.
	JobFile bool
}

// InNamespace moves c to namespace ns: its Namespace and the manifest's
// metadata.namespace. The parts of the manifest it shares are copied, not
// changed.
func (c *Config) InNamespace(ns string) {
	c.Namespace = ns
	m := shallowCopy(c.JobManifest)
	switch meta := m["metadata"].(type) {
	case map[string]any:
		meta = shallowCopy(meta)
		meta["namespace"] = ns
		m["metadata"] = meta
	case nil:
		m["metadata"] = map[string]any{"namespace": ns}
	}
	c.JobManifest = m
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
	r := renderer{values: vals, env: opts.LookupEnv, root: configPath,
		allowUnknown: opts.AllowUnknownPlaceholders, allowMissingEnv: opts.AllowMissingEnv}
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
	if err := asError("render", sortErrors(r.errs)); err != nil {
		return nil, err
	}
	errs = cfg.mergeLiteralEnv(t.JobConfiguration["env"], vals, errs)
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
		"cluster_config", "job_watch_timeout_seconds", "pod_watch_timeout_seconds", "stream_output",
		"queue_name", "priority_class", "queue_timeout_seconds", "job_manifest"}
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
		errs = c.decodeEnv(p, v, errs)
	case "labels":
		c.Labels, errs = stringMapField(p, v, errs)
	case "annotations":
		c.Annotations, errs = stringMapField(p, v, errs)
	case "cluster_config":
		c.ClusterConfig, err = clusterConfigField(p, v)
	case "job_watch_timeout_seconds":
		c.JobWatchTimeoutSeconds, err = intField(p, v)
	case "pod_watch_timeout_seconds":
		c.PodWatchTimeoutSeconds, err = intField(p, v)
	case "queue_name":
		c.QueueName, err = kueueNameField(p, v)
	case "priority_class":
		c.PriorityClass, err = kueueNameField(p, v)
	case "queue_timeout_seconds":
		c.QueueTimeoutSeconds, err = intField(p, v)
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

// kueueNameField reads the name of a Kueue object, which a label holds
// as it is: it must be a DNS-1123 subdomain and a label value, never
// slugified into another queue's name.
func kueueNameField(p *field.Path, v any) (string, *field.Error) {
	s, err := textField(p, "", v)
	if err != nil || s == "" {
		return s, err
	}
	if !dnsSubdomainOK(s) || !labelPartOK(s) {
		return "", field.Invalid(p, s, "must be the name of a Kueue object: a DNS-1123 subdomain of at most 63 characters")
	}
	return s, nil
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
		if len(words) == 0 {
			return nil, nil // "" means not set, as null does
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

// decodeEnv reads an env: an object of names to text or null (unset), or
// a Kubernetes list of {name, value} and {name, valueFrom}. Each entry is
// set over what c.Env already holds.
func (c *Config) decodeEnv(p *field.Path, v any, errs field.ErrorList) field.ErrorList {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			if t[k] == nil {
				c.setEnv(k, corev1.EnvVar{}, true)
				continue
			}
			s, err := textField(p, k, t[k])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c.setEnv(k, corev1.EnvVar{Value: s}, false)
		}
	case []any:
		for i, e := range t {
			ev, err := envEntry(p.Index(i), e)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c.setEnv(ev.Name, ev, false)
		}
	default:
		errs = append(errs, field.TypeInvalid(p, kindOf(v), "must be an object of names to strings, or a list of {name, value} or {name, valueFrom}"))
	}
	return errs
}

// envEntry decodes one entry of an env list strictly.
func envEntry(p *field.Path, e any) (corev1.EnvVar, *field.Error) {
	var ev corev1.EnvVar
	m, ok := e.(map[string]any)
	if !ok {
		return ev, field.TypeInvalid(p, kindOf(e), "must be an object with name and value or valueFrom")
	}
	data, err := json.Marshal(m)
	if err != nil {
		return ev, field.Invalid(p, field.OmitValueType{}, err.Error())
	}
	strict, err := kjson.UnmarshalStrict(data, &ev)
	if err == nil && len(strict) > 0 {
		err = strict[0]
	}
	if err != nil {
		return ev, field.Invalid(p, field.OmitValueType{}, "not a Kubernetes env entry: "+err.Error())
	}
	if ev.Name == "" {
		return ev, field.Required(p.Child("name"), "an env entry needs a name")
	}
	return ev, nil
}

// setEnv sets name in c's env: unset, or to e's value or valueFrom.
func (c *Config) setEnv(name string, e corev1.EnvVar, unset bool) {
	delete(c.Env, name)
	delete(c.EnvValueFrom, name)
	c.EnvUnset = slices.DeleteFunc(c.EnvUnset, func(n string) bool { return n == name })
	switch {
	case unset:
		c.EnvUnset = append(c.EnvUnset, name)
	case e.ValueFrom != nil:
		if c.EnvValueFrom == nil {
			c.EnvValueFrom = map[string]*corev1.EnvVarSource{}
		}
		c.EnvValueFrom[name] = e.ValueFrom
	default:
		if c.Env == nil {
			c.Env = map[string]string{}
		}
		c.Env[name] = e.Value
	}
}

// mergeLiteralEnv merges the env variable's value (its default, then the
// caller's) into an env that the job configuration writes out rather than
// as a placeholder, as Prefect does: a pool's fixed TZ=UTC and a caller's
// LOG_LEVEL=debug both reach the Job, the caller winning.
func (c *Config) mergeLiteralEnv(literal any, vals valueSet, errs field.ErrorList) field.ErrorList {
	switch literal.(type) {
	case map[string]any, []any:
	default:
		return errs // a placeholder, or none
	}
	v, ok := vals.get("env")
	if !ok || v == nil {
		return errs
	}
	return c.decodeEnv(valuesPath.Child("env"), v, errs)
}

// stringMapField reads an object of strings. Numbers and booleans are
// written as text.
func stringMapField(p *field.Path, v any, errs field.ErrorList) (map[string]string, field.ErrorList) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, append(errs, field.TypeInvalid(p, kindOf(v), "must be an object of strings"))
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
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
