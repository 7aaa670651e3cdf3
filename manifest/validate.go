package manifest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kjson "sigs.k8s.io/json"
)

// manifestPath is where a Job manifest sits in a template; every path in a
// validation error starts with it.
var manifestPath = field.NewPath("job_configuration", "job_manifest")

// Validate checks the Job that c gives with opts, without a run: every
// check of Prepare (the paths a Job needs, apiVersion batch/v1, kind Job,
// restartPolicy Never, a run container, env, labels, annotations, args,
// customizations, then a strict decode, so an unknown or mistyped field is
// an error naming its path), with a stand-in run ID. Every problem comes
// back at once, sorted by path. c is not changed.
func (c *Config) Validate(opts PrepareOptions) error {
	m, errs := c.prepareManifest(Run{ID: "validate"}, opts)
	if len(errs) == 0 {
		_, errs = decodeJob(m)
	}
	return asError("validate", sortErrors(errs))
}

// checkShape fills in metadata and compares m with the base Job path by
// path, reporting missing attributes and incompatible values.
// Paths Prepare and its checks name often; a field.Path never changes.
var (
	metadataPath    = manifestPath.Child("metadata")
	labelsPath      = metadataPath.Child("labels")
	annotationsPath = metadataPath.Child("annotations")
	templatePath    = manifestPath.Child("spec", "template")
	podPath         = templatePath.Child("spec")
	podLabelsPath   = templatePath.Child("metadata", "labels")
	containersPath  = podPath.Child("containers")
)

func checkShape(m map[string]any, namespace string) field.ErrorList {
	var errs field.ErrorList
	meta, err := objectAt(m, "metadata", manifestPath, true)
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, k := range []string{"labels", "annotations"} {
			if _, err := objectAt(meta, k, metadataPath, true); err != nil {
				errs = append(errs, err)
			}
		}
		if ns, _ := meta["namespace"].(string); ns == "" {
			meta["namespace"] = namespace
		}
	}
	errs = append(errs, wantValue(m, manifestPath, "apiVersion", "batch/v1")...)
	errs = append(errs, wantValue(m, manifestPath, "kind", "Job")...)
	spec, err := objectAt(m, "spec", manifestPath, false)
	if err != nil {
		return append(errs, err)
	}
	tmpl, err := objectAt(spec, "template", manifestPath.Child("spec"), false)
	if err != nil {
		return append(errs, err)
	}
	pod, err := objectAt(tmpl, "spec", templatePath, false)
	if err != nil {
		return append(errs, err)
	}
	errs = append(errs, wantValue(pod, podPath, "restartPolicy", "Never")...)
	containers, ok := pod["containers"].([]any)
	switch {
	case pod["containers"] == nil:
		errs = append(errs, field.Required(podPath.Child("containers"), "missing required attribute: a Job needs at least one container"))
	case !ok:
		errs = append(errs, field.TypeInvalid(podPath.Child("containers"), kindOf(pod["containers"]), "must be a list of containers"))
	case len(containers) == 0:
		errs = append(errs, field.Required(podPath.Child("containers"), "a Job needs at least one container"))
	default:
		for i, c := range containers {
			if _, ok := c.(map[string]any); !ok {
				errs = append(errs, field.TypeInvalid(podPath.Child("containers").Index(i), kindOf(c), "must be an object"))
			}
		}
	}
	return errs
}

// objectAt returns m[key] as an object. A missing one is created when
// create is set and reported as missing otherwise.
func objectAt(m map[string]any, key string, parent *field.Path, create bool) (map[string]any, *field.Error) {
	v, ok := m[key]
	if !ok || v == nil {
		if !create {
			return nil, field.Required(parent.Child(key), "missing required attribute")
		}
		o := map[string]any{}
		m[key] = o
		return o, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, field.TypeInvalid(parent.Child(key), kindOf(v), "must be an object")
	}
	return o, nil
}

// wantValue reports m[key] missing or other than want.
func wantValue(m map[string]any, parent *field.Path, key, want string) field.ErrorList {
	v, ok := m[key]
	if !ok || v == nil {
		return field.ErrorList{field.Required(parent.Child(key), "missing required attribute: must be "+want)}
	}
	if v != want {
		return field.ErrorList{field.Invalid(parent.Child(key), v, "incompatible value: must have value "+want)}
	}
	return nil
}

// decodeJob decodes m strictly into a Job and reports every problem: each
// value of the wrong type is reported at its path and set to null in a
// working copy, and decoding goes on, so one bad field never hides another.
func decodeJob(m map[string]any) (*batchv1.Job, field.ErrorList) {
	// The common case: m decodes. A bad quantity never does, so only a
	// manifest that fails needs the checks below.
	if data, err := json.Marshal(m); err == nil {
		job := &batchv1.Job{}
		if strict, err := kjson.UnmarshalStrict(data, job); err == nil && len(strict) == 0 {
			return job, nil
		}
	}
	errs, bad := checkQuantities(m)
	work := m // a copy once anything in it must be nulled
	if len(bad) > 0 {
		work = deepCopy(m).(map[string]any)
		for _, at := range bad {
			setAt(work, at, nil)
		}
	}
	for range maxDecodeErrors {
		data, err := json.Marshal(work)
		if err != nil {
			return nil, append(errs, field.InternalError(manifestPath, err))
		}
		job := &batchv1.Job{}
		strict, err := kjson.UnmarshalStrict(data, job)
		if err == nil {
			for _, se := range strict {
				errs = append(errs, strictError(se))
			}
			if len(errs) > 0 {
				return nil, errs
			}
			return job, nil
		}
		fe, at := typeError(work, data, err)
		errs = append(errs, fe)
		if at == nil {
			return nil, errs
		}
		if sameMap(work, m) {
			work = deepCopy(m).(map[string]any)
		}
		setAt(work, at, nil)
	}
	return nil, errs
}

