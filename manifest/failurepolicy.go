package manifest

import (
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FailurePolicy asks Prepare for a Job-native pod failure policy
// (spec.podFailurePolicy, GA since Kubernetes 1.31), so that the Job
// controller itself tells the run's failures from the cluster's:
//
//   - A pod disrupted by the cluster (condition DisruptionTarget:
//     eviction, preemption, a node drained or shut down, the taint
//     manager) is ignored: the Job controller replaces it without counting
//     it against backoffLimit.
//   - An exit code of the run container listed in FailJobOnExitCodes
//     fails the Job at once, whatever retries backoffLimit has left; the
//     Job's reason is then PodFailurePolicy.
//   - Any other failure counts against backoffLimit, as without a policy.
//
// A pod failure policy needs the pod template's restartPolicy Never,
// which Prepare requires anyway. The rules name the run container, so a
// sidecar's exit code never fails the Job.
type FailurePolicy struct {
	// FailJobOnExitCodes are exit codes of the run container that fail
	// the Job at once. Each must be at least 1; order and repeats do not
	// matter; at most 255. Default: none.
	FailJobOnExitCodes []int32
}

// maxExitCodes is how many values the API server takes in one rule.
const maxExitCodes = 255

// setFailurePolicy sets spec.podFailurePolicy from p (step 8).
func setFailurePolicy(spec, container map[string]any, cpath *field.Path, p *FailurePolicy) field.ErrorList {
	if p == nil {
		return nil
	}
	specPath := manifestPath.Child("spec", "podFailurePolicy")
	optPath := field.NewPath("options", "failurePolicy", "failJobOnExitCodes")
	var errs field.ErrorList
	if _, ok := spec["podFailurePolicy"]; ok {
		errs = append(errs, field.Forbidden(specPath, "the template sets a pod failure policy and so does PrepareOptions.FailurePolicy; keep one"))
	}
	name, _ := container["name"].(string)
	if name == "" && len(p.FailJobOnExitCodes) > 0 {
		errs = append(errs, field.Required(cpath.Child("name"), "the run container needs a name for a pod failure policy on its exit codes"))
	}
	codes := slices.Clone(p.FailJobOnExitCodes)
	slices.Sort(codes)
	codes = slices.Compact(codes)
	for i, c := range p.FailJobOnExitCodes {
		if c < 1 {
			errs = append(errs, field.Invalid(optPath.Index(i), c, "must be at least 1: exit code 0 is success"))
		}
	}
	if len(codes) > maxExitCodes {
		errs = append(errs, field.TooMany(optPath, len(codes), maxExitCodes))
	}
	if len(errs) > 0 {
		return errs
	}
	rules := []any{map[string]any{
		"action": "Ignore",
		"onPodConditions": []any{
			map[string]any{"type": "DisruptionTarget", "status": "True"},
		},
	}}
	if len(codes) > 0 {
		values := make([]any, len(codes))
		for i, c := range codes {
			values[i] = int64(c)
		}
		rules = append(rules, map[string]any{
			"action": "FailJob",
			"onExitCodes": map[string]any{
				"containerName": name,
				"operator":      "In",
				"values":        values,
			},
		})
	}
	spec["podFailurePolicy"] = map[string]any{"rules": rules}
	return nil
}
