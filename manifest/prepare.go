package manifest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	jsonpatch "github.com/evanphx/json-patch/v5"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Labels that Prepare sets on every Job and its pod template (Kueue's on
// the Job only, when the Config names a queue or priority class).
const (
	// LabelRunID holds Run.ID; a Job is found by it.
	LabelRunID = "kubeworker.io/run-id"
	// LabelRunName holds Run.Name, slugified.
	LabelRunName = "kubeworker.io/run-name"
	// LabelManagedBy is set to ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelVersion holds the kubeworker module version, slugified.
	LabelVersion = "kubeworker.io/version"
	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "kubeworker"
	// LabelQueueName holds Config.QueueName: Kueue's queue-name label.
	LabelQueueName = "kueue.x-k8s.io/queue-name"
	// LabelPriorityClass holds Config.PriorityClass: Kueue's
	// WorkloadPriorityClass label.
	LabelPriorityClass = "kueue.x-k8s.io/priority-class"
)

// Defaults used by Prepare when PrepareOptions leaves a field empty.
const (
	// DefaultImage is the image of a run container that names none.
	DefaultImage = "docker.io/library/busybox:stable"
	// DefaultGenerateName is the generateName prefix when no slug can be
	// made of the configured name or the run's name.
	DefaultGenerateName = "kubeworker-job-"
)

// Run is what Prepare needs to know of one run.
type Run struct {
	// ID identifies the run; it must be a valid label value (a UUID is),
	// since the Job is found by it. Required.
	ID string
	// Name is a readable name; it becomes a label and, if the template
	// names none, the base of the Job's generateName.
	Name string
	// Env and Labels are added to the run's Job; they win over the
	// template's and the worker's.
	Env    map[string]string
	Labels map[string]string
}

// PrepareOptions are a worker's settings for preparing Jobs. The zero value
// works.
type PrepareOptions struct {
	// Container names the run's container. Default: the first container.
	Container string
	// Image is used when the run container has none. Default DefaultImage.
	Image string
	// Command is the container's args when neither the manifest nor the
	// Config gives any. Default: none, so the image's own command runs.
	Command []string
	// Env, Labels and Annotations are added to every Job, under those of
	// the template and the run.
	Env         map[string]string
	Labels      map[string]string
	Annotations map[string]string
	// APIURLEnv names an env var holding a URL whose host, if it is
	// localhost or 127.0.0.1, is replaced with APIHost, so that a run can
	// reach an API served on the worker's own machine. Both or neither.
	APIURLEnv string
	APIHost   string
	// Customizations is an RFC 6902 JSON patch applied to the rendered
	// manifest before anything else. Default: none.
	Customizations []byte
	// FailurePolicy, when set, gives every Job a spec.podFailurePolicy:
	// disruptions are retried without counting against backoffLimit, and
	// the chosen exit codes of the run container fail the Job at once.
	// See FailurePolicy. Default: nil, no policy.
	FailurePolicy *FailurePolicy
}

// Prepare returns the Job of one run, built from c in this order: env,
// API-URL rewrite, labels, annotations, image, args, generateName; the
// result is then decoded strictly (see Validate). c is not changed, so one
// Config serves many runs.
//
//  1. env: the run's env over the Config's over the worker's becomes a list
//     of {name, value}, sorted by name. If the container's env is already a
//     list, ours go first (last for a JobFile template) and its entries of
//     the same name are dropped, except valueFrom entries, which win.
//  2. the APIURLEnv rewrite, if set.
//  3. labels: template ∪ Config ∪ worker ∪ run ∪ the kubeworker run labels,
//     keys and values slugified, copied onto the pod template too.
//  4. annotations: template ∪ Config ∪ worker, keys slugified.
//  5. image: PrepareOptions.Image or DefaultImage if the container has none.
//  6. args: absent → Config.Command, else PrepareOptions.Command; a string
//     → split as a POSIX shell would; a list is kept; else an error.
//  7. generateName: a slug of itself, of Config.Name or of Run.Name, then
//     DefaultGenerateName; metadata.name, if set, is kept instead.
//  8. Kueue: Config.QueueName and PriorityClass as LabelQueueName and
//     LabelPriorityClass on the Job, and spec.suspend true with a queue.
//  9. spec.podFailurePolicy from PrepareOptions.FailurePolicy, if set; a
//     template that sets one too is an error.
func (c *Config) Prepare(run Run, opts PrepareOptions) (*batchv1.Job, error) {
	m, errs := c.prepareManifest(run, opts)
	if err := asError("prepare", sortErrors(errs)); err != nil {
		return nil, err
	}
	job, errs := decodeJob(m)
	if err := asError("prepare", sortErrors(errs)); err != nil {
		return nil, err
	}
	return job, nil
}

func (c *Config) prepareManifest(run Run, opts PrepareOptions) (map[string]any, field.ErrorList) {
	var errs field.ErrorList
	if run.ID == "" {
		errs = append(errs, field.Required(field.NewPath("run", "id"), "every run needs an ID"))
	} else if !labelPartOK(run.ID) {
		msgs := validation.IsValidLabelValue(run.ID)
		errs = append(errs, field.Invalid(field.NewPath("run", "id"), run.ID, "must be a valid label value: "+strings.Join(msgs, "; ")))
	}
	if (opts.APIURLEnv == "") != (opts.APIHost == "") {
		errs = append(errs, field.Invalid(field.NewPath("options", "apiURLEnv"), opts.APIURLEnv, "APIURLEnv and APIHost go together"))
	}
	m, err := c.manifestCopy(opts.Customizations)
	if err != nil {
		return nil, append(errs, err)
	}
	if shape := checkShape(m, c.Namespace); len(shape) > 0 {
		return nil, append(errs, shape...)
	}
	// Copy each map on the way to what Prepare changes; the rest of the
	// tree stays shared with c, which is never changed.
	meta := m["metadata"].(map[string]any)
	spec := copyChild(m, "spec")
	pod := copyChild(spec, "template")
	podSpec := copyChild(pod, "spec")
	containers := append([]any(nil), podSpec["containers"].([]any)...)
	podSpec["containers"] = containers
	cpath, container, err := runContainer(containers, opts.Container)
	if err != nil {
		return nil, append(errs, err)
	}

	env, envErrs := c.envOf(container, opts, run, cpath.Child("env"))
	errs = append(errs, envErrs...)
	var err2 *field.Error
	if env.values, err2 = rewriteAPIURL(env.values, opts); err2 != nil {
		errs = append(errs, err2)
	}
	errs = append(errs, setEnv(container, env, c.JobFile, cpath.Child("env"))...)

	labels := make(map[string]any, 4+len(c.Labels)+len(opts.Labels)+len(run.Labels))
	errs = addText(meta["labels"], labelsPath, errs, func(k, s string) { labels[k] = s })
	mergeInto(labels, c.Labels, opts.Labels, run.Labels)
	labels[LabelRunID], labels[LabelRunName], labels[LabelManagedBy], labels[LabelVersion] = run.ID, run.Name, ManagedBy, Version()
	labels, errs = slugLabels(labels, labelsPath, errs)
	labels[LabelRunID] = run.ID // checked above, and found by as it is
	meta["labels"] = labels
	if pm, ok := pod["metadata"].(map[string]any); ok {
		pod["metadata"] = shallowCopy(pm)
	}
	podMeta, err := objectAt(pod, "metadata", templatePath, true)
	if err != nil {
		errs = append(errs, err)
	} else {
		podMeta["labels"], errs = podLabels(podMeta["labels"], labels, errs)
	}
	// Kueue's labels go on the Job only (its pods are the Job's, not
	// Kueue's to queue), kept as they are: checked at Render.
	if c.QueueName != "" || c.PriorityClass != "" {
		labels = maps.Clone(labels) // the pod's may be the same map
		if c.QueueName != "" {
			labels[LabelQueueName] = c.QueueName
			spec["suspend"] = true // no pod before Kueue admits it
		}
		if c.PriorityClass != "" {
			labels[LabelPriorityClass] = c.PriorityClass
		}
		meta["labels"] = labels
	}

	ann := make(map[string]any, len(c.Annotations)+len(opts.Annotations))
	errs = addText(meta["annotations"], annotationsPath, errs, func(k, s string) { ann[k] = s })
	mergeInto(ann, c.Annotations, opts.Annotations)
	if ann, errs = slugAnnotations(ann, annotationsPath, errs); len(ann) > 0 {
		meta["annotations"] = ann
	} else {
		delete(meta, "annotations")
	}
	if podMeta != nil {
		errs = podAnnotations(podMeta, errs, c.Annotations, opts.Annotations)
	}

	if img, _ := container["image"].(string); img == "" {
		container["image"] = firstNonEmpty(opts.Image, DefaultImage)
	}
	if err := c.setArgs(container, opts, cpath.Child("args")); err != nil {
		errs = append(errs, err)
	}
	c.setGenerateName(meta, run)
	errs = append(errs, setFailurePolicy(spec, container, cpath, opts.FailurePolicy)...)
	return m, errs
}

// manifestCopy returns the manifest to prepare: with the patch applied, a
// whole new tree; else a copy of its top map and of metadata, which
// checkShape fills in, sharing the rest.
func (c *Config) manifestCopy(patch []byte) (map[string]any, *field.Error) {
	if len(patch) > 0 {
		return patchJSON(c.JobManifest, patch)
	}
	m := shallowCopy(c.JobManifest)
	if meta, ok := m["metadata"].(map[string]any); ok {
		m["metadata"] = shallowCopy(meta)
	}
	return m, nil
}

// patchJSON applies an RFC 6902 patch to m's JSON and returns the result as
// a new tree, without nulls.
func patchJSON(m map[string]any, patch []byte) (map[string]any, *field.Error) {
	p := field.NewPath("options", "customizations")
	ops, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, field.Invalid(p, string(patch), "not an RFC 6902 JSON patch: "+err.Error())
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, field.InternalError(p, err)
	}
	if data, err = ops.Apply(data); err != nil {
		return nil, field.Invalid(p, string(patch), "does not apply to the manifest: "+err.Error())
	}
	tree, err := decodeJSON(data)
	if err != nil {
		return nil, field.InternalError(p, err)
	}
	out, ok := tree.(map[string]any)
	if !ok {
		return nil, field.Invalid(p, string(patch), "turns the manifest into "+kindOf(tree))
	}
	pruneNulls(out)
	return out, nil
}