// strictError reports an unknown or duplicate field at its path.
func strictError(err error) *field.Error {
	var fe kjson.FieldError
	if !errors.As(err, &fe) {
		return field.Invalid(manifestPath, field.OmitValueType{}, err.Error())
	}
	detail := "unknown field: a Job has no such field"
	if strings.Contains(err.Error(), "duplicate field") {
		detail = "duplicate field"
	}
	return field.Invalid(childPath(manifestPath, fe.FieldPath()), field.OmitValueType{}, detail)
}

// maxDecodeErrors bounds how many type errors decodeJob reports.
const maxDecodeErrors = 64

// sameMap reports whether a and b are the same map, not equal ones.
func sameMap(a, b map[string]any) bool {
	return len(a) == len(b) && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// typeError turns a decoding error into one with the field's full path,
// and returns where the value sits, or nil if it cannot be found. Go's
// decoder names the field without list indices, so the first item whose
// value has the reported type is taken.
func typeError(m map[string]any, data []byte, err error) (*field.Error, []step) {
	var te *json.UnmarshalTypeError
	errors.As(json.Unmarshal(data, &batchv1.Job{}), &te)
	if te == nil || te.Field == "" {
		return field.Invalid(manifestPath, nil, err.Error()), nil
	}
	want := "must be " + goKind(te.Type) + " (" + te.Type.String() + ")"
	at := locate(m, strings.Split(te.Field, "."), te.Value, nil)
	if at == nil {
		return field.TypeInvalid(childPath(manifestPath, te.Field), te.Value, want), nil
	}
	return field.TypeInvalid(stepsPath(manifestPath, at), valueAt(m, at), want), at
}

// goKind names what JSON a Go type decodes from.
func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Pointer:
		return goKind(t.Elem())
	}
	return "a " + t.String()
}

// stepsPath appends steps to base.
func stepsPath(base *field.Path, at []step) *field.Path {
	p := base
	for _, s := range at {
		if s.key == "" {
			p = p.Index(s.index)
		} else {
			p = p.Child(s.key)
		}
	}
	return p
}

// valueAt returns the value at a path that locate found.
func valueAt(v any, at []step) any {
	for _, s := range at {
		if s.key == "" {
			v = v.([]any)[s.index]
		} else {
			v = v.(map[string]any)[s.key]
		}
	}
	return v
}

// setAt sets the value at a path that locate found.
func setAt(v any, at []step, to any) {
	parent := valueAt(v, at[:len(at)-1])
	last := at[len(at)-1]
	if last.key == "" {
		parent.([]any)[last.index] = to
	} else {
		parent.(map[string]any)[last.key] = to
	}
}

// locate finds the first path through v along keys, trying each list item,
// whose value is of JSON kind (as encoding/json names it). A key that
// names an embedded Go struct (VolumeSource in a volume, ProbeHandler in
// a probe) is not in the JSON and is skipped.
func locate(v any, keys []string, kind string, at []step) []step {
	if len(keys) == 0 {
		if jsonKind(v) == kind {
			return at
		}
		return nil
	}
	switch t := v.(type) {
	case map[string]any:
		if c, ok := t[keys[0]]; ok {
			return locate(c, keys[1:], kind, append(at, step{key: keys[0]}))
		}
		if k := keys[0]; k != "" && 'A' <= k[0] && k[0] <= 'Z' {
			return locate(v, keys[1:], kind, at)
		}
	case []any:
		for i, c := range t {
			if p := locate(c, keys, kind, append(at[:len(at):len(at)], step{index: i})); p != nil {
				return p
			}
		}
	}
	return nil
}

// jsonKind names a value's kind as encoding/json's type errors do.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case json.Number:
		return "number"
	case nil:
		return "null"
	}
	return kindOf(v)
}

// childPath appends a dotted path such as "spec.containers[1].image".
func childPath(base *field.Path, dotted string) *field.Path {
	r, err := parseRef(dotted)
	if err != nil {
		return base.Child(dotted)
	}
	return stepsPath(base, r.path)
}

// checkQuantities parses every container's resource quantities, because
// a bad one fails decoding with no path. It returns where the bad ones are.
func checkQuantities(m map[string]any) (field.ErrorList, [][]step) {
	var errs field.ErrorList
	var bad [][]step
	spec, _ := m["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := pod[list].([]any)
		for i, c := range cs {
			cm, _ := c.(map[string]any)
			res, _ := cm["resources"].(map[string]any)
			for _, kind := range []string{"requests", "limits"} {
				q, _ := res[kind].(map[string]any)
				for _, name := range sortedKeys(q) {
					var err error
					switch v := q[name].(type) {
					case string:
						_, err = resource.ParseQuantity(v)
					case json.Number:
						_, err = resource.ParseQuantity(v.String())
					default:
						err = errors.New("must be a quantity such as 500m or 1Gi, not " + kindOf(v))
					}
					if err != nil {
						p := podPath.Child(list).Index(i).Child("resources", kind, name)
						errs = append(errs, field.Invalid(p, q[name], err.Error()))
						bad = append(bad, []step{{key: "spec"}, {key: "template"}, {key: "spec"}, {key: list}, {index: i}, {key: "resources"}, {key: kind}, {key: name}})
					}
				}
			}
		}
	}
	return errs, bad
}