// copyChild replaces m[key], an object checkShape has vouched for, with a
// shallow copy of it and returns the copy.
func copyChild(m map[string]any, key string) map[string]any {
	c := shallowCopy(m[key].(map[string]any))
	m[key] = c
	return c
}

// pruneNulls removes null map entries: in a manifest, null means unset.
func pruneNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if c == nil {
				delete(t, k)
			} else {
				pruneNulls(c)
			}
		}
	case []any:
		for _, c := range t {
			pruneNulls(c)
		}
	}
}

// runContainer finds the run's container by name, or the first, and puts
// a copy of it in its place in containers.
func runContainer(containers []any, name string) (*field.Path, map[string]any, *field.Error) {
	list := containersPath
	if name == "" {
		cm := shallowCopy(containers[0].(map[string]any))
		containers[0] = cm
		return list.Index(0), cm, nil
	}
	var names []string
	for i, c := range containers {
		cm := c.(map[string]any)
		n, _ := cm["name"].(string)
		if n == name {
			cm = shallowCopy(cm)
			containers[i] = cm
			return list.Index(i), cm, nil
		}
		names = append(names, n)
	}
	return nil, nil, field.Invalid(list, name, fmt.Sprintf("no run container of that name; the pod has %s", strings.Join(names, ", ")))
}

// envLayers is the env Prepare adds to the run container, before the
// template's own list: values by name, valueFrom sources, and names unset.
type envLayers struct {
	values map[string]string
	from   map[string]*corev1.EnvVarSource
	unset  map[string]bool
}

// envOf merges the worker's env, the container's env if it is a rendered
// map (a "{{ env }}"), the Config's and the run's, later ones winning; a
// null in the map or a name in Config.EnvUnset removes what the worker
// sets (step 1).
func (c *Config) envOf(container map[string]any, opts PrepareOptions, run Run, path *field.Path) (envLayers, field.ErrorList) {
	var errs field.ErrorList
	e := envLayers{values: mergeStrings(opts.Env), from: map[string]*corev1.EnvVarSource{}, unset: map[string]bool{}}
	if m, ok := container["env"].(map[string]any); ok {
		for _, k := range sortedKeys(m) {
			if m[k] == nil {
				delete(e.values, k)
				e.unset[k] = true
				continue
			}
			s, err := textField(path, k, m[k])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			e.values[k] = s
		}
		delete(container, "env")
	}
	for _, k := range c.EnvUnset {
		delete(e.values, k)
		e.unset[k] = true
	}
	for k, v := range c.EnvValueFrom {
		delete(e.values, k)
		delete(e.unset, k)
		e.from[k] = v
	}
	for k, v := range c.Env {
		delete(e.unset, k)
		e.values[k] = v
	}
	for k, v := range run.Env {
		delete(e.from, k)
		delete(e.unset, k)
		e.values[k] = v
	}
	return e, errs
}

// has reports whether the layers set name.
func (e envLayers) has(name string) bool {
	_, v := e.values[name]
	_, f := e.from[name]
	return v || f
}

// setEnv merges env into the container's env list (step 1), which keeps
// its order and comes after ours (before, for a JobFile template); its
// entries that we also set are dropped, except valueFrom entries, which
// win, and so are names unset. Each name we set must be an env name as
// Kubernetes reads it (printable ASCII, no "="). The list is then ordered
// so that a value's $(NAME) references come after NAME (see orderEnv).
func setEnv(container map[string]any, env envLayers, appendOurs bool, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	var tmpl []any
	switch t := container["env"].(type) {
	case nil:
	case []any:
		tmpl = t
	default:
		return field.ErrorList{field.TypeInvalid(path, kindOf(t), "must be a list of {name, value} or an object")}
	}
	fromRef := map[string]bool{}
	var kept []any
	for i, e := range tmpl {
		em, ok := e.(map[string]any)
		name, _ := em["name"].(string)
		if !ok || name == "" {
			errs = append(errs, field.Invalid(path.Index(i), e, "an env entry needs a name"))
			continue
		}
		if env.unset[name] {
			continue
		}
		if _, ok := em["valueFrom"]; ok {
			fromRef[name] = true
			kept = append(kept, e)
		} else if !env.has(name) {
			kept = append(kept, e)
		}
	}
	names := make([]string, 0, len(env.values)+len(env.from))
	for k := range env.values {
		names = append(names, k)
	}
	for k := range env.from {
		names = append(names, k)
	}
	slices.Sort(names)
	ours := make([]any, 0, len(names))
	for _, k := range names {
		switch {
		case len(validation.IsRelaxedEnvVarName(k)) > 0:
			errs = append(errs, field.Invalid(path.Key(k), k, "not an env name: "+strings.Join(validation.IsRelaxedEnvVarName(k), "; ")))
		case fromRef[k]:
		case env.from[k] != nil:
			src, err := toTree(env.from[k])
			if err != nil {
				errs = append(errs, field.InternalError(path, err))
				continue
			}
			ours = append(ours, map[string]any{"name": k, "valueFrom": src})
		default:
			ours = append(ours, map[string]any{"name": k, "value": env.values[k]})
		}
	}
	all := append(ours, kept...)
	if appendOurs {
		all = append(kept, ours...)
	}
	if len(all) == 0 {
		delete(container, "env")
	} else {
		container["env"] = orderEnv(all)
	}
	return errs
}

// toTree turns a Go value into this package's JSON tree.
func toTree(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(data)
}

// rewriteAPIURL replaces a loopback host in opts.APIURLEnv (step 2).
func rewriteAPIURL(env map[string]string, opts PrepareOptions) (map[string]string, *field.Error) {
	raw, ok := env[opts.APIURLEnv]
	if opts.APIURLEnv == "" || !ok {
		return env, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return env, field.Invalid(field.NewPath("env", opts.APIURLEnv), raw, "not an absolute URL")
	}
	if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" {
		return env, nil
	}
	if port := u.Port(); port != "" {
		u.Host = net.JoinHostPort(opts.APIHost, port)
	} else {
		u.Host = opts.APIHost
	}
	return mergeStrings(env, map[string]string{opts.APIURLEnv: u.String()}), nil
}

// setArgs sets the container's args (step 6).
func (c *Config) setArgs(container map[string]any, opts PrepareOptions, path *field.Path) *field.Error {
	args, present := container["args"]
	if l, ok := args.([]any); ok && len(l) == 0 && c.JobFile {
		present = false
	}
	if s, ok := args.(string); ok {
		if words, err := splitCommand(s); err == nil && len(words) == 0 {
			present = false // "" means not set, as Prefect reads it
		}
	}
	if !present {
		cmd := c.Command
		if cmd == nil {
			cmd = opts.Command
		}
		if len(cmd) == 0 {
			delete(container, "args")
			return nil
		}
		container["args"] = toAnyList(cmd)
		return nil
	}
	switch t := args.(type) {
	case string:
		words, err := splitCommand(t)
		if err != nil {
			return field.Invalid(path, t, "cannot split as a shell command: "+err.Error())
		}
		container["args"] = toAnyList(words)
	case []any:
	default:
		return field.TypeInvalid(path, kindOf(t), "must be a string or a list of strings")
	}
	return nil
}

// setGenerateName sets metadata.generateName from a slug (step 7).
func (c *Config) setGenerateName(meta map[string]any, run Run) {
	if name, _ := meta["name"].(string); name != "" {
		delete(meta, "generateName")
		return
	}
	given, _ := meta["generateName"].(string)
	if _, err := findPlaceholders(given); err != nil || strings.Contains(given, "{{") {
		given = ""
	}
	for _, base := range []string{given, c.Name, run.Name} {
		if base == "" {
			continue
		}
		if slug, err := SlugifyName(base); err == nil {
			meta["generateName"] = slug + "-"
			return
		}
	}
	meta["generateName"] = DefaultGenerateName
}

// slugLabels slugifies label keys and values (step 3), whose values are
// strings. Labels that are all valid already, the common case, are
// returned as they are.
func slugLabels(in map[string]any, path *field.Path, errs field.ErrorList) (map[string]any, field.ErrorList) {
	return slugText(in, path, errs, SlugifyLabelValue)
}

// slugAnnotations slugifies annotation keys (step 4), as slugLabels does.
func slugAnnotations(in map[string]any, path *field.Path, errs field.ErrorList) (map[string]any, field.ErrorList) {
	return slugText(in, path, errs, nil)
}

// slugText slugifies the keys of in, and its values with value unless
// nil. Values are replaced in place; only when a key changes, or anything
// fails, is a new map built, in key order, so that which of two keys with
// one slug wins, and the order of the errors, never depend on map order.
func slugText(in map[string]any, path *field.Path, errs field.ErrorList, value func(string) (string, error)) (map[string]any, field.ErrorList) {
	valid := true
	for k, v := range in {
		if key, err := SlugifyLabelKey(k); err != nil || key != k {
			valid = false
			break
		}
		if value != nil {
			val, err := value(v.(string))
			if err != nil {
				valid = false
				break
			}
			in[k] = val
		}
	}
	if valid {
		return in, errs
	}
	out := make(map[string]any, len(in))
	for _, k := range sortedKeys(in) {
		key, err := SlugifyLabelKey(k)
		if err != nil {
			errs = append(errs, field.Invalid(path.Key(k), k, err.Error()))
			continue
		}
		v := in[k].(string)
		if value != nil {
			if v, err = value(v); err != nil {
				errs = append(errs, field.Invalid(path.Key(k), in[k], err.Error()))
				continue
			}
		}
		out[key] = v
	}
	return out, errs
}

// addText passes each entry of the manifest's object of text v (nil:
// none) to put, as a string; what is not text is reported at path.
func addText(v any, path *field.Path, errs field.ErrorList, put func(k, s string)) field.ErrorList {
	if v == nil {
		return errs
	}
	m, ok := v.(map[string]any)
	if !ok {
		return append(errs, field.TypeInvalid(path, kindOf(v), "must be an object of strings"))
	}
	for k, x := range m {
		s, err := textField(path, k, x)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		put(k, s)
	}
	return errs
}

// podLabels returns the pod template's labels v with the Job's labels
// over them: labels itself when the template has none, since the tree is
// only encoded.
func podLabels(v any, labels map[string]any, errs field.ErrorList) (map[string]any, field.ErrorList) {
	own, isMap := v.(map[string]any)
	if v == nil || isMap && len(own) == 0 {
		return labels, errs
	}
	out := make(map[string]any, len(own)+len(labels))
	errs = addText(v, podLabelsPath, errs, func(k, s string) { out[k] = s })
	maps.Copy(out, labels)
	return out, errs
}

// podAnnotations puts the Config's and the worker's annotations on the pod
// template too, over its own (step 4), as Prefect does: monitoring
// annotations such as prometheus.io/scrape work only on pods. The
// template's own Job annotations stay on the Job.
func podAnnotations(podMeta map[string]any, errs field.ErrorList, ms ...map[string]string) field.ErrorList {
	ours := make(map[string]any)
	mergeInto(ours, ms...)
	if len(ours) == 0 {
		return errs
	}
	ours, _ = slugAnnotations(ours, annotationsPath, nil) // reported on the Job
	out := make(map[string]any, len(ours))
	errs = addText(podMeta["annotations"], templatePath.Child("metadata", "annotations"), errs, func(k, s string) { out[k] = s })
	maps.Copy(out, ours)
	podMeta["annotations"] = out
	return errs
}

// mergeInto copies ms into dst in turn, later ones winning.
func mergeInto(dst map[string]any, ms ...map[string]string) {
	for _, m := range ms {
		for k, v := range m {
			dst[k] = v
		}
	}
}

// mergeStrings merges maps, later ones winning.
func mergeStrings(ms ...map[string]string) map[string]string {
	n := 0
	for _, m := range ms {
		n += len(m)
	}
	out := make(map[string]string, n)
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func toAnyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Version is the kubeworker module version as built into the binary, or
// "devel" when it is the main module or unknown.
func Version() string { return version() }

var version = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/kubeworker/kubeworker" && d.Version != "" {
				return d.Version
			}
		}
	}
	return "devel"
})
